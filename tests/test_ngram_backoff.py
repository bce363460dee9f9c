"""The back-off form of the discounting methods (``form="backoff"``, names ``<order>-kn-bo``, ...).

By hand, against a loop-based recursion of SRILM's definition, as distributions, through ARPA files, and
on PTB against SRILM 1.7.3's own figures.
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest

from lmbench.errors import LmbenchError
from lmbench.models.ngram import AbsoluteDiscount, Katz, KneserNey, SmoothedNGram, WittenBell
from lmbench.models.ngram.arpa import ArpaModel, write_arpa
from lmbench.models.ngram.tables import backoff_weights
from lmbench.models.registry import lookup, resolve

from tests.conftest import make_dataset
from tests.test_smoothing import Reference

BACKOFF = [(KneserNey, {}), (KneserNey, {"modified": False}), (WittenBell, {}), (AbsoluteDiscount, {})]


def test_backoff_weights_by_hand():
    # context 0: p = 0.5, 0.2 over lower-order mass 0.3 + 0.1 -> (1 - 0.7) / (1 - 0.4); context 1: none -> 1
    weights = backoff_weights(np.array([0.5, 0.2]), np.array([0.3, 0.1]), np.array([0, 0]), 2)
    np.testing.assert_allclose(weights, [0.3 / 0.6, 1.0], rtol=1e-15)


def test_witten_bell_backoff_by_hand():
    ds = make_dataset(["a b", "a c", "b a b"], ["a b"], ["a b"])
    model = WittenBell(order=2, form="backoff").fit(ds.splits["train"], vocab=ds.vocab)
    stoi = ds.vocab.stoi
    dist = np.exp(model.next_logprobs(np.array([stoi["a"]])))
    # unigrams as the interpolated form: P1(a) = P1(b) = 19/70, P1(c) = 9/70 (see test_smoothing)
    # context a: c(a .) = 3, 2 types: p(a b) = 2/5, p(a c) = 1/5; bow(a) = (2/5) / (1 - 19/70 - 9/70) = 2/3
    assert dist[stoi["b"]] == pytest.approx(2 / 5) and dist[stoi["c"]] == pytest.approx(1 / 5)
    assert dist[stoi["a"]] == pytest.approx(2 / 3 * 19 / 70)
    assert dist.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_backoff_forms_match_the_reference_recursion(zipf_data, order):
    ds, lines, test_lines = zipf_data
    ref = Reference(lines, order, len(ds.vocab), ds.vocab.bos_id)
    train, test = ds.splits["train"], ds.splits["test"]
    cases = {
        "kn": (KneserNey(order=order, form="backoff"), ref.adj_followers, ref.kn_discounts()),
        "kn1": (KneserNey(order=order, modified=False, form="backoff"), ref.adj_followers,
                [(d[0],) * 3 for d in ref.kn_discounts()]),
        "abs": (AbsoluteDiscount(order=order, form="backoff"), ref.followers, ref.abs_discounts()),
    }
    for name, (model, followers, discounts) in cases.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")           # estimates valid on this corpus: no fallback
            model.fit(train, vocab=ds.vocab)
        interpolated = ref.discounted(followers, discounts)
        p = ref.backoff(followers, ref.discounted_alpha(followers, discounts), lambda w: interpolated((), w))
        np.testing.assert_allclose(model.logprobs(test), ref.score_lines(test_lines, p), rtol=1e-10, err_msg=name)
    wb = WittenBell(order=order, form="backoff").fit(train, vocab=ds.vocab)
    interpolated = ref.witten_bell()
    p = ref.backoff(ref.followers, ref.witten_bell_alpha, lambda w: interpolated((), w))
    np.testing.assert_allclose(wb.logprobs(test), ref.score_lines(test_lines, p), rtol=1e-10)


@pytest.mark.parametrize("cls,params", BACKOFF, ids=lambda x: getattr(x, "__name__", str(x)))
def test_backoff_distributions_sum_to_one_and_save_and_export(tiny_dataset, tmp_path, cls, params):
    ds = tiny_dataset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cls(order=3, form="backoff", **params).fit(ds.splits["train"], vocab=ds.vocab)
    for history in ([], [2], [3, 4], [0, 0], list(ds.splits["train"][:5])):
        dist = np.exp(model.next_logprobs(np.array(history, dtype=np.int64)))
        assert dist.sum() == pytest.approx(1.0, abs=1e-12) and (dist > 0).all()
    interpolated = cls(order=3, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpolated.fit(ds.splits["train"], vocab=ds.vocab)
    assert not np.array_equal(model.logprobs(ds.splits["test"]), interpolated.logprobs(ds.splits["test"]))
    text = io.StringIO()
    write_arpa(model, text)
    (tmp_path / "bo.arpa").write_text(text.getvalue())
    loaded = ArpaModel(str(tmp_path / "bo.arpa")).fit(None, vocab=ds.vocab)
    assert np.abs(loaded.logprobs(ds.splits["test"]) - model.logprobs(ds.splits["test"])).max() < 1e-6


def test_backoff_names_and_the_form_switch():
    assert lookup("trigram-wb-bo") == (WittenBell, {"order": 3, "form": "backoff"})
    assert lookup("5gram-kn-bo") == (KneserNey, {"order": 5, "modified": True, "form": "backoff"})
    assert lookup("4gram-kn1-bo") == (KneserNey, {"order": 4, "modified": False, "form": "backoff"})
    assert lookup("bigram-abs-bo") == (AbsoluteDiscount, {"order": 2, "form": "backoff"})
    assert resolve("trigram-wb", {"form": "backoff"}).build().form == "backoff"
    with pytest.raises(LmbenchError, match="form must be one of interpolated, backoff, got 'bo'"):
        WittenBell(order=2, form="bo").check_params()
    with pytest.raises(LmbenchError, match="form must be one of backoff"):
        SmoothedNGram(order=2, smoothing="katz", form="interpolated").check_params()
    assert Katz(order=2).form == "backoff"


def test_the_generic_class_is_the_named_class(tiny_dataset):
    ds = tiny_dataset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # no unigram seen once here: fallback discounts, on both
        named = KneserNey(order=3, modified=False, form="backoff").fit(ds.splits["train"], vocab=ds.vocab)
        generic = SmoothedNGram(order=3, smoothing="kn", params={"modified": False}, form="backoff").fit(
            ds.splits["train"], vocab=ds.vocab)
    assert np.array_equal(named.logprobs(ds.splits["test"]), generic.logprobs(ds.splits["test"]))
    assert generic.discounts_.shape == (3, 3) and generic.fitted_summary() == named.fitted_summary()


#: SRILM 1.7.3, PTB trigrams, no cutoffs, closed vocabulary (/work/tools/REPORT.md): (valid, test) perplexity.
SRILM_PTB = {"trigram-wb-bo": (188.3823, 176.8676), "trigram-kn1-bo": (167.8449, 158.1206),
             "trigram-kn-bo": (170.4776, 161.9928), "trigram-abs-bo": (178.9037, 166.6727),
             "trigram-wb": (200.4403, 186.3118), "trigram-kn1": (161.3967, 150.6023),
             "trigram-kn": (157.7659, 148.2813), "trigram-abs": (180.9105, 166.4922), "trigram-katz": (179.5013, 166.9962)}


@pytest.mark.parametrize("name", ["trigram-wb-bo", "trigram-kn1-bo", "trigram-kn-bo", "trigram-abs-bo"])
def test_ptb_backoff_forms_match_srilm(ptb_dataset, name):
    """To SRILM's printed digits (it stores log10 probabilities as float32: it rounds the 5th digit at most)."""
    ds = ptb_dataset
    model = resolve(name).build().fit(ds.splits["train"], vocab=ds.vocab)
    for split, expected in zip(("valid", "test"), SRILM_PTB[name]):
        assert math.isclose(model.perplexity(ds.splits[split]), expected, rel_tol=2e-6), split
