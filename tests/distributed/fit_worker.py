"""Run under torchrun by tests/test_distributed.py: every data-parallel case of the tests in one launch.

Usage: torchrun --standalone --nproc_per_node 2 tests/distributed/fit_worker.py OUT_DIR

Inside lmbench's process group, every rank

* fits the models of :func:`models` on the corpus of :func:`corpus` with the same seed and writes
  ``OUT_DIR/<name>-rank<r>.npz`` (its weights); rank 0 also ``<name>-curve.json`` and ``<name>-summary.json``;
* runs the command line twice, as ``lmbench run`` under torchrun would: a run of :data:`RUN` in
  ``OUT_DIR/work`` and one whose ``--out`` is a folder of someone else's files (``OUT_DIR/foreign``),
  writing its exit code, stdout and stderr to ``OUT_DIR/<case>-rank<r>.json``; those runs draw no
  figures (as in the tests not marked ``plots``).

Only lmbench is imported from the repository (not the tests' conftest, nor pytest).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for lmbench

from lmbench.data.corpora import RawCorpus  # noqa: E402
from lmbench.data.dataset import build_dataset  # noqa: E402
from lmbench.data.tokenizers import Tokenizer  # noqa: E402
from lmbench.models.neural.distributed import process_group  # noqa: E402
from lmbench.models.neural.recurrent import RecurrentLM  # noqa: E402
from lmbench.models.neural.transformer import TransformerLM  # noqa: E402
from lmbench.models.seeding import seed_everything  # noqa: E402

#: the command-line run, after ``run --corpus CORPUS --out ddp-run`` (no dropout: each rank draws its own masks).
RUN = ["--models", "bigram,lstm", "--set", "lstm.dropout=0", "--set", "lstm.hidden_size=8",
       "--set", "lstm.embedding_size=6", "--set", "lstm.batch_size=4", "--set", "lstm.num_steps=8",
       "--epochs", "2", "--device", "cpu", "--bootstrap", "0"]
#: the same models and options for ``lmbench.run`` (the single-process reference).
RUN_PARAMS = {"lstm": {"dropout": 0, "hidden_size": 8, "embedding_size": 6, "batch_size": 4, "num_steps": 8}}


def lines(rng: np.random.Generator, n_lines: int, words: int = 12, max_len: int = 9) -> list[str]:
    """Lines of random words w0..w{words-1} drawn from a skewed distribution."""
    probs = 1.0 / np.arange(1, words + 1)
    probs /= probs.sum()
    return [" ".join(f"w{i}" for i in rng.choice(words, size=rng.integers(1, max_len + 1), p=probs))
            for _ in range(n_lines)]


def corpus():
    """The tiny word corpus both this worker and the single-process reference use (train: 1,224 tokens)."""
    rng = np.random.default_rng(7)
    raw = RawCorpus("tiny", {"train": lines(rng, 200), "valid": lines(rng, 30), "test": lines(rng, 30)})
    return build_dataset(raw, Tokenizer("word"))


def write_corpus_files(folder: Path) -> Path:
    """train/valid/test files of a small corpus for the command-line runs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    for split, n in (("train", 200), ("valid", 30), ("test", 30)):
        (folder / f"{split}.txt").write_text("\n".join(lines(rng, n)) + "\n")
    return folder


class TickingClock:
    """A fake clock that moves on 10 ms at every reading, so the time budget stops a fit at a fixed point."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.01
        return self.now


def models() -> dict:
    """name -> a fresh model: a sequential LSTM (Adam, clipping), a randomly batched Transformer (AdamW, cosine)
    and an LSTM stopped by the time budget (rank 0's clock decides when: every rank must stop at that batch).

    The Transformer's training split makes 101 or 102 windows of 12 per epoch, so the last of its
    8-window batches has 5 or 6 windows, split 2/3 or 3/3 over two ranks (weighted, see random_batches).
    """
    return {
        "lstm": RecurrentLM(cell="lstm", hidden_size=16, embedding_size=8, num_steps=8, batch_size=6, epochs=2,
                            lr=0.01, clip=1.0, device="cpu", progress=False),
        "transformer": TransformerLM(d_model=16, num_layers=1, n_heads=2, context=12, dropout=0.0, batch_size=8,
                                     sampling="random", epochs=2, optimizer="adamw", lr=0.003, weight_decay=0.1,
                                     lr_schedule="cosine", warmup=3, device="cpu", progress=False),
        "lstm-budget": RecurrentLM(cell="lstm", hidden_size=16, embedding_size=8, num_steps=8, batch_size=6,
                                   epochs=1000, time_budget=0.5, early_stopping=None, device="cpu", progress=False),
    }


def fit(name: str, dataset, **overrides):
    seed_everything(0)
    model = models()[name]
    for key, value in overrides.items():
        setattr(model, key, value)
    clock = {"clock": TickingClock()} if model.time_budget is not None else {}
    return model.fit(dataset.splits["train"], dataset.splits["valid"], vocab=dataset.vocab, **clock)


def weights(model) -> dict:
    return {k: v.detach().cpu().numpy() for k, v in model.net_.state_dict().items()}


def command_line(args: list[str], record: Path) -> None:
    """Run ``lmbench ARGS`` in this process as ``python -m lmbench`` would; record its exit code and output."""
    from lmbench.cli import cli

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            cli.main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code
    record.write_text(json.dumps({"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}))


def skip_figures() -> None:
    """Replace lmbench's PNG writers with no-ops, as tests/conftest.py does in tests not marked ``plots``."""
    import lmbench.report.plots as plots

    for name in ("perplexity_plot", "buckets_plot", "cost_plot", "curves_plot", "sweep_plot", "zipf_plot"):
        setattr(plots, name, lambda *args, **kwargs: None)


def main(out: Path) -> None:
    skip_figures()
    dataset = corpus()
    with process_group() as world:
        for name in models():
            model = fit(name, dataset)
            np.savez(out / f"{name}-rank{world.rank}.npz", **weights(model))
            if world.is_main:
                (out / f"{name}-curve.json").write_text(json.dumps(model.training_curve()))
                (out / f"{name}-summary.json").write_text(json.dumps(model.fitted_summary()))
        corpus_dir = write_corpus_files(out / "corpus")
        foreign = out / "foreign"
        (out / "work").mkdir(exist_ok=True)
        if world.is_main:
            foreign.mkdir()
            (foreign / "a.txt").write_text("mine")
        os.chdir(out / "work")
        command_line(["run", "--corpus", str(corpus_dir), "--out", "ddp-run", *RUN], out / f"run-rank{world.rank}.json")
        command_line(["run", "--models", "bigram,lstm", "--corpus", str(corpus_dir), "--out", str(foreign)],
                     out / f"foreign-rank{world.rank}.json")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
