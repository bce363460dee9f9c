"""MLE and add-k n-gram models: hand-worked values, an independent reference, nltk.lm, invariants."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest

from lmbench.errors import LmbenchError
from lmbench.models.ngram.mle import MLE, AddK
from lmbench.models.ngram.model import MAX_ORDER
from lmbench.models.ngram.counts import NGramCounts, pad_lines
from lmbench.models.checkpoint import load_model
from lmbench.models.registry import resolve

from tests.conftest import make_dataset, random_lines

# ---------------------------------------------------------------- hand-worked examples
#
# train: "a b a" / "b a"  ->  <s> a b a </s>   <s> b a </s>
# vocabulary: <unk> </s> a b  (V = 4; a:3, b:2, </s>:2 tokens, N = 7)
# bigram counts: (<s>,a)=1 (<s>,b)=1 (a,b)=1 (b,a)=2 (a,</s>)=2;  c(<s>.)=2 c(a.)=3 c(b.)=2


@pytest.fixture
def ab():
    return make_dataset(["a b a", "b a"], ["b a"], ["a a"])


def test_vocabulary_layout(ab):
    assert ab.vocab.itos == ["<unk>", "</s>", "a", "b"]
    assert ab.vocab.bos_id == 4


def test_bigram_mle_by_hand(ab):
    model = MLE(order=2).fit(ab.splits["train"], vocab=ab.vocab)
    # valid "b a </s>": P(b|<s>) = 1/2, P(a|b) = 2/2, P(</s>|a) = 2/3
    np.testing.assert_allclose(model.logprobs(ab.splits["valid"]), np.log([1 / 2, 1.0, 2 / 3]))


def test_bigram_add_one_by_hand(ab):
    model = AddK(order=2, k=1).fit(ab.splits["train"], vocab=ab.vocab)
    # (c + 1) / (c(h) + V): (1+1)/(2+4), (2+1)/(2+4), (2+1)/(3+4)
    np.testing.assert_allclose(model.logprobs(ab.splits["valid"]), np.log([2 / 6, 3 / 6, 3 / 7]))


def test_unigram_by_hand(ab):
    mle = MLE(order=1).fit(ab.splits["train"], vocab=ab.vocab)
    add1 = AddK(order=1, k=1).fit(ab.splits["train"], vocab=ab.vocab)
    np.testing.assert_allclose(mle.logprobs(ab.splits["valid"]), np.log([2 / 7, 3 / 7, 2 / 7]))
    np.testing.assert_allclose(add1.logprobs(ab.splits["valid"]), np.log([3 / 11, 4 / 11, 3 / 11]))


def test_trigram_uses_bos_context_at_line_start(ab):
    model = MLE(order=3).fit(ab.splits["train"], vocab=ab.vocab)
    # P(b|<s>) = 1/2 (only one <s> of context exists), P(a|<s> b) = 1/1, P(</s>|b a) = 2/2
    np.testing.assert_allclose(model.logprobs(ab.splits["valid"]), np.log([1 / 2, 1.0, 1.0]))


def test_mle_unseen_ngram_is_zero_probability_and_infinite_perplexity(ab):
    model = MLE(order=2).fit(ab.splits["train"], vocab=ab.vocab)
    result = model.evaluate(ab.splits["test"])  # "a a </s>": P(a|a) = 0
    assert result.n_tokens == 3
    assert result.n_zero_prob == 1
    assert result.perplexity == math.inf and result.nll_nats == math.inf


def test_eval_result_maths(ab):
    model = AddK(order=2, k=1).fit(ab.splits["train"], vocab=ab.vocab)
    result = model.evaluate(ab.splits["valid"])
    nll = -np.log([2 / 6, 3 / 6, 3 / 7]).sum()
    assert result.nll_nats == pytest.approx(nll)
    assert result.cross_entropy_nats == pytest.approx(nll / 3)
    assert result.bits_per_token == pytest.approx(nll / 3 / math.log(2))
    assert result.perplexity == pytest.approx(math.exp(nll / 3))


# ---------------------------------------------------------------- an independent per-token reference


def reference_logprobs(train_lines, test_lines, order, k=None):
    """Dict-and-loop implementation of the same convention: one <s> per line, no cross-line n-grams."""
    vocab = {tok for line in train_lines for tok in line.split()} | {"</s>", "<unk>"}
    def tokens(line):
        return ["<s>"] + [t if t in vocab else "<unk>" for t in line.split()] + ["</s>"]
    grams, contexts = Counter(), Counter()
    for line in train_lines:
        toks = tokens(line)
        for i in range(1, len(toks)):
            for n in range(1, order + 1):
                if i - n + 1 >= 0:
                    grams[tuple(toks[i - n + 1:i + 1])] += 1
                    contexts[tuple(toks[i - n + 1:i])] += 1
    out = []
    for line in test_lines:
        toks = tokens(line)
        for i in range(1, len(toks)):
            ngram = tuple(toks[max(0, i - order + 1):i + 1])
            c, h = grams[ngram], contexts[ngram[:-1]]
            p = (c + k) / (h + k * len(vocab)) if k is not None else (c / h if h else 0.0)
            out.append(math.log(p) if p > 0 else -math.inf)
    return np.array(out)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("k", [None, 1.0, 0.05])
def test_vectorized_counts_match_reference(order, k):
    rng = np.random.default_rng(order)
    train, test = random_lines(rng, 200, words=15), random_lines(rng, 40, words=18)
    ds = make_dataset(train, test, test)
    model = (MLE(order=order) if k is None else AddK(order=order, k=k)).fit(ds.splits["train"], vocab=ds.vocab)
    np.testing.assert_allclose(model.logprobs(ds.splits["test"]), reference_logprobs(train, test, order, k), rtol=1e-12)


def test_pad_lines_layout():
    padded, depth = pad_lines(np.array([5, 6, 1, 7, 1]), eos_id=1, bos_id=9)
    assert padded.tolist() == [9, 5, 6, 1, 9, 7, 1]
    assert depth.tolist() == [0, 1, 2, 3, 0, 1, 2]


def test_counts_store_every_ngram_once():
    ds = make_dataset(["a b a", "b a"], ["a"], ["a"])
    counts = NGramCounts.from_ids(ds.splits["train"], 2, len(ds.vocab), ds.vocab.eos_id)
    bigrams = {tuple(ds.vocab.decode(t)): int(c) for t, c in zip(counts.tokens_of(2, np.arange(counts.n_types(2))), counts.counts[2])}
    assert bigrams == {("<s>", "a"): 1, ("<s>", "b"): 1, ("a", "b"): 1, ("b", "a"): 2, ("a", "</s>"): 2}


# ---------------------------------------------------------------- nltk.lm as a reference


def nltk_context(tokens, i, order):
    """The context nltk.lm's padded_everygram_pipeline gives token i of a line: n-1 '<s>' pads."""
    padded = ["<s>"] * (order - 1) + tokens
    return tuple(padded[i:i + order - 1])


