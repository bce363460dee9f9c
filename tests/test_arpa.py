"""ARPA interchange: export, loading files made elsewhere, the round trip, and ARPA models in a run.

Round-trip tolerance: for every token of a test split (and every token of the next-token
distributions after random histories), |log P_loaded - log P_model| <= 1e-6 nats.
"""

from __future__ import annotations

import errno
import gzip
import io
import math
import os
import stat
import warnings

import numpy as np
import pandas as pd
import pytest

from lmbench.models.ngram.arpa import ArpaModel, escape_token, read_arpa, unescape_token, write_arpa
from lmbench.errors import LmbenchError
from lmbench.models.ngram.interpolated import AbsoluteDiscount, KneserNey, WittenBell
from lmbench.models.ngram.jelinek_mercer import JelinekMercer
from lmbench.models.ngram.katz import Katz
from lmbench.models.ngram.mle import MLE, AddK
from lmbench.models.base import LanguageModel
from lmbench.models.ngram.stupid_backoff import StupidBackoff
from lmbench.models.checkpoint import load_model
from lmbench.models.registry import lookup, resolve
from lmbench.runs.runner import RunConfig, run_benchmark

from tests.conftest import make_dataset, random_lines

TOLERANCE = 1e-6
METHODS = [(KneserNey, {}), (KneserNey, {"modified": False}), (WittenBell, {}), (AbsoluteDiscount, {}),
           (Katz, {}), (JelinekMercer, {})]


