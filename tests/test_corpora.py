"""Corpus resolution, splitting, tokenization and the vocabulary."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from lmbench.data import corpora
from lmbench.data.corpora import NAMED_CORPORA, find_split_files, load_corpus, split_lines
from lmbench.data.dataset import build_dataset, fingerprint
from lmbench.errors import LmbenchError
from lmbench.data.tokenizers import Tokenizer
from lmbench.data.vocab import Vocabulary

from tests.conftest import corpus_dir, make_dataset, require_corpus

# ---------------------------------------------------------------- splitting


def test_split_lines_is_contiguous_and_deterministic():
    lines = [f"line {i}" for i in range(20)]
    parts = split_lines(lines)
    assert parts["train"] == lines[:16] and parts["valid"] == lines[16:18] and parts["test"] == lines[18:]
    assert split_lines(lines, (0.5, 0.25, 0.25))["valid"] == lines[10:15]


@pytest.mark.parametrize("fractions", [(0.5, 0.1, 0.1), (0.9, 0.1, 0.0), (1.2, -0.1, -0.1), (0.5, 0.5)])
def test_bad_fractions(fractions):
    with pytest.raises(LmbenchError, match="summing to 1"):
        split_lines(["a"] * 10, fractions)


def test_too_few_lines_to_split():
    with pytest.raises(LmbenchError, match="too few to split"):
        split_lines(["a", "b"])


def test_file_corpus(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text("".join(f"w{i} x\n" for i in range(10)))
    raw = load_corpus(str(path))
    assert raw.name == "story" and len(raw.splits["train"]) == 8 and raw.splits["test"] == ["w9 x"]
    assert raw.source["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_crlf_is_read_as_lines(tmp_path):
    path = tmp_path / "crlf.txt"
    path.write_bytes(b"a b\r\nc d\r\n" * 10)
    assert load_corpus(str(path)).splits["train"][0] == "a b"


@pytest.mark.parametrize("names", [("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"),
                                   ("train.txt", "val.txt", "test.txt"),
                                   ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens")])
def test_directory_corpus(tmp_path, names):
    for name in names:
        (tmp_path / name).write_text(f"{name} text\n")
    raw = load_corpus(str(tmp_path))
    assert raw.splits["valid"] == [f"{names[1]} text"]


def test_directory_missing_or_ambiguous_split(tmp_path):
    (tmp_path / "train.txt").write_text("a\n")
    (tmp_path / "test.txt").write_text("a\n")
    with pytest.raises(LmbenchError, match="no file for the valid split"):
        find_split_files(tmp_path)
    (tmp_path / "valid.txt").write_text("a\n")
    (tmp_path / "val.txt").write_text("a\n")
    with pytest.raises(LmbenchError, match="2 files"):
        find_split_files(tmp_path)


# ---------------------------------------------------------------- bad files


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"  \n\n", "is empty"),
    (b"abc\x00\x01\x02" * 10, "looks binary"),
    ("caf\u00e9 cr\u00e8me\n".encode("latin-1") * 10, "not valid utf-8.*--encoding"),
])
def test_unusable_files(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(LmbenchError, match=message):
        load_corpus(str(path))


def test_other_encoding_works_when_named(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("caf\u00e9 cr\u00e8me\n".encode("latin-1") * 10)
    assert load_corpus(str(path), encoding="latin-1").splits["train"][0] == "caf\u00e9 cr\u00e8me"


def test_missing_file_and_unknown_name():
    with pytest.raises(LmbenchError, match="corpus file not found"):
        load_corpus("no/such/file.txt")
    with pytest.raises(LmbenchError, match="did you mean 'wikitext-2'"):
        load_corpus("wikitext2")


# ---------------------------------------------------------------- named corpora: resolution, download


def fake_corpus(tmp_path, text=b"one line\nanother line\nthird\nfourth\nfifth\n"):
    """A named corpus of one file whose download URL is a local file:// URL."""
    source = tmp_path / "source.txt"
    source.write_bytes(text)
    file = corpora.CorpusFile("fake.txt", None, hashlib.sha256(text).hexdigest(), source.as_uri())
    return dataclasses.replace(NAMED_CORPORA["timemachine"], name="fake", files=(file,), embedded=False)


