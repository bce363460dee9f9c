"""Property-based tests (hypothesis): tokenizer, encode_lines, vocabulary, n-gram counts, normalization.

Every test runs a fixed, derandomized set of examples (CI sees the same cases on every run) and
the whole file takes a few seconds.
"""

from __future__ import annotations

import random
import warnings
from collections import Counter

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmbench.data.corpora import RawCorpus
from lmbench.data.dataset import build_dataset, encode_lines
from lmbench.errors import LmbenchError
from lmbench.models.ngram.interpolated import KneserNey, WittenBell
from lmbench.models.ngram.mle import AddK
from lmbench.models.ngram.counts import NGramCounts
from lmbench.data.tokenizers import NORMALIZATIONS, Tokenizer
from lmbench.data.vocab import UNK, Vocabulary


def fixed(max_examples: int):
    """Derandomized settings: the same examples on every run, no deadline, no example database."""
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


# Lines mixing arbitrary Unicode with the spellings of special tokens and many kinds of whitespace
# (a newline inside a "line" too: only the pipeline may end a line).
PIECES = st.one_of(
    st.sampled_from(["</s>", "<s>", "<unk>", " ", "  ", "\t", "\n", "\u00a0", "\u2028", "\u3000", "a", "b", "é", "İ",
                     "语", "A1-", "ß"]),
    st.text(max_size=4),
)
LINE = st.lists(PIECES, max_size=8).map("".join)
LINES = st.lists(LINE, max_size=6)
TOKENIZERS = st.builds(Tokenizer, st.sampled_from(["word", "char"]), st.sampled_from(NORMALIZATIONS))
WORD_LINES = st.lists(st.lists(st.sampled_from(["a", "b", "c", "d", "</s>", "<s>", "<unk>", "e"]), max_size=6)
                      .map(" ".join), min_size=1, max_size=8)


def dataset(train, valid=(), tokenizer=Tokenizer("word"), **options):
    return build_dataset(RawCorpus("p", {"train": list(train), "valid": list(valid), "test": []}), tokenizer, **options)


# ---------------------------------------------------------------- tokenizer


@fixed(200)
@given(LINE, st.sampled_from(NORMALIZATIONS))
def test_char_tokens_join_back_to_the_normalized_line(line, normalize):
    tokenizer = Tokenizer("char", normalize)
    assert "".join(tokenizer.tokenize_line(line)) == tokenizer.normalize_line(line)


@fixed(200)
@given(LINE, st.sampled_from(NORMALIZATIONS))
def test_word_tokens_are_non_empty_and_contain_no_whitespace(line, normalize):
    tokens = Tokenizer("word", normalize).tokenize_line(line)
    assert all(tok and not any(ch.isspace() for ch in tok) for tok in tokens)


@fixed(150)
@given(LINES, LINES, TOKENIZERS)
def test_encode_lines_equals_a_token_by_token_reference(train, lines, tokenizer):
    """One end of line per line, exactly where lines end; every token by its own spelling."""
    vocab = dataset(train or ["x"], tokenizer=tokenizer).vocab
    ids, n_oov = encode_lines(lines, tokenizer, vocab)
    expected, expected_oov = [], 0
    for line in lines:
        for tok in tokenizer.tokenize_line(line):
            expected.append(vocab.stoi.get(tok, vocab.unk_id))
            expected_oov += tok not in vocab.stoi
        expected.append(vocab.eos_id)
    assert ids.dtype == np.int32 and ids.tolist() == expected and n_oov == expected_oov
    assert int((ids == vocab.eos_id).sum()) == len(lines)


@fixed(150)
@given(LINES, TOKENIZERS)
def test_bytes_per_split_are_the_normalized_lines_utf8_plus_line_ends(lines, tokenizer):
    ds = dataset(["x"], lines, tokenizer=tokenizer)
    expected = sum(len(tokenizer.normalize_line(line).encode("utf-8")) + 1 for line in lines)
    assert ds.stats["valid"].n_bytes == expected and ds.stats["valid"].n_lines == len(lines)