@pytest.mark.parametrize("order", [2, 3])
def test_agrees_with_nltk_mle_and_laplace(order):
    from nltk.lm import MLE as NltkMLE
    from nltk.lm import Laplace as NltkLaplace
    from nltk.lm.preprocessing import padded_everygram_pipeline

    rng = np.random.default_rng(7)
    train, test = random_lines(rng, 150, words=10), random_lines(rng, 30, words=12)
    ds = make_dataset(train, test, test)
    ours_mle = MLE(order=order).fit(ds.splits["train"], vocab=ds.vocab).logprobs(ds.splits["test"])
    ours_add1 = AddK(order=order, k=1).fit(ds.splits["train"], vocab=ds.vocab).logprobs(ds.splits["test"])

    sents = [line.split() for line in train]
    nltk_mle, nltk_lap = NltkMLE(order), NltkLaplace(order)
    nltk_mle.fit(*padded_everygram_pipeline(order, sents))
    nltk_lap.fit(*padded_everygram_pipeline(order, sents))
    # nltk's vocabulary also holds "<s>", which lmbench never predicts: |V_nltk| = V + 1.
    assert len(nltk_lap.vocab) == len(ds.vocab) + 1
    expected_mle, expected_add1 = [], []
    for line in test:
        tokens = [t if t in nltk_mle.vocab else "<UNK>" for t in line.split()] + ["</s>"]
        for i, token in enumerate(tokens):
            context = nltk_context(tokens, i, order)
            expected_mle.append(nltk_mle.score(token, context))
            counts = nltk_lap.counts[context]
            # Laplace with lmbench's |V|: (c + 1) / (c(h) + V), from nltk's own counts
            expected_add1.append((counts[token] + 1) / (counts.N() + len(ds.vocab)))
            assert nltk_lap.score(token, context) == pytest.approx((counts[token] + 1) / (counts.N() + len(ds.vocab) + 1))
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(ours_mle, np.log(expected_mle), rtol=1e-12)
    np.testing.assert_allclose(ours_add1, np.log(expected_add1), rtol=1e-12)


