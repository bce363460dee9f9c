"""BPE subwords (--tokenizer bpe): learned from train only, deterministic, serializable, structural line ends."""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
import warnings
from dataclasses import asdict, fields

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmbench.data.corpora import RawCorpus, load_corpus
from lmbench.data.dataset import build_dataset, encode_lines, fingerprint
from lmbench.errors import LmbenchError
from lmbench.data.tokenizers import DEFAULT_BPE_VOCAB_SIZE, SPACE, Tokenizer, fit_tokenizer

from tests.conftest import random_lines

pytest.importorskip("tokenizers")

# A text where every merge is forced (no ties), worked by hand below.
HAND_TRAIN = ["ab ab ab cab"]


def fixed(max_examples: int):
    """Derandomized settings: the same examples on every run, no deadline, no example database."""
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def bpe(train: list[str], vocab_size: int = 60, normalize: str = "none") -> Tokenizer:
    return fit_tokenizer(Tokenizer("bpe", normalize, vocab_size=vocab_size), train)


def dataset(train, valid=(), test=(), tokenizer=None, **options):
    tokenizer = tokenizer or Tokenizer("bpe", vocab_size=60)
    return build_dataset(RawCorpus("b", {"train": list(train), "valid": list(valid), "test": list(test)}),
                         tokenizer, **options)


def skewed_text(seed: int, n_lines: int = 200) -> list[str]:
    """Lines of made-up words over a small alphabet (many equal pair counts, so merge ties)."""
    rng = np.random.default_rng(seed)
    words = ["".join(rng.choice(list("abcdefg"), size=rng.integers(2, 7))) for _ in range(80)]
    p = 1.0 / np.arange(1, 81)
    return [" ".join(rng.choice(words, size=rng.integers(1, 12), p=p / p.sum())) for _ in range(n_lines)]


# ---------------------------------------------------------------- what is learned


def test_merges_of_a_hand_worked_text():
    """▁ab ×3, ▁cab ×1: pairs ab 4, ▁a 3 -> merge a+b; then ▁+ab 3 -> merge; vocab_size 6 = 4 letters + 2 merges."""
    tok = bpe(HAND_TRAIN, vocab_size=6)
    model = json.loads(tok.model_json)
    assert model["alphabet"] == "abc" + SPACE
    assert model["merges"] == [["a", "b"], [SPACE, "ab"]]
    assert tok.tokenize_line("ab cab abab ba") == [SPACE + "ab", SPACE, "c", "ab", SPACE + "ab", "ab", SPACE, "b", "a"]


def test_vocabulary_holds_the_subwords_of_the_encoded_training_text():
    """Train encodes to ▁ab ×3, ▁ c ab: V = <unk>, end of line, then by count and spelling; a and b never occur alone."""
    ds = dataset(HAND_TRAIN, ["b"], ["ab"], Tokenizer("bpe", vocab_size=6))
    assert ds.vocab.itos == ["<unk>", "</s>", SPACE + "ab", "ab", "c", SPACE]
    assert ds.splits["train"].tolist() == [2, 2, 2, 5, 4, 3, 1]
    assert ds.splits["valid"].tolist() == [5, 0, 1] and ds.stats["valid"].n_oov == 1   # b never stands alone in train
    assert len(ds.vocab) <= 6 + 2


def test_subwords_are_learned_from_train_only_so_a_test_only_word_is_never_whole():
    train = ["the cat sat on the mat"] * 5
    valid = ["zebra zebra zebra zebra"] * 50
    ds = dataset(train, valid, ["the zebra"], Tokenizer("bpe", vocab_size=200))
    merges = json.loads(ds.tokenizer.model_json)["merges"]
    assert not any("z" in a + b for a, b in merges)                      # nothing learned from valid
    # every train word merges whole; z, b, r were never seen, and ▁, e, a never stand alone in train
    assert ds.vocab.itos == ["<unk>", "</s>", SPACE + "the", SPACE + "cat", SPACE + "mat", SPACE + "on", SPACE + "sat"]
    assert ds.tokenizer.tokenize_line("zebra") == [SPACE, "z", "e", "b", "r", "a"]
    assert (ds.stats["test"].n_oov, ds.stats["test"].n_tokens) == (6, 8)