# ---------------------------------------------------------------- vocabulary


@fixed(150)
@given(LINES, LINES, TOKENIZERS, st.integers(1, 3), st.one_of(st.none(), st.integers(3, 8)))
def test_vocabulary_ids_are_in_range_and_train_is_never_oov_at_min_freq_1(train, valid, tokenizer, min_freq, max_vocab):
    ds = dataset(train, valid, tokenizer, min_freq=min_freq, max_vocab=max_vocab)
    vocab = ds.vocab
    for ids in ds.splits.values():
        assert ids.size == 0 or (0 <= ids.min() and ids.max() < len(vocab))
    assert max_vocab is None or len(vocab) <= max_vocab
    assert vocab.itos[:2] == [UNK, tokenizer.eos] and UNK not in vocab.itos[2:]
    if min_freq == 1 and max_vocab is None:
        assert ds.stats["train"].n_oov == 0


@fixed(100)
@given(st.lists(st.sampled_from(["a", "b", "c", "</s>", "<s>", "<unk>", "\n", "zz", "é"]), max_size=30),
       st.integers(0, 2**32 - 1))
def test_vocabulary_order_is_frequency_then_spelling_whatever_the_token_order(tokens, seed):
    shuffled = list(tokens)
    random.Random(seed).shuffle(shuffled)
    vocab = Vocabulary.build(tokens, "</s>")
    assert Vocabulary.build(shuffled, "</s>").itos == vocab.itos
    counts = Counter(t for t in tokens if t != UNK)
    assert vocab.itos[2:] == sorted(counts, key=lambda t: (-counts[t], t))


@fixed(100)
@given(st.lists(st.sampled_from(["a", "b", "c", "</s>", "<s>", "<unk>", "\n", "zz", "é"]), max_size=30),
       st.lists(st.sampled_from(["a", "b", "</s>", "<s>", "<unk>", "q"]), max_size=10))
def test_vocabulary_encode_decode_round_trip_for_in_vocabulary_tokens(tokens, queries):
    vocab = Vocabulary.build(tokens, "</s>")
    known = [t for t in queries if t in vocab.stoi]
    ids, n_oov = vocab.encode(known)
    assert vocab.decode(ids) == known and n_oov == 0 and vocab.eos_id not in ids.tolist()
    restored = Vocabulary(vocab.to_list())                      # as a saved model reloads it
    assert restored.stoi == vocab.stoi


# ---------------------------------------------------------------- n-gram counts


def brute_force_counts(lines: list[list[int]], order: int, bos_id: int, eos_id: int) -> Counter:
    """Every k-gram (k = order) of the lines padded with one <s> before and the end of line after;
    unigrams never count <s>."""
    counts = Counter()
    for line in lines:
        padded = [bos_id] + line + [eos_id]
        start = 1 if order == 1 else 0
        for i in range(start, len(padded) - order + 1):
            counts[tuple(padded[i:i + order])] += 1
    return counts


@fixed(150)
@given(st.lists(st.lists(st.sampled_from([0, 2, 3, 4, 5]), max_size=7), min_size=1, max_size=8),
       st.integers(1, 4))
def test_ngram_counts_equal_a_brute_force_count_of_the_padded_lines(lines, order):
    vocab_size, eos_id = 6, 1
    ids = np.array([t for line in lines for t in line + [eos_id]], dtype=np.int32)
    counts = NGramCounts.from_ids(ids, order, vocab_size, eos_id)
    for k in range(1, order + 1):
        expected = brute_force_counts(lines, k, counts.bos_id, eos_id)
        if k == 1:
            got = {(w,): int(c) for w, c in enumerate(counts.counts[1]) if c}
        else:
            grams = counts.tokens_of(k, np.arange(counts.n_types(k)))
            got = {tuple(g): int(c) for g, c in zip(grams.tolist(), counts.counts[k])}
        assert got == dict(expected), k