def fit_quietly(cls, ds, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(**params).fit(ds.splits["train"], ds.splits["valid"], vocab=ds.vocab)


def assert_same_model(loaded, model, ds, seed=0):
    diff = np.abs(loaded.logprobs(ds.splits["test"]) - model.logprobs(ds.splits["test"]))
    assert diff.max() <= TOLERANCE
    rng = np.random.default_rng(seed)
    train, V = ds.splits["train"], len(ds.vocab)
    histories = [np.zeros(0, np.int64), train[:6]] + [rng.integers(0, V, size=rng.integers(1, 6)) for _ in range(8)]
    for history in histories:
        assert np.abs(loaded.next_logprobs(history) - model.next_logprobs(history)).max() <= TOLERANCE


@pytest.mark.parametrize("cls,params", METHODS, ids=lambda x: getattr(x, "__name__", str(x)))
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_round_trip(tmp_path, tiny_dataset, cls, params, order):
    ds = tiny_dataset
    model = fit_quietly(cls, ds, order=order, **params)
    write_arpa(model, tmp_path / "m.arpa")
    loaded = ArpaModel(str(tmp_path / "m.arpa")).fit(None, vocab=ds.vocab)
    assert loaded.comparable and loaded.order == order
    assert loaded.n_params == model.counts_.n_types(1) + sum(model.counts_.n_types(k) for k in range(2, order + 1))
    assert_same_model(loaded, model, ds, seed=order)


def test_file_layout(tmp_path):
    ds = make_dataset(["a b", "a c", "b a b"], ["a b"], ["a b"])
    model = KneserNey(order=3, discounts=[(0.5, 1.0, 1.5)] * 3).fit(ds.splits["train"], vocab=ds.vocab)
    buffer = io.StringIO()
    write_arpa(model, buffer)
    text = buffer.getvalue()
    lines = text.splitlines()
    assert lines[:5] == ["\\data\\", "ngram 1=6", "ngram 2=7", "ngram 3=6", ""]
    assert text.endswith("\n\\end\\\n")
    sections = {k: [line.split("\t") for line in text.split(f"\\{k}-grams:\n")[1].split("\n\n")[0].splitlines()]
                for k in (1, 2, 3)}
    unigrams = {fields[1]: fields for fields in sections[1]}
    assert set(unigrams) == {"<unk>", "</s>", "a", "b", "c", "<s>"}
    assert float(unigrams["<s>"][0]) == -99.0 and len(unigrams["<s>"]) == 3      # <s>: dummy probability, a backoff
    # P1(a) = 17/70 (see test_smoothing's hand-worked example); gamma(a) = 1/2 as a bigram context
    assert float(unigrams["a"][0]) == pytest.approx(math.log10(17 / 70), abs=1e-8)
    assert float(unigrams["a"][2]) == pytest.approx(math.log10(0.5), abs=1e-8)
    assert len(unigrams["<unk>"]) == 2                                             # never a context: no backoff
    bigrams = {fields[1]: fields for fields in sections[2]}
    assert "b </s>" in bigrams and len(bigrams["b </s>"]) == 2                    # ends in </s>: never a context
    assert float(bigrams["<s> a"][0]) == pytest.approx(math.log10(191 / 420), abs=1e-8)
    assert all(len(fields) == 2 for fields in sections[3])                       # highest order: no backoff
    trigrams = {fields[1]: float(fields[0]) for fields in sections[3]}
    assert trigrams["<s> a b"] == pytest.approx(math.log10(401 / 840), abs=1e-8)


def test_character_models_escape_whitespace(tmp_path):
    text = ["the time machine", "a b\tc  d", "by h. g. wells"]
    ds = make_dataset(text * 4, text[:1], text[1:], kind="char")
    assert " " in ds.vocab.stoi and "\t" in ds.vocab.stoi and ds.vocab.eos == "\n"
    model = KneserNey(order=4, discounts=0.5).fit(ds.splits["train"], vocab=ds.vocab)
    write_arpa(model, tmp_path / "chars.arpa.gz")
    with gzip.open(tmp_path / "chars.arpa.gz", "rt", encoding="utf-8") as handle:
        content = handle.read()
    assert "\t<U+0020>\t" in content and "\t<U+0009>" in content and "\t</s>" in content
    loaded = ArpaModel(str(tmp_path / "chars.arpa.gz")).fit(None, vocab=ds.vocab)
    assert loaded.fitted_summary()["vocab_tokens_missing"] == 0
    assert_same_model(loaded, model, ds)


def test_escaping_is_only_for_whitespace():
    for token in [" ", "\t", "\u00a0", "a b", "x"]:
        assert unescape_token(escape_token(token)) == token
    assert escape_token(" ") == "<U+0020>" and escape_token("\u3000") == "<U+3000>"
    assert unescape_token("<U+0041>") == "<U+0041>"        # not whitespace: left as written
    assert escape_token("<unk>") == "<unk>"


# ---------------------------------------------------------------- files made elsewhere

# A bigram model as KenLM writes it (tabs; <s> with log10 probability 0; its own <unk>; the word
# "NA", which must stay a word). Contexts without a listed backoff weight back off with weight 1.
KENLM_STYLE = """\\data\\
ngram 1=6
ngram 2=4

\\1-grams:
-1.5\t<unk>\t0
0\t<s>\t-0.3
-0.6\t</s>\t0
-0.5\tNA\t-0.2
-0.7\tb
-1.0\tc\t-0.1

\\2-grams:
-0.2\t<s> NA
-0.4\tNA b
-0.3\tb </s>
-0.25\tc NA

\\end\\
"""


@pytest.fixture
def kenlm_file(tmp_path):
    path = tmp_path / "kenlm.arpa"
    path.write_text(KENLM_STYLE)
    return path


def test_scores_a_file_made_elsewhere_by_hand(kenlm_file):
    ds = make_dataset(["NA b", "c NA", "b"], ["NA"], ["NA b", "c b", "NA NA c"])
    model = ArpaModel(str(kenlm_file)).fit(None, vocab=ds.vocab)
    log10 = np.log10(np.exp(model.logprobs(ds.splits["test"])))
    # line "NA b":  <s> NA listed (-0.2);  NA b listed (-0.4);  b </s> listed (-0.3)
    # line "c b":   <s> c not listed: bow(<s>) -0.3 + P(c) -1.0;  c b not listed: bow(c) -0.1 + P(b) -0.7;
    #               b </s> listed (-0.3)
    # line "NA NA c": <s> NA (-0.2); NA NA: bow(NA) -0.2 + P(NA) -0.5; NA c: -0.2 + -1.0; c </s>: -0.1 + -0.6
    expected = [-0.2, -0.4, -0.3, -1.3, -0.8, -0.3, -0.2, -0.7, -1.2, -0.7]
    np.testing.assert_allclose(log10, expected, atol=1e-12)
    # the next-token distribution after "b" (no backoff weight listed: weight 1) is the unigram one
    after_b = model.next_logprobs(np.array([ds.vocab.stoi["b"]]))
    assert after_b[ds.vocab.stoi["c"]] == pytest.approx(-1.0 * math.log(10))
    assert model.fitted_summary()["vocab_tokens_missing"] == 0 and model.comparable


def test_unknown_words_and_the_unk_word_option(kenlm_file):
    # the run's vocabulary has "d", which the file lacks: scored with the file's <unk>, and marked
    ds = make_dataset(["NA b d", "c"], ["d"], ["d"])
    model = ArpaModel(str(kenlm_file)).fit(None, vocab=ds.vocab)
    summary = model.fitted_summary()
    assert summary["vocab_tokens_missing"] == 1 and summary["missing_examples"] == ["d"]
    assert not model.comparable and "are not in the file" in model.not_comparable_reason
    # <s> d: not listed: bow(<s>) + P(<unk>)
    assert model.logprobs(ds.splits["test"])[0] == pytest.approx((-0.3 - 1.5) * math.log(10))
    # unk_word: the run's <unk> stands for the file's "c" (e.g. PTB's <unk> renamed for lmplz)
    renamed = ArpaModel(str(kenlm_file), unk_word="c").fit(None, vocab=ds.vocab)
    history = np.array([ds.vocab.stoi["b"]])
    assert renamed.next_logprobs(history)[ds.vocab.unk_id] == pytest.approx(-1.0 * math.log(10))
    assert model.next_logprobs(history)[ds.vocab.unk_id] == pytest.approx(-1.5 * math.log(10))


def test_malformed_files_are_one_line_errors(tmp_path):
    cases = {
        "nodata.arpa": ("hello\n", "no \\\\data\\\\ line"),
        "noeos.arpa": ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\t<s>\n-1\ta\n\n\\end\\\n", "<s> and </s>"),
        "missing.arpa": ("\\data\\\nngram 1=2\nngram 2=1\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n\n\\end\\\n", "no \\\\2-grams:"),
        "badnum.arpa": ("\\data\\\nngram 1=2\n\n\\1-grams:\nx\t<s>\n-1\t</s>\n\n\\end\\\n", "malformed 1-gram"),
        "count.arpa": ("\\data\\\nngram 1=3\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n\n\\end\\\n", "announces 3 1-grams"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(LmbenchError, match=message):
            read_arpa(tmp_path / name)
    with pytest.raises(LmbenchError, match="not found"):
        ArpaModel(str(tmp_path / "absent.arpa")).check_params()


def test_only_normalized_backoff_models_are_written(tmp_path, tiny_dataset):
    ds = tiny_dataset
    for model, message in [(MLE(order=2), "backoff form"), (AddK(order=2), "backoff form"),
                           (StupidBackoff(order=2), "not normalized")]:
        model.fit(ds.splits["train"], vocab=ds.vocab)
        with pytest.raises(LmbenchError, match=message):
            write_arpa(model, tmp_path / "x.arpa")
    assert not (tmp_path / "x.arpa").exists()


# ---------------------------------------------------------------- registry, persistence, runs


def test_registry_name(kenlm_file):
    assert lookup(f"arpa:{kenlm_file}") == (ArpaModel, {"path": str(kenlm_file)})
    spec = resolve(f"arpa:{kenlm_file}", {"unk_word": "NA"})
    assert spec.build().get_params() == {"path": str(kenlm_file), "unk_word": "NA"}
    with pytest.raises(LmbenchError, match="needs a file"):
        lookup("arpa:")


def test_save_and_load_an_arpa_model(tmp_path, tiny_dataset):
    ds = tiny_dataset
    model = fit_quietly(KneserNey, ds, order=3)
    write_arpa(model, tmp_path / "m.arpa")
    arpa = ArpaModel(str(tmp_path / "m.arpa")).fit(None, vocab=ds.vocab)
    arpa.save(tmp_path / "arpa.pt")
    (tmp_path / "m.arpa").unlink()                 # the saved model does not need the file any more
    loaded = load_model(tmp_path / "arpa.pt")
    assert type(loaded) is ArpaModel and loaded.fitted_summary() == arpa.fitted_summary()
    np.testing.assert_array_equal(loaded.logprobs(ds.splits["test"]), arpa.logprobs(ds.splits["test"]))


def test_an_exported_model_sits_in_the_same_table(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(random_lines(rng, 300, words=40)) + "\n")
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = run_benchmark(RunConfig(models=["trigram-kn"], corpus=str(corpus), out="one"), echo=lambda *a: None)
        model = load_model(tmp_path / "one" / "models" / "trigram-kn.pt")
        write_arpa(model, tmp_path / "kn3.arpa")
        second = run_benchmark(RunConfig(models=["trigram-kn", "arpa:kn3.arpa"], corpus=str(corpus), out="two"),
                               echo=lambda *a: None)
    assert not first.failures and not second.failures
    table = pd.read_csv(tmp_path / "two" / "perplexity.csv").set_index(["model", "split"])
    for split in ("valid", "test"):
        assert table.loc[("arpa:kn3.arpa", split), "perplexity"] == pytest.approx(
            table.loc[("trigram-kn", split), "perplexity"], rel=1e-6)
        assert table.loc[("arpa:kn3.arpa", split), "comparable"]


# ---------------------------------------------------------------- values no ARPA model can hold


def arpa_file(tmp_path, unigrams: str, bigrams: str = "", name="bad.arpa"):
    """A bigram (or unigram) ARPA file from tab-separated section lines; line 1 is \\data\\."""
    n1, n2 = len(unigrams.splitlines()), len(bigrams.splitlines())
    header = f"\\data\\\nngram 1={n1}\n" + (f"ngram 2={n2}\n" if bigrams else "")
    text = header + f"\n\\1-grams:\n{unigrams}\n" + (f"\n\\2-grams:\n{bigrams}\n" if bigrams else "") + "\n\\end\\\n"
    (tmp_path / name).write_text(text)
    return tmp_path / name


@pytest.mark.parametrize("unigrams, bigrams, location, problem", [
    # file lines: 1 \\data\\, 2-3 ngram counts, 4 blank, 5 \\1-grams:, 6.. unigrams, blank, \\2-grams:, bigrams
    ("-1\t<s>\n0.3\t</s>\n-1\ta", "-0.1\t<s> a", "\\1-grams: section, line 7 ('0.3\\t</s>')",
     "log10 probability 0.3 is above 0 (a probability above 1)"),
    ("-1\t<s>\t-0.5\n-1\t</s>\n-1\ta", "-0.1\t<s> a\n-inf\ta </s>", "\\2-grams: section, line 12",
     "log10 probability -inf is not a finite number"),
    ("-1\t<s>\t-0.5\n-1\t</s>\n-1\ta", "inf\t<s> a", "\\2-grams: section, line 11", "probability inf is not a finite"),
    ("-1\t<s>\tinf\n-1\t</s>\n-1\ta", "-0.1\t<s> a", "\\1-grams: section, line 6", "backoff weight inf is not a finite"),
])
def test_values_no_probability_model_can_hold_are_refused_naming_file_section_and_line(
        tmp_path, unigrams, bigrams, location, problem):
    path = arpa_file(tmp_path, unigrams, bigrams)
    with pytest.raises(LmbenchError) as info:
        read_arpa(path)
    message = str(info.value)
    assert message.startswith(f"{path}, {location}") and problem in message and "\n" not in message


def test_a_probability_above_one_can_never_give_perplexity_below_one(tmp_path):
    # every token "scored" log10 p = +0.5 would give perplexity 10**-0.5 < 1, marked comparable
    path = arpa_file(tmp_path, "0.5\t<s>\n0.5\t</s>\n0.5\ta")
    ds = make_dataset(["a a"], ["a"], ["a"])
    with pytest.raises(LmbenchError, match="above 0"):
        ArpaModel(str(path)).fit(None, vocab=ds.vocab)


# ---------------------------------------------------------------- words the file lacks

# KenLM style, with <unk> as a context: "<unk> b" is listed
WITH_UNK = ("-1.2\t<unk>\t-0.4\n0\t<s>\t-0.3\n-0.6\t</s>\n-0.5\ta\t-0.2\n-0.7\tb",
            "-0.1\t<unk> b\n-0.2\t<s> a\n-0.3\tb </s>")

# no <unk>, and its word 0 is </s>: a trigram model whose "a b </s>" needs the context "a b"
NO_UNK_TRIGRAM = """\\data\\
ngram 1=4
ngram 2=3
ngram 3=1

\\1-grams:
-0.6\t</s>\t-0.5
0\t<s>\t-0.3
-0.5\ta\t-0.2
-0.7\tb\t-0.4

\\2-grams:
-0.2\t<s> b\t-0.05
-0.3\ta b\t-0.15
-0.35\tb </s>

\\3-grams:
-0.05\ta b </s>

\\end\\
"""


def log10_scores(model, ids):
    with np.errstate(divide="ignore"):
        return np.log10(np.exp(model.logprobs(ids)))


def next_log10(model, history):
    with np.errstate(divide="ignore"):
        return np.log10(np.exp(model.next_logprobs(np.array(history))))


def test_words_the_file_lacks_are_its_unk_in_context_as_kenlm_scores_them(tmp_path):
    path = arpa_file(tmp_path, *WITH_UNK)
    ds = make_dataset(["a b d"], ["a"], ["d b"])
    model = ArpaModel(str(path)).fit(None, vocab=ds.vocab)
    # d: <s> <unk> not listed: bow(<s>) -0.3 + P(<unk>) -1.2;  b after d = <unk>: "<unk> b" -0.1;  b </s>: -0.3
    np.testing.assert_allclose(log10_scores(model, ds.splits["test"]), [-1.5, -0.1, -0.3], atol=1e-12)


def test_words_the_file_lacks_without_unk_match_no_ngram_and_never_end_a_line(tmp_path):
    (tmp_path / "m.arpa").write_text(NO_UNK_TRIGRAM)
    ds = make_dataset(["a d b", "d a b", "b"], ["a"], ["a d b", "d a b", "b"])
    model = ArpaModel(str(tmp_path / "m.arpa")).fit(None, vocab=ds.vocab)
    expected = [
        -0.3 - 0.5, -np.inf, -0.7, -0.35,   # a d b: b backs off past d to P(b) (not "<s> b": d is no line end)
        -np.inf, -0.5, -0.3, -0.05,          # d a b: a is P(a) with no bow(<s>); b </s> after "a b": the trigram
        -0.2, -0.05 - 0.35,                  # b: "<s> b";  "<s> b </s>" not listed: bow(<s> b) + "b </s>"
    ]
    np.testing.assert_allclose(log10_scores(model, ds.splits["test"]), expected, atol=1e-12)
    stoi = ds.vocab.stoi
    after_a_d = next_log10(model, [stoi["a"], stoi["d"]])
    assert after_a_d[stoi["b"]] == pytest.approx(-0.7) and after_a_d[stoi["a"]] == pytest.approx(-0.5)
    after_d_a = next_log10(model, [stoi["d"], stoi["a"]])
    assert after_d_a[stoi["b"]] == pytest.approx(-0.3) and after_d_a[ds.vocab.eos_id] == pytest.approx(-0.2 - 0.6)


def test_next_token_distribution_agrees_with_split_scores_around_missing_words(tmp_path):
    (tmp_path / "m.arpa").write_text(NO_UNK_TRIGRAM)
    ds = make_dataset(["a d b", "d a b", "b"], ["a"], ["a d b d d a b", "b a", "d"])
    model = ArpaModel(str(tmp_path / "m.arpa")).fit(None, vocab=ds.vocab)
    ids = ds.splits["test"]
    scores = model.logprobs(ids)
    for i in range(ids.size):
        assert model.next_logprobs(ids[:i])[ids[i]] == scores[i]


def test_comparable_is_computed_from_the_fitted_state_not_stored_on_the_instance(tmp_path):
    with_unk = ArpaModel(str(arpa_file(tmp_path, *WITH_UNK)))
    assert with_unk.comparable and with_unk.not_comparable_reason == ""      # before fit: the base contract
    ds = make_dataset(["a b d"], ["a"], ["d b"])
    with_unk.fit(None, vocab=ds.vocab)
    # d and the run's own <unk> both stand for the file's <unk>: their scores sum past 1
    assert not with_unk.comparable and with_unk.not_comparable_reason.startswith(
        "1 of the run's 5 vocabulary tokens share an ARPA word with another token (1 are not in the file")
    assert "comparable" not in vars(with_unk) and "not_comparable_reason" not in vars(with_unk)
    assert LanguageModel.comparable is True and LanguageModel.not_comparable_reason == ""
    (tmp_path / "m.arpa").write_text(NO_UNK_TRIGRAM)
    no_unk = ArpaModel(str(tmp_path / "m.arpa")).fit(None, vocab=ds.vocab)
    # missing words get probability zero: nothing shared, an honest (sub-)distribution
    assert no_unk.comparable and no_unk.fitted_summary()["vocab_tokens_missing"] == 2
    with_unk.save(tmp_path / "saved.pt")
    assert not load_model(tmp_path / "saved.pt").comparable


# ---------------------------------------------------------------- exporting never damages files


def test_gz_export_that_fails_keeps_the_good_archive_and_leaves_no_empty_file(tmp_path, tiny_dataset, monkeypatch):
    model = fit_quietly(KneserNey, tiny_dataset, order=2)
    good = tmp_path / "m.arpa.gz"
    write_arpa(model, good)
    before = good.read_bytes()
    assert gzip.decompress(before).decode().startswith("\\data\\")
    bigger = fit_quietly(KneserNey, tiny_dataset, order=3)
    with monkeypatch.context() as patch:
        patch.setattr(os, "write", lambda fd, data: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
        for path in (good, tmp_path / "new.arpa.gz"):
            with pytest.raises(LmbenchError, match="the disk is full") as info:
                write_arpa(bigger, path)
            assert "\n" not in str(info.value)
    assert good.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.arpa.gz"]


def test_gz_export_is_reproducible(tmp_path, tiny_dataset):
    model = fit_quietly(KneserNey, tiny_dataset, order=2)
    write_arpa(model, tmp_path / "a.arpa.gz")
    write_arpa(model, tmp_path / "b.arpa.gz")
    assert (tmp_path / "a.arpa.gz").read_bytes() == (tmp_path / "b.arpa.gz").read_bytes()


@pytest.mark.parametrize("name", ["m.arpa", "m.arpa.gz"])
def test_export_into_a_missing_folder_is_a_one_line_error(tmp_path, tiny_dataset, name):
    model = fit_quietly(KneserNey, tiny_dataset, order=2)
    with pytest.raises(LmbenchError, match="its folder does not exist") as info:
        write_arpa(model, tmp_path / "absent" / name)
    assert "\n" not in str(info.value) and not (tmp_path / "absent").exists()


def test_export_into_a_read_only_folder_is_a_one_line_error(tmp_path, tiny_dataset, monkeypatch):
    model = fit_quietly(KneserNey, tiny_dataset, order=2)
    monkeypatch.setattr(os, "open", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EACCES, "Permission denied")))
    with pytest.raises(LmbenchError, match="its folder is not writable"):
        write_arpa(model, tmp_path / "m.arpa.gz")


def test_export_refuses_a_device_node_target(tiny_dataset):
    model = fit_quietly(KneserNey, tiny_dataset, order=2)
    with pytest.raises(LmbenchError, match="/dev/null exists and is a character device"):
        write_arpa(model, "/dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_an_ordinary_word_spelled_like_the_end_of_sentence_is_not_a_line_end(tmp_path):
    ds = make_dataset(["a b </s>", "a </s> b"], ["a"], ["a </s> b"])
    literal = ds.vocab.stoi["</s>"]
    assert literal != ds.vocab.eos_id                      # the text's own "</s>" is an ordinary word
    model = ArpaModel(str(arpa_file(tmp_path, *WITH_UNK))).fit(None, vocab=ds.vocab)
    # a: "<s> a" -0.2;  "</s>" is not the file's </s>: <unk>, "a <unk>" not listed: bow(a) -0.2 + P(<unk>) -1.2;
    # b after <unk>: "<unk> b" -0.1 (as a line end it would have been bow(<s>) + P(b) = -1.0);  b </s>: -0.3
    np.testing.assert_allclose(log10_scores(model, ds.splits["test"]), [-0.2, -1.4, -0.1, -0.3], atol=1e-12)
    kn = fit_quietly(KneserNey, ds, order=2)
    with pytest.raises(LmbenchError, match="ordinary word spelled </s>, which ARPA reserves"):
        write_arpa(kn, tmp_path / "clash.arpa")
    assert not (tmp_path / "clash.arpa").exists()
    with pytest.raises(LmbenchError, match="other than <s> and </s>"):
        ArpaModel(str(tmp_path / "bad.arpa"), unk_word="</s>").check_params()
