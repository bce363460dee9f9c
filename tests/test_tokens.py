"""Special tokens in text, the structural end of line, encode_lines, and bytes per split."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pytest

from lmbench.data.corpora import RawCorpus, load_corpus
from lmbench.data.dataset import build_dataset, encode_lines, fingerprint, with_line_ends
from lmbench.errors import LmbenchError
from lmbench.models.ngram.mle import MLE
from lmbench.data.tokenizers import Tokenizer
from lmbench.data.vocab import Vocabulary

from tests.conftest import make_dataset, require_corpus

WORD = Tokenizer("word")
CHAR = Tokenizer("char")


# ---------------------------------------------------------------- text that looks like a special token


def test_literal_end_of_line_word_is_an_ordinary_word_not_a_line_end():
    ds = make_dataset(["a </s> b", "</s> </s> c"], ["</s>"], ["x"])
    vocab = ds.vocab
    # counts: </s> (the word) 3, a 1, b 1, c 1  ->  <unk> eos </s> a b c
    assert vocab.itos == ["<unk>", "</s>", "</s>", "a", "b", "c"]
    assert vocab.stoi["</s>"] == 2 != vocab.eos_id
    assert ds.splits["train"].tolist() == [3, 2, 4, 1, 2, 2, 5, 1]
    assert ds.splits["valid"].tolist() == [2, 1]
    assert ds.stats["train"].n_lines == 2 and (ds.splits["train"] == vocab.eos_id).sum() == 2


def test_literal_end_of_line_word_does_not_restart_ngram_context():
    ds = make_dataset(["a </s> b"], ["a"], ["a"])
    model = MLE(order=2).fit(ds.splits["train"], vocab=ds.vocab)
    a, word_eos, b = (ds.vocab.stoi[w] for w in ("a", "</s>", "b"))
    line_start = np.exp(model.next_logprobs(np.array([], dtype=np.int64)))
    assert line_start[a] == 1.0 and line_start[b] == 0.0          # b never starts a line
    after_word = np.exp(model.next_logprobs(np.array([a, word_eos])))
    assert after_word[b] == 1.0                                  # b follows the word </s>
    assert math.isclose(np.exp(model.logprobs(ds.splits["train"])).prod(), 1.0)


def test_literal_bos_word_is_an_ordinary_word_not_unknown():
    ds = make_dataset(["<s> a <s>"], ["<s>"], ["a"])
    assert ds.vocab.stoi["<s>"] == 2 and ds.vocab.bos_id == 4
    assert ds.splits["train"].tolist() == [2, 3, 2, 1]
    assert ds.stats["train"].n_unk == 0 and ds.stats["valid"].n_oov == 0


def test_literal_unk_word_stays_the_unknown_token():
    ds = make_dataset(["<unk> a <unk>"], ["<unk> z"], ["a"])
    assert ds.vocab.itos == ["<unk>", "</s>", "a"]
    assert ds.splits["train"].tolist() == [0, 2, 0, 1]
    assert (ds.stats["train"].n_oov, ds.stats["train"].n_unk) == (0, 2)
    assert (ds.stats["valid"].n_oov, ds.stats["valid"].n_unk) == (1, 2)   # z is the only OOV


def test_rare_literal_end_of_line_word_is_out_of_vocabulary_not_a_line_end():
    ds = make_dataset(["a a </s>", "a"], ["</s> a"], ["a"], min_freq=2)
    assert ds.vocab.itos == ["<unk>", "</s>", "a"] and "</s>" not in ds.vocab.stoi
    assert ds.splits["train"].tolist() == [2, 2, 0, 1, 2, 1]
    assert ds.stats["train"].n_oov == 1 and ds.splits["valid"].tolist() == [0, 2, 1]


def test_vocabulary_encode_never_maps_a_spelling_to_the_end_of_line():
    vocab = Vocabulary.build(["a", "b"], "</s>")
    ids, n_oov = vocab.encode(["a", "</s>", "b", "\n"])
    assert ids.tolist() == [2, 0, 3, 0] and n_oov == 2


def test_char_level_newline_inside_a_line_is_an_ordinary_character():
    vocab = make_dataset(["ab"], ["a"], ["b"], kind="char").vocab
    ids, n_oov = encode_lines(["a\nb", ""], CHAR, vocab)
    assert ids.tolist() == [2, 0, 3, 1, 1] and n_oov == 1


def test_saved_vocabulary_with_a_word_spelled_like_the_end_of_line_restores_exactly():
    restored = Vocabulary(["<unk>", "</s>", "x", "</s>"])
    assert restored.stoi == {"<unk>": 0, "x": 2, "</s>": 3}
    assert restored.decode([3, 1, 4]) == ["</s>", "</s>", "<s>"]


@pytest.mark.parametrize("itos", [["a", "</s>"], ["<unk>"], ["<unk>", "</s>", "a", "a"], ["<unk>", "</s>", "<unk>"]])
def test_damaged_saved_vocabulary_is_refused(itos):
    with pytest.raises(LmbenchError, match="not a vocabulary"):
        Vocabulary(itos)


# ---------------------------------------------------------------- encode_lines


def test_encode_lines_gives_the_ids_build_dataset_gives(tiny_dataset):
    raw_lines = ["w0 w1 w2", "", "w3 zzz </s> <unk>"]
    ids, n_oov = encode_lines(raw_lines, tiny_dataset.tokenizer, tiny_dataset.vocab)
    s = tiny_dataset.vocab.stoi
    assert ids.dtype == np.int32
    assert ids.tolist() == [s["w0"], s["w1"], s["w2"], 1, 1, s["w3"], 0, 0, 0, 1] and n_oov == 2
    raw = RawCorpus("t", {"train": ["w0 w1", "w1"], "valid": raw_lines, "test": []})
    ds = build_dataset(raw, WORD)
    again, n_oov = encode_lines(raw_lines, WORD, ds.vocab)
    assert again.tolist() == ds.splits["valid"].tolist() and n_oov == ds.stats["valid"].n_oov


def test_encode_lines_of_no_lines_is_empty_and_empty_lines_are_line_ends():
    vocab = Vocabulary.build(["a"], "</s>")
    ids, n_oov = encode_lines([], WORD, vocab)
    assert ids.dtype == np.int32 and ids.size == 0 and n_oov == 0
    assert encode_lines(["", "  \t", "a"], WORD, vocab)[0].tolist() == [1, 1, 2, 1]


def test_with_line_ends_puts_one_end_after_each_line():
    out = with_line_ends(np.array([7, 8, 9]), np.array([2, 0, 1]), eos_id=1)
    assert out.tolist() == [7, 8, 1, 1, 9, 1] and out.dtype == np.int32


# ---------------------------------------------------------------- bytes per split


def n_bytes(lines, tokenizer=WORD) -> int:
    """n_bytes of a valid split made of ``lines``."""
    return build_dataset(RawCorpus("t", {"train": ["a"], "valid": lines, "test": []}), tokenizer).stats["valid"].n_bytes


def test_bytes_per_split_count_ascii_lines_plus_one_per_line_end():
    assert n_bytes(["ab c", ""]) == 4 + 0 + 2               # "ab c", "", two line ends
    assert n_bytes([" a  b "]) == 6 + 1                      # whitespace the tokenizer drops still counts
    assert n_bytes([]) == 0


def test_bytes_per_split_count_multibyte_utf8_once():
    # é: 2 bytes, €: 3 bytes, 𝄞 (U+1D11E): 4 bytes
    assert n_bytes(["é€𝄞"], CHAR) == 2 + 3 + 4 + 1
    assert n_bytes(["语言 模型"]) == 4 * 3 + 1 + 1


def test_bytes_per_split_are_counted_after_normalization():
    # d2l: "The Time-Machine, 1895!" -> "the time machine" (16 bytes); "42 !!" -> "" (0 bytes)
    assert n_bytes(["The Time-Machine, 1895!", "42 !!"], Tokenizer("char", "d2l")) == 16 + 1 + 0 + 1
    # lower-casing İ (U+0130, 2 bytes) gives "i" + combining dot U+0307 (1 + 2 bytes): the line grows
    assert n_bytes(["İ"], Tokenizer("word", "lower")) == 3 + 1
    assert n_bytes(["İ"], Tokenizer("word", "none")) == 2 + 1


def test_bytes_per_split_are_in_the_run_summary():
    ds = make_dataset(["ab"], ["é"], [])
    assert ds.summary()["splits"]["valid"]["n_bytes"] == 3


# ---------------------------------------------------------------- real corpora: ids unchanged

# Fingerprints from the encoder before line ends became structural (these corpora contain no
# literal </s> or <s>, so no id may change).
REAL_FINGERPRINTS = {
    ("ptb", "word", "none", 1): ("3c41b485632c8bc822a9ec7ca84dd387187e6b426a65ade0818d6d49eb55d384",
                                 "9347d1b9b3396618b92dc847c767cf1bf7d734d57a6a0880878937cd66c663bd"),
    ("ptb", "word", "lower", 2): ("dc15fcf0f7381afef1eb0b41b542b11390d55d8940c08d067aef3ff49fa646d3",
                                  "545865b4d049346d4286a6a94f66a11324900a6574cee1e26d3a8c54d64cac7c"),
    ("wikitext-2", "word", "none", 1): ("1d2fecfea295eb6048ee1ed744b0d71eefb12e07b2bc32a74935bdd579b21f8c",
                                        "8d5eeae45bd376dc93533076d5fcfa38dbfd5755768f8333d2bd992f37515b0e"),
    ("timemachine", "char", "d2l", 1): ("c53d5e02bc627047f4fc62b24cc8490a980729eb20318e3d73d5ab470877b7f1",
                                        "28c067a18f509dd176a7fd815c3b710c2f937c62cddb1245817cb5eda7fb6950"),
}


@lru_cache(maxsize=None)
def real_dataset(name: str, kind: str, normalize: str, min_freq: int = 1):
    return build_dataset(load_corpus(name), Tokenizer(kind, normalize), min_freq=min_freq)


@pytest.mark.parametrize("key", list(REAL_FINGERPRINTS), ids=lambda key: "-".join(map(str, key)))
def test_real_corpus_ids_are_unchanged_by_structural_line_ends(key):
    require_corpus(key[0])
    ds = real_dataset(*key)
    assert (ds.stats["train"].sha256, ds.stats["test"].sha256) == REAL_FINGERPRINTS[key]
    assert ds.stats["test"].sha256 == fingerprint(ds.splits["test"])


def test_ptb_bytes_per_split_equal_the_file_sizes():
    folder = require_corpus("ptb")
    ds = real_dataset("ptb", "word", "none", 1)
    for split in ("train", "valid", "test"):     # LF-terminated ASCII lines, no normalization
        assert ds.stats[split].n_bytes == (folder / f"ptb.{split}.txt").stat().st_size


def test_ascii_character_runs_have_one_byte_per_token():
    require_corpus("timemachine")
    ds = real_dataset("timemachine", "char", "d2l", 1)
    assert all(ds.stats[s].n_bytes == ds.stats[s].n_tokens for s in ("train", "valid", "test"))
