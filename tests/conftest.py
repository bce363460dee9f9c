"""Shared fixtures: tiny corpora built in temporary folders, and access to the real corpora when present."""

from __future__ import annotations

import importlib
import importlib.util
import os
from contextlib import contextmanager
from pathlib import Path

if "PYTEST_XDIST_WORKER" in os.environ:  # one worker per core (-n auto): a worker's torch and BLAS use one thread
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_name, "1")

import numpy as np
import pytest

from lmbench.data.corpora import RawCorpus
from lmbench.data.dataset import build_dataset
from lmbench.data.tokenizers import Tokenizer

SHARED = Path(__file__).resolve().parents[2] / "shared"


class LazyModule:
    """A module imported when a test first uses one of its names: collecting the test modules of an optional
    library (transformers, datasets, nbclient) costs a pytest-xdist worker that runs none of their tests nothing."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        if attr.startswith("_"):  # pytest looks for its markers (``__test__``...) on every module-level name
            raise AttributeError(attr)
        return getattr(importlib.import_module(self._name), attr)


def needs(*modules: str) -> pytest.MarkDecorator:
    """A mark (a test module's ``pytestmark``) that skips its tests where one of ``modules`` is not installed."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (pip install -e '.[test,hf]')")


def make_dataset(train: list[str], valid: list[str], test: list[str], kind: str = "word", **vocab_options):
    """A Dataset from literal lines."""
    raw = RawCorpus("tiny", {"train": train, "valid": valid, "test": test})
    return build_dataset(raw, Tokenizer(kind), **vocab_options)


def random_lines(rng: np.random.Generator, n_lines: int, words: int = 12, max_len: int = 9) -> list[str]:
    """Lines of random words w0..w{words-1} drawn from a skewed distribution."""
    probs = 1.0 / np.arange(1, words + 1)
    probs /= probs.sum()
    return [" ".join(f"w{i}" for i in rng.choice(words, size=rng.integers(1, max_len + 1), p=probs))
            for _ in range(n_lines)]


@pytest.fixture
def tiny_dataset():
    rng = np.random.default_rng(0)
    return make_dataset(random_lines(rng, 300), random_lines(rng, 40), random_lines(rng, 40))


def corpus_dir(name: str) -> Path | None:
    """Folder of a named corpus from $LMBENCH_DATA, or None."""
    root = os.environ.get("LMBENCH_DATA")
    if root and (Path(root) / name).is_dir():
        return Path(root) / name
    return None


def require_corpus(name: str) -> Path:
    """The corpus folder; skipped without it, except in CI (LMBENCH_REQUIRE_DATA=1), where it fails."""
    found = corpus_dir(name)
    if found is None:
        message = f"{name} not available (set LMBENCH_DATA)"
        if os.environ.get("LMBENCH_REQUIRE_DATA") == "1":
            pytest.fail(f"{message}; CI requires the real-corpus tests to run")
        pytest.skip(message)
    return found


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's real download cache from tests."""
    monkeypatch.setenv("LMBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))


#: the functions of lmbench.report.plots that draw a figure into a PNG file.
PLOT_WRITERS = ("perplexity_plot", "buckets_plot", "cost_plot", "curves_plot", "sweep_plot", "zipf_plot")


def _not_drawn(*args, **kwargs) -> None:
    """A ``*_plot`` function in tests not marked ``plots``: no figure is built, rendered or written."""


@pytest.fixture(autouse=True)
def _figures_drawn_where_checked(request, monkeypatch):
    """Draw PNGs only in tests marked ``plots``: building and rendering the figures is about half the time of
    an end-to-end run, and what the figures show is checked by the marked tests (tests/test_plots.py, the
    run, report and overwrite tests that read the files). Runs in a subprocess (``python -m lmbench``) always
    draw them; module- and session-scoped fixtures are set up before this one, so a fixture whose PNGs no
    test reads makes its run under :func:`figures_not_drawn`. ``RunResult.plot`` builds its figures everywhere."""
    marker = request.node.get_closest_marker("plots")
    _draw_only(monkeypatch, () if marker is None else marker.args or PLOT_WRITERS)  # plots("curves_plot")


@contextmanager
def figures_not_drawn(keep: tuple[str, ...] = ()):
    """Within the block no ``*_plot`` function draws but those named in ``keep`` (for fixtures' runs)."""
    with pytest.MonkeyPatch.context() as patch:
        _draw_only(patch, keep)
        yield


def _draw_only(patch: pytest.MonkeyPatch, drawn) -> None:
    """Make every figure writer but those in ``drawn`` a no-op."""
    unknown = set(drawn) - set(PLOT_WRITERS)
    assert not unknown, f"no figure writer is named {sorted(unknown)}"
    for name in set(PLOT_WRITERS) - set(drawn):
        patch.setattr(f"lmbench.report.plots.{name}", _not_drawn)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run where CUDA is present and are skipped elsewhere (CI has no GPU)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


class FakeClock:
    """A clock for time-budget tests: ``clock()`` reads ``now``, which ``advance`` (or the test) moves, and
    which moves on by ``tick`` after each reading."""

    def __init__(self, now: float = 0.0, tick: float = 0.0):
        self.now, self.tick = now, tick

    def __call__(self) -> float:
        now = self.now
        self.now += self.tick
        return now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


#: text of the neural tests' character corpus.
NEURAL_TEXT = ("the time traveller for so it will be convenient to speak of him\n"
               "was expounding a recondite matter to us his grey eyes shone and twinkled\n"
               "and his usually pale face was flushed and animated\n")


@pytest.fixture(scope="session")
def char_splits():
    """A character corpus for neural tests: (vocabulary, train, valid, test), 564 / 188 / 188 ids."""
    from lmbench.data.vocab import Vocabulary

    tokens = list(NEURAL_TEXT * 5)
    vocab = Vocabulary.build(tokens, "\n")
    ids, _ = vocab.encode(tokens)
    n = ids.size
    return vocab, ids[: n * 6 // 10], ids[n * 6 // 10: n * 8 // 10], ids[n * 8 // 10:]


# ---------------------------------------------------------------- n-gram fixtures (built once per session)


def split_lines(ids: np.ndarray, eos_id: int) -> list[list[int]]:
    """The lines of an id array, each ending with its end-of-line id."""
    ends = np.flatnonzero(ids == eos_id)
    return [line.tolist() for line in np.split(ids, ends + 1) if line.size]


@pytest.fixture(scope="session")
def zipf_data():
    """A long tail of rare words plus repeated phrases (counts of counts valid at every order up to 4):
    (dataset, train lines, test lines), lines as lists of ids."""
    rng = np.random.default_rng(13)
    phrases = random_lines(rng, 80, words=40, max_len=10)
    train = random_lines(rng, 1200, words=3000, max_len=10) + [phrases[i] for i in rng.zipf(1.6, 400) % 80]
    ds = make_dataset(train, random_lines(rng, 60, words=3000),
                      random_lines(rng, 40, words=3030, max_len=10) + phrases[:20])
    eos = ds.vocab.eos_id
    return ds, split_lines(ds.splits["train"], eos), split_lines(ds.splits["test"], eos)


@pytest.fixture(scope="session")
def spill_corpus():
    """2,500 random lines of 30 words: a budget of ``SPILL_MEMORY`` bytes spills it in several sorted runs,
    merge windows and scoring slices."""
    rng = np.random.default_rng(7)
    return make_dataset(random_lines(rng, 2500, words=30, max_len=14), random_lines(rng, 150, words=32),
                        random_lines(rng, 150, words=32))


#: a budget of 2,500 tokens per chunk and ~2,900 entries per window (see ``spill_corpus``).
SPILL_MEMORY = 280_000


@pytest.fixture(scope="session")
def ptb_dataset():
    """Penn Treebank (Mikolov's splits) with the word tokenizer, loaded once; skipped without $LMBENCH_DATA."""
    from lmbench.data.corpora import load_corpus

    require_corpus("ptb")
    return build_dataset(load_corpus("ptb"), Tokenizer("word"))


@pytest.fixture(scope="session")
def ptb_kn5(ptb_dataset):
    """PTB 5-gram modified Kneser-Ney fitted in memory, once."""
    from lmbench.models.ngram import KneserNey

    return KneserNey(order=5, storage="memory").fit(ptb_dataset.splits["train"], vocab=ptb_dataset.vocab)


#: the tiny GPT-2's positions (tests score with contexts up to this) and the text its tokenizer is trained on.
TINY_GPT2_POSITIONS = 64
TINY_GPT2_TEXT = ("the time traveller for so it will be convenient to speak of him\n"
                  "was expounding a recondite matter to us. his grey eyes shone and twinkled\n\n\n"
                  "and his usually pale face was flushed and animated; the fire burned brightly\n\n")


def build_tiny_gpt2(folder) -> None:
    """Save a byte-level BPE tokenizer (trained on TINY_GPT2_TEXT) and a randomly initialized 2-layer GPT-2 in ``folder``."""
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=330, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([TINY_GPT2_TEXT] * 20, trainer)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                                eos_token="<|endoftext|>")
    fast.save_pretrained(folder)
    # a wide initialization, so that what a token sees changes its probability clearly
    config = transformers.GPT2Config(vocab_size=len(fast), n_layer=2, n_embd=32, n_head=2, n_positions=TINY_GPT2_POSITIONS,
                                     bos_token_id=0, eos_token_id=0, initializer_range=0.5)
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory):
    """A local ``save_pretrained`` folder of a tiny random GPT-2 and its BPE tokenizer (no downloads)."""
    pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    build_tiny_gpt2(folder)
    return folder