def test_a_vocabulary_size_below_the_alphabet_keeps_every_training_character():
    tok = bpe(["abcdef ghij"], vocab_size=3)
    model = json.loads(tok.model_json)
    assert model["merges"] == [] and sorted(model["alphabet"]) == sorted("abcdefghij" + SPACE)


@fixed(25)
@given(st.integers(0, 10_000), st.integers(1, 300))
def test_run_vocabulary_is_at_most_the_bpe_vocabulary_size_plus_unk_and_end_of_line(seed, vocab_size):
    ds = dataset(skewed_text(seed, 40), tokenizer=Tokenizer("bpe", vocab_size=vocab_size))
    alphabet = json.loads(ds.tokenizer.model_json)["alphabet"]
    assert len(ds.vocab) <= max(vocab_size, len(alphabet)) + 2
    assert ds.stats["train"].n_oov == 0


def test_training_is_deterministic_in_one_process_and_across_processes():
    lines = skewed_text(3, 300)
    first, second = bpe(lines, 150), bpe(lines, 150)
    assert first.model_json == second.model_json
    script = ("import sys, json;"
              "from lmbench.data.tokenizers import Tokenizer, fit_tokenizer;"
              "lines = json.loads(sys.stdin.read());"
              "print(fit_tokenizer(Tokenizer('bpe', vocab_size=150), lines).model_json)")
    done = subprocess.run([sys.executable, "-c", script], input=json.dumps(lines), capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == first.model_json


# ---------------------------------------------------------------- tokens and text


@pytest.mark.parametrize("line", ["the cat sat", "naïve café über straße", "我爱 语言模型", "Año 2024: ¡Hola!",
                                  "émoji 😀 and ♞ unseen", "x"])
def test_subwords_join_back_to_the_normalized_line(line):
    tok = bpe(["the cat sat on the mat", "naïve café", "我爱你 语言", "Año ¡Hola!"], vocab_size=80)
    assert tok.detokenize(tok.tokenize_line(line)) == line
    assert tok.detokenize(tok.tokenize([line, "", line])) == f"{line}\n\n{line}\n"


# Words without whitespace or ▁ (the marker), joined by single spaces: text the tokens give back exactly.
WORD = st.text(st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc"), blacklist_characters=SPACE),
               min_size=1, max_size=6).filter(lambda w: not any(ch.isspace() for ch in w))
CANONICAL_LINE = st.lists(st.one_of(WORD, st.sampled_from(["<unk>", "</s>", "<s>", "ab", "abab", "é"])),
                          max_size=8).map(" ".join)


@fixed(150)
@given(st.lists(CANONICAL_LINE, max_size=6), st.lists(CANONICAL_LINE, max_size=6))
def test_detokenize_inverts_tokenize_on_any_canonically_spaced_text(train, lines):
    tok = bpe(train + HAND_TRAIN, vocab_size=40)
    for line in lines:
        assert tok.detokenize(tok.tokenize_line(line)) == line


# Arbitrary lines: any Unicode, the marker itself, special spellings, every kind of whitespace.
PIECES = st.one_of(st.sampled_from(["</s>", "<s>", "<unk>", " ", "  ", "\t", "\u00a0", "\u3000", SPACE, "a", "b",
                                    "é", "İ", "语", "A1-", "ß"]), st.text(max_size=4))
LINE = st.lists(PIECES, max_size=8).map("".join)


@fixed(150)
@given(st.lists(LINE, max_size=6), st.lists(LINE, max_size=6), st.sampled_from(["none", "lower", "d2l"]))
def test_encoding_a_batch_equals_encoding_each_line_and_each_word(train, lines, normalize):
    """The batched path (each distinct word encoded once, then gathered) against a line-by-line reference."""
    ds = dataset(train, tokenizer=Tokenizer("bpe", normalize, vocab_size=30))
    tok, vocab = ds.tokenizer, ds.vocab
    ids, n_oov = encode_lines(lines, tok, vocab)
    expected, expected_oov = [], 0
    for line in lines:
        words = tok.normalize_line(line).split()
        subwords = tok.tokenize_line(line)
        assert subwords == [s for w in words for s in tok.split_normalized([w])[0]]   # never across words
        for s in subwords:
            expected.append(vocab.stoi.get(s, vocab.unk_id))
            expected_oov += s not in vocab.stoi
        expected.append(vocab.eos_id)
    assert ids.tolist() == expected and n_oov == expected_oov


@fixed(100)
@given(st.lists(CANONICAL_LINE, max_size=6), st.lists(CANONICAL_LINE, min_size=1, max_size=6))
def test_every_word_is_split_into_subwords_the_first_marked(train, lines):
    """A bpe split predicts the word tokenizer's words: one ▁-marked subword (or <unk>) starts each word.

    (A word holding the marker ▁ itself may have a second ▁-initial subword: text rarely does.)
    """
    tok = bpe(train, vocab_size=30)
    words = Tokenizer("word").split_normalized(lines)[0]
    subwords, lengths = tok.split_normalized(lines)
    starts = [s for s in subwords if s.startswith(SPACE) or s == "<unk>"]
    assert len(starts) == len(words) and int(lengths.sum()) == len(subwords)
    assert all(s for s in subwords)


def test_a_character_never_seen_in_training_is_its_own_out_of_vocabulary_token():
    """Train "a a" learns one merge, ▁+a; é is unseen: its own token, mapped to <unk> and counted as OOV."""
    ds = dataset(["a a"], ["aé a"], ["a"], Tokenizer("bpe", vocab_size=10))
    assert json.loads(ds.tokenizer.model_json)["merges"] == [[SPACE, "a"]]
    assert ds.tokenizer.tokenize_line("aé a") == [SPACE + "a", "é", SPACE + "a"]
    assert ds.splits["valid"].tolist() == [2, 0, 2, 1]
    assert (ds.stats["valid"].n_oov, ds.stats["valid"].n_unk) == (1, 1)


def test_a_whole_word_unk_stays_the_unknown_token_and_is_never_learned():
    ds = dataset(["a <unk> b <unk>", "<unk>"], ["x<unk> <unk>"], ["a"], Tokenizer("bpe", vocab_size=50))
    model = json.loads(ds.tokenizer.model_json)
    assert "<" not in model["alphabet"] and "k" not in model["alphabet"]
    assert ds.splits["train"].tolist().count(ds.vocab.unk_id) == 3
    assert (ds.stats["train"].n_oov, ds.stats["train"].n_unk) == (0, 3)
    assert ds.tokenizer.tokenize_line("a <unk>") == [SPACE + "a", "<unk>"]
    assert ds.tokenizer.detokenize([SPACE + "a", "<unk>", "</s>", "<unk>"]) == "a <unk>\n<unk>"


def test_end_of_line_is_structural_under_bpe():
    """Line ends come only from the pipeline: a literal </s> is subwords, never the end-of-line id."""
    ds = dataset(["a </s> b", "c"], ["</s>", ""], ["a"], Tokenizer("bpe", vocab_size=40))
    vocab = ds.vocab
    train = ds.splits["train"]
    lengths = ds.tokenizer.split_normalized(["a </s> b", "c"])[1]
    assert np.flatnonzero(train == vocab.eos_id).tolist() == (np.cumsum(lengths + 1) - 1).tolist()
    valid = ds.splits["valid"].tolist()                    # "</s>" as subwords, its line end, the empty line's
    assert len(valid) >= 3 and valid[-2:] == [vocab.eos_id] * 2 and vocab.eos_id not in valid[:-2]
    assert ds.stats["valid"].n_lines == 2
    assert not any("\n" in tok for tok in vocab.itos[2:])


@pytest.mark.parametrize("normalize", ["none", "lower", "d2l"])
def test_bytes_are_those_of_the_normalized_text_whatever_the_tokenization(normalize):
    lines = ["The Cat  sat\ton the MAT!", "语言 模型 2024", "", "  a  "]
    raw = RawCorpus("b", {"train": lines, "valid": lines[::-1], "test": lines[1:]})
    stats = {kind: build_dataset(raw, Tokenizer(kind, normalize, vocab_size=50 if kind == "bpe" else None)).stats
             for kind in ("word", "char", "bpe")}
    for split in ("train", "valid", "test"):
        expected = sum(len(Tokenizer("word", normalize).normalize_line(line).encode()) + 1
                       for line in raw.splits[split])
        assert {kind: s[split].n_bytes for kind, s in stats.items()} == dict.fromkeys(stats, expected)


# ---------------------------------------------------------------- saving and options


def test_a_fitted_tokenizer_survives_json_and_pickle_and_tokenizes_identically():
    tok = bpe(skewed_text(1), vocab_size=120, normalize="lower")
    lines = skewed_text(2, 30) + ["Unseen WORDS é"]
    for data in (asdict(tok), tok.to_dict()):
        again = Tokenizer.from_dict(json.loads(json.dumps(data)))
        assert again == tok and again.split_normalized(lines)[0] == tok.split_normalized(lines)[0]
        assert Tokenizer(**json.loads(json.dumps(data))) == tok
    assert pickle.loads(pickle.dumps(tok)).tokenize(lines) == tok.tokenize(lines)


def test_word_and_char_tokenizers_record_only_kind_and_normalize():
    assert Tokenizer("word", "lower").to_dict() == {"kind": "word", "normalize": "lower"}
    assert Tokenizer.from_dict({"kind": "char", "normalize": "d2l"}) == Tokenizer("char", "d2l")
    assert Tokenizer("bpe").vocab_size == DEFAULT_BPE_VOCAB_SIZE and not Tokenizer("bpe").fitted
    assert fit_tokenizer(Tokenizer("char"), ["abc"]) == Tokenizer("char")


@pytest.mark.parametrize("make, message", [
    (lambda: Tokenizer("bpe", vocab_size=0), "--bpe-vocab-size must be a whole number"),
    (lambda: Tokenizer("bpe", vocab_size=-3), "--bpe-vocab-size must be a whole number"),
    (lambda: Tokenizer("bpe", vocab_size=2.5), "--bpe-vocab-size must be a whole number"),
    (lambda: Tokenizer("bpe", vocab_size=True), "--bpe-vocab-size must be a whole number"),
    (lambda: Tokenizer("bpe", vocab_size="8000"), "--bpe-vocab-size must be a whole number"),
    (lambda: Tokenizer("bpe", vocab_size=10**12), "--bpe-vocab-size must be a whole number"),
    (lambda: Tokenizer("word", vocab_size=100), "applies to --tokenizer bpe only"),
    (lambda: Tokenizer("char", model_json="{}"), "applies to --tokenizer bpe only"),
    (lambda: Tokenizer("bpe", model_json=5), "must be the JSON text"),
    (lambda: Tokenizer("bpe", model_json="{not json").tokenize_line("a"), "BPE model is damaged"),
    (lambda: Tokenizer("bpe", model_json='{"format":"other"}').tokenize_line("a"), "BPE model is damaged"),
    (lambda: Tokenizer("bpe", model_json=json.dumps({"format": "lmbench-bpe-1", "alphabet": "a",
                                                     "merges": [["x", "y"]]})).tokenize_line("a"),
     "BPE model is damaged"),
    (lambda: Tokenizer("bpe").tokenize_line("a"), "has not learned its subwords"),
    (lambda: Tokenizer.from_dict({"kind": "bpe", "size": 3}), "not a tokenizer description"),
    (lambda: bpe(["ab"]).tokenize_line("a\udc80b"), "lone surrogate"),
])
def test_bad_bpe_options_and_damaged_models_are_one_line_errors(make, message):
    with pytest.raises(LmbenchError, match=message) as err:
        make()
    assert "\n" not in str(err.value)


def test_word_and_char_runs_never_import_tokenizers():
    script = ("import sys\n"
              "from lmbench.data.corpora import RawCorpus\nfrom lmbench.data.dataset import build_dataset\n"
              "from lmbench.data.tokenizers import Tokenizer\n"
              "raw = RawCorpus('t', {'train': ['a b'], 'valid': ['a'], 'test': ['b']})\n"
              "for kind in ('word', 'char'):\n    build_dataset(raw, Tokenizer(kind)).summary()\n"
              "print('tokenizers' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"


# ---------------------------------------------------------------- a run, and a real corpus


def _run_config_has_bpe_vocab_size() -> bool:
    from lmbench.runs.runner import RunConfig

    return "bpe_vocab_size" in {f.name for f in fields(RunConfig)}


@pytest.mark.skipif(not _run_config_has_bpe_vocab_size(), reason="RunConfig has no bpe_vocab_size yet")
def test_a_bpe_run_scores_subwords_and_its_saved_tokenizer_reads_new_text_the_same_way(tmp_path):
    from lmbench.runs.runner import RunConfig, run_benchmark
    from lmbench.runs.result import RunResult

    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(random_lines(np.random.default_rng(5), 300)) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_benchmark(RunConfig(models=["bigram-add1", "trigram-kn"], corpus=str(corpus), tokenizer="bpe",
                                         bpe_vocab_size=20, out=str(tmp_path / "r"), bootstrap=0),
                               echo=lambda *a: None)
    assert not result.failures
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    recorded = config["data"]["tokenizer"]
    assert recorded["kind"] == "bpe" and recorded["vocab_size"] == 20 and recorded["model_json"]
    assert config["data"]["vocab_size"] <= 20 + 2
    saved = RunResult(tmp_path / "r")
    model = saved.model("trigram-kn")
    assert saved.tokenizer == Tokenizer.from_dict(recorded)
    raw = load_corpus(str(corpus))                     # the saved tokenizer gives the run's very test tokens
    assert fingerprint(encode_lines(raw.splits["test"], saved.tokenizer, model.vocab_)[0]) == \
        config["data"]["splits"]["test"]["sha256"]
    text = "w0 w1 w2\nw11 w3 zz"
    scored = model.score_text(text)
    ids, _ = encode_lines(text.split("\n"), saved.tokenizer, model.vocab_)
    assert np.allclose(scored.logprobs, model.logprobs(ids))
    table = result.table.set_index(["model", "split"])
    test_scores = result.scores("trigram-kn", "test")
    n_bytes = config["data"]["splits"]["test"]["n_bytes"]
    assert table.loc[("trigram-kn", "test"), "bits_per_byte"] == pytest.approx(
        -test_scores.logprobs.sum() / math.log(2) / n_bytes, rel=1e-9)


def test_ptb_bpe_keeps_its_bytes_words_and_unknown_words(ptb_dataset):
    ds, word = build_dataset(load_corpus("ptb"), Tokenizer("bpe", vocab_size=8000)), ptb_dataset
    assert len(ds.vocab) <= 8000 + 2
    for split in ("train", "valid", "test"):
        b, w = ds.stats[split], word.stats[split]
        assert (b.n_bytes, b.n_lines, b.n_unk) == (w.n_bytes, w.n_lines, w.n_unk)       # <unk> words stay whole
        assert b.n_tokens > w.n_tokens
    words = ds.splits["test"] != ds.vocab.eos_id
    starts = np.array([tok.startswith(SPACE) or tok == "<unk>" for tok in ds.vocab.itos])
    assert int(starts[ds.splits["test"][words]].sum()) == word.stats["test"].n_tokens - word.stats["test"].n_lines