# ---------------------------------------------------------------- invariants


def random_histories(rng, ds, n=25):
    """Histories of random length over the vocabulary, with line ends: seen and unseen contexts."""
    V = len(ds.vocab)
    return [rng.integers(0, V, size=rng.integers(0, 8)) for _ in range(n)]


@pytest.mark.parametrize("order", [1, 2, 3, 5])
@pytest.mark.parametrize("k", [1.0, 0.01, None])
def test_add_k_sums_to_one(tiny_dataset, order, k):
    model = AddK(order=order, k=k).fit(tiny_dataset.splits["train"], tiny_dataset.splits["valid"], vocab=tiny_dataset.vocab)
    for history in random_histories(np.random.default_rng(order), tiny_dataset):
        total = np.exp(model.next_logprobs(history)).sum()
        assert total == pytest.approx(1.0, abs=1e-9)


def test_mle_sums_to_one_after_seen_contexts(tiny_dataset):
    model = MLE(order=3).fit(tiny_dataset.splits["train"], vocab=tiny_dataset.vocab)
    train = tiny_dataset.splits["train"]
    for end in (0, 5, 17, 40):
        assert np.exp(model.next_logprobs(train[:end])).sum() == pytest.approx(1.0, abs=1e-12)


def test_next_logprobs_matches_split_scoring(tiny_dataset):
    model = AddK(order=3, k=0.1).fit(tiny_dataset.splits["train"], vocab=tiny_dataset.vocab)
    test = tiny_dataset.splits["test"][:30]
    scored = model.logprobs(test)
    stepwise = [model.next_logprobs(test[:i])[test[i]] for i in range(test.size)]
    np.testing.assert_allclose(scored, stepwise, rtol=1e-12)


def test_add_k_tuning_minimizes_valid_cross_entropy(tiny_dataset):
    ds = tiny_dataset
    model = AddK(order=3, k=None).fit(ds.splits["train"], ds.splits["valid"], vocab=ds.vocab)
    best = model.cross_entropy(ds.splits["valid"])
    for factor in (0.7, 1.4):
        other = AddK(order=3, k=model.k_ * factor).fit(ds.splits["train"], vocab=ds.vocab)
        assert other.cross_entropy(ds.splits["valid"]) > best
    assert model.fitted_summary() == {"k": model.k_, "k_tuned_on_valid": True}


def test_bad_parameters_are_one_line_errors():
    with pytest.raises(LmbenchError, match="order must be"):
        MLE(order=0).check_params()
    with pytest.raises(LmbenchError, match="k must be a number > 0"):
        AddK(order=2, k=-1).check_params()