def test_resolution_order_prefers_lmbench_data(tmp_path, monkeypatch):
    corpus = fake_corpus(tmp_path)
    monkeypatch.setitem(NAMED_CORPORA, "fake", corpus)
    for folder in ("data/fake", "cwd/corpora/fake"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "fake.txt").write_bytes(b"x\n" * 10)
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("LMBENCH_DATA", str(tmp_path / "data"))
    with warnings.catch_warnings(record=True):
        assert load_corpus("fake").source["found_in"] == "$LMBENCH_DATA"
        monkeypatch.delenv("LMBENCH_DATA")
        assert load_corpus("fake").source["found_in"] == "./corpora"


def test_download_verifies_checksum_into_cache(tmp_path, monkeypatch):
    corpus = fake_corpus(tmp_path)
    monkeypatch.setitem(NAMED_CORPORA, "fake", corpus)
    monkeypatch.delenv("LMBENCH_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    raw = load_corpus("fake", (0.6, 0.2, 0.2))
    assert raw.source["found_in"] == "downloaded" and raw.source["sha256_verified"] == {"fake.txt": True}
    assert (corpora.cache_dir() / "fake" / "fake.txt").is_file()
    assert load_corpus("fake", (0.6, 0.2, 0.2)).source["found_in"] == "cache"


def test_download_with_wrong_checksum_saves_nothing(tmp_path, monkeypatch):
    corpus = fake_corpus(tmp_path)
    bad = dataclasses.replace(corpus.files[0], sha256="0" * 64)
    monkeypatch.setitem(NAMED_CORPORA, "fake", dataclasses.replace(corpus, files=(bad,)))
    monkeypatch.delenv("LMBENCH_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LmbenchError, match="expected 000000000000"):
        load_corpus("fake")
    assert not (corpora.cache_dir() / "fake" / "fake.txt").exists()


def test_offline_error_says_where_it_looked(tmp_path, monkeypatch):
    corpus = fake_corpus(tmp_path)
    offline = dataclasses.replace(corpus.files[0], url="http://127.0.0.1:9/fake.txt")
    monkeypatch.setitem(NAMED_CORPORA, "fake", dataclasses.replace(corpus, files=(offline,)))
    monkeypatch.delenv("LMBENCH_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LmbenchError, match=r"not found locally \(looked in \$LMBENCH_DATA \(unset\), ./corpora.*LMBENCH_DATA.*--corpus PATH"):
        load_corpus("fake")


def test_modified_local_copy_warns(tmp_path, monkeypatch):
    corpus = fake_corpus(tmp_path)
    monkeypatch.setitem(NAMED_CORPORA, "fake", corpus)
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "fake.txt").write_bytes(b"changed\n" * 10)
    monkeypatch.setenv("LMBENCH_DATA", str(tmp_path))
    with pytest.warns(UserWarning, match="differs from the published"):
        assert load_corpus("fake").source["sha256_verified"] == {"fake.txt": False}


def test_real_named_corpora_have_published_sizes():
    require_corpus("ptb")
    raw = load_corpus("ptb")
    assert raw.source["sha256_verified"] == {"ptb.train.txt": True, "ptb.valid.txt": True, "ptb.test.txt": True}
    ds = build_dataset(raw, Tokenizer("word"))
    assert [ds.stats[s].n_tokens for s in ("train", "valid", "test")] == [929_589, 73_760, 82_430]
    assert ds.stats["test"].n_oov == 0 and ds.stats["test"].n_unk == 4_794  # PTB's own <unk> is ours


def test_timemachine_defaults_to_d2l_characters():
    raw = load_corpus("timemachine")          # from LMBENCH_DATA if set, else the embedded copy
    assert (raw.tokenizer, raw.normalize) == ("char", "d2l")
    ds = build_dataset(raw, Tokenizer(raw.tokenizer, raw.normalize))
    assert len(ds.vocab) == 29  # a-z, space, <unk>, newline
    lines = sum(len(raw.splits[s]) for s in ("train", "valid", "test"))
    assert lines == 3221
    # d2l's line-by-line preprocessing gives 170,580 characters; plus one newline token per line
    assert sum(ds.stats[s].n_tokens for s in ("train", "valid", "test")) == 170_580 + 3221


# ---------------------------------------------------------------- NLTK corpora


def test_nltk_corpora():
    if not (corpora.nltk_corpus_available("gutenberg") and corpora.nltk_corpus_available("treebank")):
        pytest.skip("NLTK data not available (set NLTK_DATA)")
    emma = load_corpus("nltk:gutenberg/austen-emma.txt")
    assert emma.name == "nltk-gutenberg-austen-emma" and emma.splits["train"][0].startswith("[Emma by Jane Austen 1816]")
    treebank = load_corpus("nltk:treebank")
    assert len(sum(treebank.splits.values(), [])) == 3914
    assert "*-1" not in " ".join(treebank.splits["train"][:200]).split()  # -NONE- traces are dropped
    with pytest.raises(LmbenchError, match="did you mean 'gutenberg'"):
        load_corpus("nltk:gutenburg")
    with pytest.raises(LmbenchError, match="unknown file of nltk:gutenberg"):
        load_corpus("nltk:gutenberg/emma.txt")


# ---------------------------------------------------------------- tokens and vocabulary


def test_tokenizers():
    assert Tokenizer("word").tokenize(["a  b", ""]) == ["a", "b", "</s>", "</s>"]
    assert Tokenizer("char").tokenize(["ab"]) == ["a", "b", "\n"]
    assert Tokenizer("char").tokenize(["语言模型"]) == ["语", "言", "模", "型", "\n"]
    assert Tokenizer("word", "d2l").tokenize_line("The Time-Machine, 1895!") == ["the", "time", "machine"]
    assert Tokenizer("char", "d2l").tokenize_line("Año 2024: ¡Hola!") == list("año hola")
    assert Tokenizer("word", "lower").tokenize_line("The CAT") == ["the", "cat"]
    with pytest.raises(LmbenchError, match="unknown tokenizer"):
        Tokenizer("sentencepiece")


def test_chinese_character_dataset():
    ds = make_dataset(["我爱语言模型", "语言很美"], ["我爱你"], ["模型"], kind="char")
    assert "语" in ds.vocab.stoi and ds.stats["valid"].n_oov == 1  # 你 is unseen


def test_vocabulary_min_freq_max_vocab_and_unk():
    tokens = "a a a b b c <unk>".split()   # line ends are structural: not among the tokens
    vocab = Vocabulary.build(tokens, "</s>")
    assert vocab.itos == ["<unk>", "</s>", "a", "b", "c"]  # the corpus's own <unk> is the same token
    assert Vocabulary.build(tokens, "</s>", min_freq=2).itos == ["<unk>", "</s>", "a", "b"]
    assert Vocabulary.build(tokens, "</s>", max_vocab=3).itos == ["<unk>", "</s>", "a"]
    ids, n_oov = vocab.encode(["a", "zzz", "<unk>", "c"])
    assert ids.tolist() == [2, 0, 0, 4] and n_oov == 1
    with pytest.raises(LmbenchError, match="min-freq"):
        Vocabulary.build(tokens, "</s>", min_freq=0)


def test_vocabulary_is_built_from_train_only_and_fingerprinted():
    ds = make_dataset(["a b"], ["a z"], ["z z"])
    assert "z" not in ds.vocab.stoi
    assert ds.stats["valid"].n_oov == 1 and ds.stats["test"].n_oov == 2 and ds.stats["test"].n_unk == 2
    assert ds.stats["test"].sha256 == fingerprint(ds.splits["test"])
    again = make_dataset(["a b"], ["a z"], ["z z"])
    assert again.stats["test"].sha256 == ds.stats["test"].sha256
    assert fingerprint(np.array([1, 2])) != fingerprint(np.array([2, 1]))


# ---------------------------------------------------------------- the embedded timemachine


def no_network(monkeypatch):
    """Make any download attempt fail the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")
    monkeypatch.setattr(corpora.urllib.request, "urlopen", refuse)


def test_timemachine_loads_from_the_embedded_copy_with_no_network_or_environment(tmp_path, monkeypatch):
    no_network(monkeypatch)
    monkeypatch.delenv("LMBENCH_DATA", raising=False)
    monkeypatch.chdir(tmp_path)                       # no ./corpora here; LMBENCH_CACHE is an empty folder
    raw = load_corpus("timemachine")
    assert raw.source["found_in"] == "embedded" and raw.source["sha256_verified"] == {"timemachine.txt": True}
    assert not raw.presplit and raw.source["split"] == "80/10/10"
    assert sum(len(lines) for lines in raw.splits.values()) == 3221
    assert raw.splits["train"][0] == "The Time Machine, by H. G. Wells [1898]"


def test_embedded_timemachine_is_package_data_with_the_published_checksum():
    import configparser
    import fnmatch
    import importlib.resources

    shipped = importlib.resources.files("lmbench.data").joinpath("corpus_data", "timemachine.txt").read_bytes()
    assert hashlib.sha256(shipped).hexdigest() == NAMED_CORPORA["timemachine"].files[0].sha256
    setup = configparser.ConfigParser()
    setup.read(Path(corpora.__file__).parents[2] / "setup.cfg")
    patterns = setup["options.package_data"]["lmbench.data"].split()
    assert any(fnmatch.fnmatch("corpus_data/timemachine.txt", p) for p in patterns)  # installed wheels ship it


def test_data_folders_still_win_over_the_embedded_copy(tmp_path, monkeypatch):
    no_network(monkeypatch)
    (tmp_path / "timemachine").mkdir()
    (tmp_path / "timemachine" / "timemachine.txt").write_bytes((corpora.embedded_dir() / "timemachine.txt").read_bytes())
    monkeypatch.setenv("LMBENCH_DATA", str(tmp_path))
    assert load_corpus("timemachine").source["found_in"] == "$LMBENCH_DATA"


def test_timemachine_is_never_downloaded_when_the_embedded_copy_is_missing(tmp_path, monkeypatch):
    no_network(monkeypatch)
    monkeypatch.delenv("LMBENCH_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(corpora, "embedded_dir", lambda: None)
    with pytest.raises(LmbenchError, match="copy shipped with lmbench is missing; reinstall lmbench or set LMBENCH_DATA"):
        load_corpus("timemachine")


def test_a_damaged_embedded_copy_is_refused_not_used(tmp_path, monkeypatch):
    monkeypatch.delenv("LMBENCH_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "timemachine.txt").write_text("not the time machine\n" * 20)
    monkeypatch.setattr(corpora, "embedded_dir", lambda: tmp_path / "pkg")
    with pytest.raises(LmbenchError, match="shipped with lmbench .* is damaged .*reinstall lmbench"):
        load_corpus("timemachine")


# ---------------------------------------------------------------- token counts a run reports


@pytest.mark.parametrize("name", list(NAMED_CORPORA))
def test_stored_token_counts_equal_what_build_dataset_counts(name, monkeypatch, tmp_path):
    corpus = NAMED_CORPORA[name]
    if corpus.embedded:          # always testable: from the copy inside the package
        monkeypatch.delenv("LMBENCH_DATA", raising=False)
        monkeypatch.chdir(tmp_path)
    else:
        require_corpus(name)
    raw = load_corpus(name)
    ds = build_dataset(raw, Tokenizer(corpus.tokenizer, corpus.normalize))
    assert {s: ds.stats[s].n_tokens for s in ("train", "valid", "test")} == corpus.split_tokens()


def test_corpora_listing_shows_the_token_counts_a_run_reports(tmp_path, monkeypatch):
    monkeypatch.delenv("LMBENCH_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    rows = {row["name"]: row for row in corpora.describe_corpora()}
    tm = rows["timemachine"]
    assert (tm["train_tokens"], tm["valid_tokens"], tm["test_tokens"]) == (140_521, 17_187, 16_093)
    assert tm["tokenizer"] == "char, normalize=d2l" and tm["available"].startswith("yes (embedded")
    assert (rows["ptb"]["train_tokens"], rows["ptb"]["test_tokens"]) == (929_589, 82_430)
    assert rows["ptb"]["available"] == "no (downloads on first use)"


# ---------------------------------------------------------------- split files: exact names, distinct files


@pytest.mark.parametrize("filename, splits", [
    ("ptb.train.txt", ["train"]), ("wiki.valid.tokens", ["valid"]), ("train.txt", ["train"]),
    ("val.txt", ["valid"]), ("dev.txt", ["valid"]), ("en-validation.txt", ["valid"]), ("TEST.TXT", ["test"]),
    ("my corpus_test-1.txt", ["test"]), ("training.txt", []), ("contest.txt", []), ("interval.txt", []),
    ("README.md", []), ("train_test.txt", ["train", "test"]), ("valid.test.txt", ["valid", "test"]),
])
def test_split_words_match_only_as_whole_name_parts(filename, splits):
    assert corpora.splits_named(filename) == splits


def test_a_file_naming_two_splits_is_refused_not_used_twice(tmp_path):
    # this directory used train_test.txt as both the train and the test file
    (tmp_path / "train_test.txt").write_text("a b\n" * 5)
    (tmp_path / "valid.txt").write_text("c d\n" * 5)
    with pytest.raises(LmbenchError, match="train_test.txt names several splits \\(train and test\\); rename"):
        load_corpus(str(tmp_path))


def test_files_naming_no_split_are_ignored(tmp_path):
    for name, text in [("train.txt", "a\n"), ("valid.txt", "b\n"), ("test.txt", "c\n"), ("README.md", "about\n"),
                       ("contest.txt", "x\n")]:
        (tmp_path / name).write_text(text)
    assert load_corpus(str(tmp_path)).splits == {"train": ["a"], "valid": ["b"], "test": ["c"]}


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_splits_that_are_one_linked_file_are_refused(tmp_path, link):
    (tmp_path / "train.txt").write_text("a b\n" * 5)
    (tmp_path / "valid.txt").write_text("c d\n" * 5)
    getattr(os, link if link == "symlink" else "link")(tmp_path / "train.txt", tmp_path / "test.txt")
    with pytest.raises(LmbenchError, match="the train and test splits are the same file"):
        load_corpus(str(tmp_path))


def test_splits_with_identical_content_are_refused(tmp_path):
    (tmp_path / "train.txt").write_text("a b\n" * 5)
    (tmp_path / "valid.txt").write_text("a b\n" * 5)
    (tmp_path / "test.txt").write_text("c d\n" * 5)
    with pytest.raises(LmbenchError, match="the train and valid splits have identical content"):
        load_corpus(str(tmp_path))


def test_presplit_marks_corpora_that_come_with_their_own_splits(tmp_path, monkeypatch):
    for name in ("train.txt", "valid.txt", "test.txt"):
        (tmp_path / name).write_text(f"{name}\n")
    assert load_corpus(str(tmp_path)).presplit
    assert not load_corpus(str(tmp_path / "train.txt"), fractions=None).presplit
    monkeypatch.delenv("LMBENCH_DATA", raising=False)
    assert not load_corpus("timemachine").presplit
    assert [NAMED_CORPORA[n].presplit for n in ("timemachine", "ptb", "wikitext-2")] == [False, True, True]
    if corpus_dir("ptb"):
        monkeypatch.setenv("LMBENCH_DATA", str(corpus_dir("ptb").parent))
        assert load_corpus("ptb").presplit