# ---------------------------------------------------------------- normalization


MODELS = st.one_of(
    st.builds(lambda order, k: AddK(order=order, k=k), st.integers(1, 4), st.floats(0.01, 3.0)),
    st.builds(lambda order, modified: KneserNey(order=order, modified=modified), st.integers(1, 4), st.booleans()),
    st.builds(lambda order: WittenBell(order=order), st.integers(1, 4)),
)


@fixed(150)
@given(WORD_LINES, MODELS, st.lists(st.integers(0, 20), max_size=6))
def test_next_token_distribution_sums_to_one(train, model, history):
    ds = dataset(train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # small-corpus fallbacks of Kneser-Ney discounts
        model.fit(ds.splits["train"], vocab=ds.vocab)
    history = np.array([h % len(ds.vocab) for h in history], dtype=np.int64)   # any ids, line ends included
    logprobs = model.next_logprobs(history)
    assert logprobs.shape == (len(ds.vocab),)
    assert abs(np.exp(logprobs).sum() - 1.0) < 1e-9


_WORDS = st.sampled_from(["a", "b", "cc", "Dd", "</s>", "<unk>", "é", "x y"])


@settings(max_examples=40, deadline=None)
@given(lines=st.lists(st.lists(_WORDS, max_size=6).map(" ".join), min_size=1, max_size=40),
       block=st.integers(1, 9), kind=st.sampled_from(["word", "char"]))
def test_tokenizing_in_blocks_gives_the_dataset_of_tokenizing_at_once(lines, block, kind):
    import lmbench.data.dataset as data

    raw = RawCorpus("p", {"train": lines, "valid": lines[::2], "test": lines[1::2] or lines})
    whole = build_dataset(raw, Tokenizer(kind))
    saved, data.BLOCK_LINES = data.BLOCK_LINES, block
    try:
        blocked = build_dataset(raw, Tokenizer(kind))
    finally:
        data.BLOCK_LINES = saved
    copy = RawCorpus("p", {name: list(split) for name, split in raw.splits.items()})
    saved, data.BLOCK_LINES = data.BLOCK_LINES, block
    try:
        consumed = build_dataset(copy, Tokenizer(kind), consume=True)  # the text goes as it is tokenized
    finally:
        data.BLOCK_LINES = saved
    assert all(line is None for split in copy.splits.values() for line in split)
    for other in (blocked, consumed):
        assert other.vocab.itos == whole.vocab.itos and other.stats == whole.stats
        for split in whole.splits:
            assert other.splits[split].dtype == np.int32
            assert np.array_equal(other.splits[split], whole.splits[split])


_PIECES = st.sampled_from(["a", "bb", " ", "\n", "\r\n", "\r", "é", "\ufeff", "\x00", "\u2028", "日本"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(_PIECES, max_size=30), block=st.integers(1, 12), bom=st.booleans(),
       junk=st.sampled_from([b"", b"\xff", b"\xc3"]), encoding=st.sampled_from(["utf-8", "latin-1"]))
def test_reading_lines_in_blocks_equals_decoding_the_whole_file(tmp_path, pieces, block, bom, junk, encoding):
    """Lines, checksum and one-line errors of the block reader are those of decode() on the whole file."""
    import hashlib

    import lmbench.data.textio as textio

    text = ("\ufeff" if bom else "") + "".join(pieces)
    data = text.encode("utf-8") + junk
    path = tmp_path / "f.txt"
    path.write_bytes(data)

    def whole():
        return textio._split_lines(textio.decode(textio.read_text_bytes(path), encoding, path)), \
            hashlib.sha256(data).hexdigest()

    def blocks():
        saved, textio.READ_BLOCK_BYTES = textio.READ_BLOCK_BYTES, block
        try:
            return textio.read_text_lines(path, encoding)
        finally:
            textio.READ_BLOCK_BYTES = saved

    outcomes = []
    for read in (whole, blocks):
        try:
            outcomes.append(read())
        except LmbenchError as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1]