@pytest.mark.parametrize("k", [math.inf, -math.inf, math.nan, json.loads("Infinity"), True, "1"],
                         ids=["inf", "-inf", "nan", "json-Infinity", "bool", "str"])
def test_add_k_refuses_non_finite_k(k):
    """``--set bigram-add1.k=Infinity`` parses (JSON) to float inf; it must not reach fit."""
    with pytest.raises(LmbenchError, match=r"k must be a number > 0 \(finite"):
        resolve("bigram-add1", {"k": k}).build().check_params()


@pytest.mark.parametrize("cls", [MLE, AddK])
def test_huge_order_fails_before_any_data_is_touched(tiny_dataset, cls):
    """order 10**9 would allocate per-order tables (MemoryError) if it got past check_params."""
    ds = tiny_dataset
    with pytest.raises(LmbenchError, match=f"order must be at most {MAX_ORDER}, got 1000000000;.*infinity-gram"):
        cls(order=10**9).fit(ds.splits["train"], vocab=ds.vocab)
    with pytest.raises(LmbenchError, match=f"at most {MAX_ORDER}"):
        resolve(f"{10**30}gram").build().check_params()
    with pytest.raises(LmbenchError, match="whole number"):
        cls(order=3.0).check_params()


def test_order_at_the_cap_equals_the_longest_useful_order(tiny_dataset):
    """Lines of at most 9 tokens + end of line: no context is longer than 10 tokens, so order 64 = order 11."""
    ds, test = tiny_dataset, tiny_dataset.splits["test"]
    capped = AddK(order=MAX_ORDER, k=0.5).fit(ds.splits["train"], vocab=ds.vocab)
    longest = AddK(order=11, k=0.5).fit(ds.splits["train"], vocab=ds.vocab)
    np.testing.assert_array_equal(capped.logprobs(test), longest.logprobs(test))
    assert capped.n_params == longest.n_params
    with pytest.raises(LmbenchError, match=f"at most {MAX_ORDER}, got {MAX_ORDER + 1}"):
        AddK(order=MAX_ORDER + 1, k=0.5).check_params()


def test_save_load_round_trip(tmp_path, tiny_dataset):
    ds = tiny_dataset
    model = AddK(order=4, k=None).fit(ds.splits["train"], ds.splits["valid"], vocab=ds.vocab)
    model.save(tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert type(loaded) is AddK and loaded.k_ == model.k_ and loaded.n_params == model.n_params
    np.testing.assert_array_equal(loaded.logprobs(ds.splits["test"]), model.logprobs(ds.splits["test"]))


def test_generation_is_seeded_and_stays_in_vocabulary(tiny_dataset):
    model = AddK(order=3, k=0.1).fit(tiny_dataset.splits["train"], vocab=tiny_dataset.vocab)
    a = model.generate([2, 3], 20, seed=1)
    assert a.tolist() == model.generate([2, 3], 20, seed=1).tolist()
    assert ((a >= 0) & (a < len(tiny_dataset.vocab))).all()
    greedy = model.generate([2], 5, greedy=True)
    assert greedy[0] == int(np.argmax(model.next_logprobs(np.array([2]))))


# ---------------------------------------------------------------- real data: the reference figures


def test_ptb_add_one_bigram_matches_reference(ptb_dataset):
    """../shared/reference: |V| = 10,000 gives add-one bigram 824.03 test and 854.48 valid."""
    ds = ptb_dataset
    assert len(ds.vocab) == 10_000
    assert ds.stats["test"].n_tokens == 82_430 and ds.stats["valid"].n_tokens == 73_760
    model = AddK(order=2, k=1).fit(ds.splits["train"], vocab=ds.vocab)
    assert round(model.perplexity(ds.splits["test"]), 2) == 824.03
    assert round(model.perplexity(ds.splits["valid"]), 2) == 854.48
    mle = MLE(order=2).fit(ds.splits["train"], vocab=ds.vocab).evaluate(ds.splits["test"])
    assert mle.n_zero_prob == 15_594  # nltk.lm's count in the reference
