"""Smoothed n-gram models: hand-worked values, an independent loop-based reference, nltk.lm, invariants,
the small-corpus fallbacks, persistence, and PTB parity with KenLM (stupid backoff in a run: test_ngram_strategy)."""

from __future__ import annotations

import math
import warnings
from collections import Counter, defaultdict
from functools import lru_cache

import numpy as np
import pytest

from lmbench.errors import LmbenchError
from lmbench.models.ngram.interpolated import AbsoluteDiscount, KneserNey, WittenBell
from lmbench.models.ngram.jelinek_mercer import JelinekMercer
from lmbench.models.ngram.katz import Katz
from lmbench.models.ngram.strategies import good_turing_ratios
from lmbench.models.ngram.stupid_backoff import StupidBackoff
from lmbench.models.checkpoint import load_model
from lmbench.models.registry import lookup, resolve

from tests.conftest import make_dataset, random_lines

# ---------------------------------------------------------------- hand-worked examples
#
# train: "a b" / "a c" / "b a b"   ->   <s> a b </s>   <s> a c </s>   <s> b a b </s>
# vocabulary: <unk>=0 </s>=1 a=2 b=3 c=4   (V = 5; a:3, b:3, c:1, </s>:3, N = 10 predicted tokens)
# bigram counts:  <s> a:2  <s> b:1  a b:2  a c:1  b a:1  b </s>:2  c </s>:1
# trigram counts: <s> a b:1  <s> a c:1  <s> b a:1  a b </s>:2  a c </s>:1  b a b:1
#
# Kneser-Ney continuation counts N1+(. w) over bigram types: a:{<s>,b}=2 b:{<s>,a}=2 c:{a}=1
# </s>:{b,c}=2 <unk>:0, total 7.  For a trigram model the bigrams get continuation counts over
# trigram types, except those starting with <s>, which keep raw counts (KenLM):
#   <s> a:2  <s> b:1 (raw)   a b:{<s>,b}=2  a c:{<s>}=1  b a:{<s>}=1  b </s>:{a}=1  c </s>:{a}=1

HAND = (["a b", "a c", "b a b"], ["a b"], ["a b"])
KN_D = (0.5, 1.0, 1.5)  # D1, D2, D3+ (KenLM's fallback values)


@pytest.fixture
def hand():
    return make_dataset(*HAND)


def token_id(ds, word: str) -> int:
    """Id of a word of the hand-worked examples; ``</s>`` is the end of line (structural, not in ``stoi``)."""
    return ds.vocab.eos_id if word == "</s>" else ds.vocab.stoi[word]


def by_hand(model, ds, context: str, word: str) -> float:
    """P(word | context) from next_logprobs, the context given as words of one line."""
    history = np.array([token_id(ds, w) for w in context.split()], dtype=np.int64)
    return math.exp(model.next_logprobs(history)[token_id(ds, word)])


def test_hand_vocabulary(hand):
    assert hand.vocab.itos == ["<unk>", "</s>", "a", "b", "c"]


def test_kneser_ney_by_hand(hand):
    ds = hand
    model = KneserNey(order=3, discounts=[KN_D] * 3).fit(ds.splits["train"], vocab=ds.vocab)
    # unigram level: alpha = (a - D(a)) / 7, gamma = (0.5 * 1 + 1.0 * 3) / 7 = 1/2 (one singleton: c;
    # three doubletons: a, b, </s>), uniform 1/5:  P1(a) = (2 - 1)/7 + 1/10 = 17/70, P1(<unk>) = 1/10
    p1_a, p1_c = 17 / 70, 0.5 / 7 + 0.1
    # bigram context a: a b:2 a c:1 (continuation counts), total 3, gamma = (0.5 + 1.0)/3 = 1/2
    p2_b_a = (2 - 1.0) / 3 + 0.5 * p1_a                    # = 191/420
    p2_c_a = (1 - 0.5) / 3 + 0.5 * p1_c
    # bigram context b: b a:1 b </s>:1, total 2, gamma = 2 * 0.5 / 2 = 1/2
    p2_eos_b = (1 - 0.5) / 2 + 0.5 * p1_a                  # P1(</s>) = P1(a) = 17/70
    # bigram context <s>: raw counts <s> a:2 <s> b:1 -> P(a | <s>) = (2-1)/3 + 1/2 P1(a)
    p2_a_bos = (2 - 1.0) / 3 + 0.5 * p1_a
    # trigram context "<s> a": <s> a b:1 <s> a c:1, gamma = 1/2;  context "a b": a b </s>:2, gamma = 1/2
    p3_b_bos_a = (1 - 0.5) / 2 + 0.5 * p2_b_a              # = 401/840
    p3_eos_ab = (2 - 1.0) / 2 + 0.5 * p2_eos_b             # = 24/35
    assert p2_b_a == pytest.approx(191 / 420) and p3_b_bos_a == pytest.approx(401 / 840)
    assert p3_eos_ab == pytest.approx(24 / 35)
    # the test line "a b" is scored <s> -> a, <s> a -> b, a b -> </s>
    np.testing.assert_allclose(np.exp(model.logprobs(ds.splits["test"])), [p2_a_bos, p3_b_bos_a, p3_eos_ab], rtol=1e-12)
    assert by_hand(model, ds, "a", "c") == pytest.approx((1 - 0.5) / 2 + 0.5 * p2_c_a)   # context <s> a
    # trigram context "b a": b a b:1, alpha = (1 - 0.5)/1, gamma = 0.5 * 1/1
    assert by_hand(model, ds, "b a", "b") == pytest.approx(0.5 + 0.5 * p2_b_a)
    # unseen trigram context "c a" (never seen): the bigram distribution after a, unchanged
    assert by_hand(model, ds, "c a", "b") == pytest.approx(p2_b_a)
    # a context never seen even as a bigram (<unk>) falls to the unigram level
    assert by_hand(model, ds, "c <unk>", "<unk>") == pytest.approx(0.1)
    alpha, gamma = model.interpolation_terms()
    assert gamma[1][0] == pytest.approx(0.5)


def test_kneser_ney_bigram_by_hand(hand):
    ds = hand
    model = KneserNey(order=2, discounts=[KN_D, KN_D]).fit(ds.splits["train"], vocab=ds.vocab)
    p1 = {"a": 17 / 70, "b": 17 / 70, "</s>": 17 / 70, "c": 0.5 / 7 + 0.1, "<unk>": 0.1}
    assert sum(p1.values()) == pytest.approx(1.0)
    # bigram = highest order: raw counts; context a: a b:2 a c:1, gamma = 1/2
    expected = {"b": 1 / 3 + 0.5 * p1["b"], "c": 0.5 / 3 + 0.5 * p1["c"], "a": 0.5 * p1["a"],
                "</s>": 0.5 * p1["</s>"], "<unk>": 0.5 * p1["<unk>"]}
    for word, p in expected.items():
        assert by_hand(model, ds, "a", word) == pytest.approx(p, rel=1e-12)
    # b </s> has raw count 2 at the highest order: (2 - D2) / 3 with context b: b a:1 b </s>:2
    assert by_hand(model, ds, "b", "</s>") == pytest.approx((2 - 1.0) / 3 + (0.5 + 1.0) / 3 * p1["</s>"])


def test_witten_bell_by_hand(hand):
    ds = hand
    # unigram: (c(w) + T/V) / (N + T) with N = 10, T = 4 types seen, V = 5: P1(a) = 3.8/14 = 19/70
    p1 = {"a": 19 / 70, "b": 19 / 70, "</s>": 19 / 70, "c": 9 / 70, "<unk>": 4 / 70}
    bigram = WittenBell(order=2).fit(ds.splits["train"], vocab=ds.vocab)
    # context a: c(a .) = 3 (a b:2, a c:1), T(a .) = 2:  P(w | a) = (c(a w) + 2 P1(w)) / 5
    for word in p1:
        c = {"b": 2, "c": 1}.get(word, 0)
        assert by_hand(bigram, ds, "a", word) == pytest.approx((c + 2 * p1[word]) / 5, rel=1e-12)
    trigram = WittenBell(order=3).fit(ds.splits["train"], vocab=ds.vocab)
    # raw counts at every order: context b: b </s>:2 b a:1 -> P2(</s> | b) = (2 + 2 P1(</s>)) / 5 = 89/175
    # context "a b": a b </s>:2, T = 1 -> P3(</s> | a b) = (2 + P2(</s> | b)) / 3 = 439/525
    np.testing.assert_allclose(np.exp(trigram.logprobs(ds.splits["test"]))[2], 439 / 525, rtol=1e-12)


def test_absolute_discounting_by_hand(hand):
    ds = hand
    model = AbsoluteDiscount(order=2, discount=0.5).fit(ds.splits["train"], vocab=ds.vocab)
    # unigram: (c - 0.5)/10 + gamma/5, gamma = 0.5 * 4 types / 10 = 0.2 -> P1(b) = 0.25 + 0.04
    # context a: (2 - 0.5)/3 + (0.5 * 2 / 3) P1(b)
    assert by_hand(model, ds, "a", "b") == pytest.approx(1.5 / 3 + (1 / 3) * 0.29, rel=1e-12)
    assert by_hand(model, ds, "a", "<unk>") == pytest.approx((1 / 3) * 0.04, rel=1e-12)


def test_stupid_backoff_by_hand(hand):
    ds = hand
    model = StupidBackoff(order=3, alpha=0.4).fit(ds.splits["train"], vocab=ds.vocab)
    # c(<s> a) / c(<s>) = 2/3;  c(<s> a b) / c(<s> a) = 1/2;  c(a b </s>) / c(a b) = 2/2
    np.testing.assert_allclose(np.exp(model.logprobs(ds.splits["test"])), [2 / 3, 1 / 2, 1.0], rtol=1e-12)
    # unseen trigram "<s> a a" and bigram "a a": 0.4 * 0.4 * c(a)/N = 0.16 * 3/10
    assert by_hand(model, ds, "a", "a") == pytest.approx(0.16 * 0.3)
    # unseen context "c <unk>": still one factor per backoff step
    assert by_hand(model, ds, "c <unk>", "a") == pytest.approx(0.16 * 0.3)
    assert not model.comparable and "not normalized" in model.not_comparable_reason
    # scores of a context sum to more than one
    assert np.exp(model.next_logprobs(np.array([2]))).sum() > 1.0


def test_jelinek_mercer_by_hand(hand):
    ds = hand
    model = JelinekMercer(order=2, lambdas=[0.9, 0.6]).fit(ds.splits["train"], vocab=ds.vocab)
    # P1(w) = 0.9 c(w)/10 + 0.1/5;  P(w | a) = 0.6 c(a w)/3 + 0.4 P1(w)
    p1_b = 0.9 * 0.3 + 0.02
    assert by_hand(model, ds, "a", "b") == pytest.approx(0.6 * 2 / 3 + 0.4 * p1_b, rel=1e-12)
    assert by_hand(model, ds, "a", "<unk>") == pytest.approx(0.4 * 0.02, rel=1e-12)
    # a context never seen skips its order
    assert by_hand(model, ds, "<unk>", "b") == pytest.approx(p1_b, rel=1e-12)


def test_good_turing_ratios_by_hand():
    # n1..n3 = 10, 4, 2; k = 2: r* = (r+1) n_{r+1}/n_r -> 1* = 0.8, 2* = 1.5; common = 3 n3/n1 = 0.6
    n = np.array([0, 10, 4, 2])
    d, why = good_turing_ratios(n, 2)
    assert why == ""
    np.testing.assert_allclose(d[1:], [(0.8 - 0.6) / 0.4, (0.75 - 0.6) / 0.4])
    assert good_turing_ratios(np.array([0, 0, 4, 2]), 2)[0] is None


def test_katz_context_that_loses_no_mass_keeps_one_share():
    # "qq w0" six times: context qq only continues with w0 (count 6 > k = 2), so Good-Turing takes
    # nothing there; lmbench divides by c(qq) + 1 and backs off 1/(c(qq) + 1) instead of giving every
    # other token probability 0. (The bigram counts of counts of this corpus give valid ratios.)
    rng = np.random.default_rng(11)
    ds = make_dataset(random_lines(rng, 1500, words=300, max_len=10) + ["qq w0"] * 6, ["qq w0"], ["qq w1"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # unigram-level fallback, tested elsewhere
        model = Katz(order=2, max_count=2).fit(ds.splits["train"], vocab=ds.vocab)
    assert model.fitted_summary()["max_count_used"][1] == 2
    dist = np.exp(model.next_logprobs(np.array([ds.vocab.stoi["qq"]])))
    assert dist[ds.vocab.stoi["w0"]] == pytest.approx(6 / 7)
    assert dist.sum() == pytest.approx(1.0)
    assert (dist > 0).all()


# ---------------------------------------------------------------- small-corpus fallbacks


def test_kneser_ney_small_corpus_falls_back_with_one_warning(hand):
    ds = hand
    with pytest.warns(UserWarning, match=r"Kneser-Ney discounts for 1-grams, 2-grams, 3-grams cannot be estimated.*"
                                         r"fallback D1=0.5, D2=1, D3\+=1.5") as record:
        model = KneserNey(order=3).fit(ds.splits["train"], vocab=ds.vocab)
    assert len(record) == 1
    summary = model.fitted_summary()
    assert summary["fallback_orders"] == [1, 2, 3] and summary["discounts"] == [list(KN_D)] * 3
    explicit = KneserNey(order=3, discounts=[KN_D] * 3).fit(ds.splits["train"], vocab=ds.vocab)
    np.testing.assert_array_equal(model.logprobs(ds.splits["test"]), explicit.logprobs(ds.splits["test"]))
    # one discount per order, D = n1 / (n1 + 2 n2), needs n1 > 0 and n2 > 0: every count here is 1
    single = make_dataset(["a b c"], ["a"], ["b"])
    with pytest.warns(UserWarning, match=r"2-grams cannot be estimated .*no n-grams with count 2.*fallback D=0.75"):
        one = KneserNey(order=2, modified=False).fit(single.splits["train"], vocab=single.vocab)
    assert one.fitted_summary()["discounts"] == [0.75, 0.75]


def test_only_the_orders_that_need_it_fall_back(tiny_dataset):
    ds = tiny_dataset
    with pytest.warns(UserWarning, match="cannot be estimated") as record:
        model = KneserNey(order=4).fit(ds.splits["train"], vocab=ds.vocab)
    fallback = model.fitted_summary()["fallback_orders"]
    assert 1 in fallback and 4 not in fallback   # 12 frequent words: no unigram seen once
    assert "1-grams" in str(record[0].message)


@pytest.mark.parametrize("cls", [AbsoluteDiscount, Katz])
def test_other_methods_fall_back_on_tiny_data(hand, cls):
    ds = hand
    with pytest.warns(UserWarning):
        model = cls(order=3).fit(ds.splits["train"], vocab=ds.vocab)
    assert model.fitted_summary()["fallback_orders"]
    assert np.isfinite(model.logprobs(ds.splits["test"])).all()
    for context in ([], [2], [4, 0], [0, 0]):
        assert np.exp(model.next_logprobs(np.array(context, dtype=np.int64))).sum() == pytest.approx(1.0, abs=1e-12)


def test_empty_orders_do_not_crash():
    # order 6 on one-word lines: no n-gram above 2 exists at all
    ds = make_dataset(["a", "b", "a"], ["a"], ["b a"])
    for cls in (KneserNey, WittenBell, AbsoluteDiscount, Katz, StupidBackoff):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = cls(order=6).fit(ds.splits["train"], vocab=ds.vocab)
        scores = model.logprobs(ds.splits["test"])
        assert scores.shape == (3,)
        if model.comparable:
            assert np.isfinite(scores).all()
            assert np.exp(model.next_logprobs(np.array([2, 3, 2, 3, 2]))).sum() == pytest.approx(1.0)


# ---------------------------------------------------------------- an independent reference implementation


class Reference:
    """The smoothing formulas written directly as recursions over Python Counters (slow and plain)."""

    def __init__(self, lines: list[list[int]], order: int, V: int, bos: int):
        self.order, self.V, self.bos = order, V, bos
        self.c = [None] + [Counter() for _ in range(order)]
        for line in lines:
            padded = [bos] + line
            for i in range(1, len(padded)):
                for k in range(1, order + 1):
                    if i - k + 1 < 0:
                        break
                    self.c[k][tuple(padded[i - k + 1: i + 1])] += 1
        self.followers = [None] + [defaultdict(dict) for _ in range(order)]   # k -> context -> {w: count}
        for k in range(1, order + 1):
            for gram, n in self.c[k].items():
                self.followers[k][gram[:-1]][gram[-1]] = n
        # Kneser-Ney adjusted counts
        self.adj = [None] + [dict() for _ in range(order)]
        for k in range(1, order + 1):
            left_extensions = Counter(g[1:] for g in self.c[k + 1]) if k < order else None
            for gram, n in self.c[k].items():
                if k == order or gram[0] == bos:
                    self.adj[k][gram] = n
                else:
                    self.adj[k][gram] = left_extensions[gram]
        self.adj_followers = [None] + [defaultdict(dict) for _ in range(order)]
        for k in range(1, order + 1):
            for gram, n in self.adj[k].items():
                if n > 0:
                    self.adj_followers[k][gram[:-1]][gram[-1]] = n

    def score_lines(self, lines, prob) -> np.ndarray:
        out = []
        for line in lines:
            padded = [self.bos] + line
            for i in range(1, len(padded)):
                out.append(prob(tuple(padded[max(0, i - self.order + 1): i]), padded[i]))
        return np.log(np.array(out))

    # -- discounting methods: P(w | h) = (a - D(a)) / T + gamma P(w | h'), uniform at the bottom

    def discounted(self, followers, discounts):
        def disc(k, a):
            return 0.0 if a == 0 else discounts[k - 1][min(a, 3) - 1]

        @lru_cache(maxsize=None)
        def total_and_gamma(h):
            seen = followers[len(h) + 1].get(h, {})
            total = sum(seen.values())
            return total, sum(disc(len(h) + 1, a) for a in seen.values()) / total if total else 1.0

        @lru_cache(maxsize=None)
        def p(h, w):
            below = p(h[1:], w) if h else 1.0 / self.V
            total, gamma = total_and_gamma(h)
            if total == 0:
                return below
            a = followers[len(h) + 1][h].get(w, 0)
            return (a - disc(len(h) + 1, a)) / total + gamma * below
        return p

    def kn_discounts(self):
        out = []
        for k in range(1, self.order + 1):
            n = Counter(v for v in self.adj[k].values())
            y = n[1] / (n[1] + 2 * n[2])
            out.append(tuple(j - (j + 1) * y * n[j + 1] / n[j] for j in (1, 2, 3)))
        return out

    def abs_discounts(self):
        out = []
        for k in range(1, self.order + 1):
            n = Counter(self.c[k].values())
            out.append((n[1] / (n[1] + 2 * n[2]),) * 3)
        return out

    def witten_bell(self):
        @lru_cache(maxsize=None)
        def p(h, w):
            k = len(h) + 1
            below = p(h[1:], w) if h else 1.0 / self.V
            seen = self.followers[k].get(h, {})
            total, types = sum(seen.values()), len(seen)
            if total == 0:
                return below
            return (seen.get(w, 0) + types * below) / (total + types)
        return p

    def jelinek_mercer(self, lambdas):
        @lru_cache(maxsize=None)
        def p(h, w):
            k = len(h) + 1
            below = p(h[1:], w) if h else 1.0 / self.V
            seen = self.followers[k].get(h, {})
            total = sum(seen.values())
            if total == 0:
                return below
            return lambdas[k - 1] * seen.get(w, 0) / total + (1 - lambdas[k - 1]) * below
        return p

    def backoff(self, followers, alpha, unigram):
        """SRILM's back-off form: alpha(k, h, w) for w seen after h, else bow(h) P(w | h'), with
        bow(h) = (1 - sum_seen alpha) / (1 - sum_seen P(. | h')); ``unigram(w)`` at the bottom."""
        @lru_cache(maxsize=None)
        def bow(h):
            seen = followers[len(h) + 1][h]
            return (1 - sum(alpha(len(h) + 1, h, v) for v in seen)) / (1 - sum(p(h[1:], v) for v in seen))

        @lru_cache(maxsize=None)
        def p(h, w):
            if not h:
                return unigram(w)
            seen = followers[len(h) + 1].get(h, {})
            if not seen:
                return p(h[1:], w)
            return alpha(len(h) + 1, h, w) if w in seen else bow(h) * p(h[1:], w)
        return p

    def discounted_alpha(self, followers, discounts):
        """alpha(k, h, w) = (a - D(a)) / sum_v a(h v) of the discounting methods."""
        def alpha(k, h, w):
            seen, D = followers[k][h], discounts[k - 1]
            return (seen[w] - D[min(seen[w], 3) - 1]) / sum(seen.values())
        return alpha

    def witten_bell_alpha(self, k, h, w):
        seen = self.followers[k][h]
        return seen[w] / (sum(seen.values()) + len(seen))

    def katz(self, k_max):
        ratios = []
        for k in range(1, self.order + 1):
            n = Counter(self.c[k].values())
            r_star = {r: (r + 1) * n[r + 1] / n[r] for r in range(1, k_max + 1)}
            common = (k_max + 1) * n[k_max + 1] / n[1]
            ratios.append({r: (r_star[r] / r - common) / (1 - common) for r in range(1, k_max + 1)})
        disc = lambda k, c: c * ratios[k - 1].get(c, 1.0)   # noqa: E731
        N = sum(self.c[1].values())
        uni_left = 1 - sum(disc(1, c) for c in self.c[1].values()) / N

        @lru_cache(maxsize=None)
        def p(h, w):
            if not h:
                return disc(1, self.c[1].get((w,), 0)) / N + uni_left / self.V
            k = len(h) + 1
            seen = self.followers[k].get(h, {})
            total = sum(seen.values())
            if total == 0:
                return p(h[1:], w)
            denominator = total if any(c <= k_max for c in seen.values()) else total + 1
            if w in seen:
                return disc(k, seen[w]) / denominator
            left = 1 - sum(disc(k, c) for c in seen.values()) / denominator
            room = 1 - sum(p(h[1:], v) for v in seen)
            return left / room * p(h[1:], w)
        return p, ratios


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_methods_match_the_reference_recursions(zipf_data, order):
    ds, lines, test_lines = zipf_data
    V = len(ds.vocab)
    ref = Reference(lines, order, V, ds.vocab.bos_id)
    train, test = ds.splits["train"], ds.splits["test"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # estimates must be valid on this corpus: no fallback
        kn = KneserNey(order=order).fit(train, vocab=ds.vocab)
        kn1 = KneserNey(order=order, modified=False).fit(train, vocab=ds.vocab)
        ab = AbsoluteDiscount(order=order).fit(train, vocab=ds.vocab)
        katz = Katz(order=order, max_count=2).fit(train, vocab=ds.vocab)
    np.testing.assert_allclose(kn.discounts_, ref.kn_discounts(), rtol=1e-12)
    expected = ref.score_lines(test_lines, ref.discounted(ref.adj_followers, ref.kn_discounts()))
    np.testing.assert_allclose(kn.logprobs(test), expected, rtol=1e-10)
    one = [(d[0],) * 3 for d in ref.kn_discounts()]          # D = Y = n1 / (n1 + 2 n2) = D1
    np.testing.assert_allclose(kn1.logprobs(test), ref.score_lines(test_lines, ref.discounted(ref.adj_followers, one)),
                               rtol=1e-10)
    np.testing.assert_allclose(ab.logprobs(test), ref.score_lines(test_lines, ref.discounted(ref.followers, ref.abs_discounts())),
                               rtol=1e-10)
    wb = WittenBell(order=order).fit(train, vocab=ds.vocab)
    np.testing.assert_allclose(wb.logprobs(test), ref.score_lines(test_lines, ref.witten_bell()), rtol=1e-10)
    lambdas = [0.9, 0.7, 0.5, 0.3][:order]
    jm = JelinekMercer(order=order, lambdas=lambdas).fit(train, vocab=ds.vocab)
    np.testing.assert_allclose(jm.logprobs(test), ref.score_lines(test_lines, ref.jelinek_mercer(lambdas)), rtol=1e-10)
    katz_p, ratios = ref.katz(2)
    np.testing.assert_allclose(katz.ratios_[:, 1:3], [[r[1], r[2]] for r in ratios], rtol=1e-12)
    np.testing.assert_allclose(katz.logprobs(test), ref.score_lines(test_lines, katz_p), rtol=1e-9)


# ---------------------------------------------------------------- invariants

NORMALIZED = [
    (KneserNey, {}), (KneserNey, {"modified": False}), (WittenBell, {}), (AbsoluteDiscount, {}),
    (Katz, {}), (JelinekMercer, {}), (JelinekMercer, {"buckets": 1}),
]


def histories(rng, ds, train, n=20):
    """Seen contexts (prefixes of training lines), random ones (mostly unseen), with and without line ends."""
    V = len(ds.vocab)
    out = [np.zeros(0, np.int64), train[:1], train[:7], np.array([ds.vocab.eos_id])]
    starts = rng.integers(0, train.size - 8, size=n)
    out += [train[s: s + rng.integers(1, 8)] for s in starts]
    out += [rng.integers(0, V, size=rng.integers(1, 8)) for _ in range(n)]
    return out


@pytest.mark.parametrize("cls,params", NORMALIZED, ids=lambda x: getattr(x, "__name__", str(x)))
@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_every_distribution_sums_to_one(tiny_dataset, cls, params, order):
    ds = tiny_dataset
    train = ds.splits["train"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # small-corpus fallbacks are tested above
        model = cls(order=order, **params).fit(train, ds.splits["valid"], vocab=ds.vocab)
    for history in histories(np.random.default_rng(order), ds, train):
        dist = np.exp(model.next_logprobs(history))
        assert dist.shape == (len(ds.vocab),)
        assert dist.sum() == pytest.approx(1.0, abs=1e-12)
        assert (dist > 0).all()


@pytest.mark.parametrize("cls,params", NORMALIZED + [(StupidBackoff, {})], ids=lambda x: getattr(x, "__name__", str(x)))
def test_split_scoring_matches_next_token_distributions(tiny_dataset, cls, params):
    ds = tiny_dataset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cls(order=3, **params).fit(ds.splits["train"], ds.splits["valid"], vocab=ds.vocab)
    test = ds.splits["test"][:40]
    stepwise = [model.next_logprobs(test[:i])[test[i]] for i in range(test.size)]
    np.testing.assert_allclose(model.logprobs(test), stepwise, rtol=1e-12)


def test_kneser_ney_beats_witten_bell_on_held_out(zipf_data):
    ds = zipf_data[0]
    kn = KneserNey(order=3).fit(ds.splits["train"], vocab=ds.vocab)
    wb = WittenBell(order=3).fit(ds.splits["train"], vocab=ds.vocab)
    assert kn.perplexity(ds.splits["test"]) < wb.perplexity(ds.splits["test"])


def test_jelinek_mercer_em_maximizes_valid_likelihood(tiny_dataset):
    ds = tiny_dataset
    train, valid = ds.splits["train"], ds.splits["valid"]
    # EM converges slowly towards a boundary (here lambda_3 -> 0 on 300 lines): run it to a tight tolerance
    model = JelinekMercer(order=3, buckets=1, tol=1e-12, max_iter=5000).fit(train, valid, vocab=ds.vocab)
    lam = model.lambdas_[:, 0]
    assert ((lam >= 0) & (lam < 1)).all()
    summary = model.fitted_summary()
    assert summary["lambdas_tuned_on_valid"] and summary["lambdas"] == [round(float(x), 6) for x in lam]
    best = model.cross_entropy(valid)
    for k in range(3):
        for step in (-0.05, 0.05):
            moved = lam.copy()
            moved[k] = min(max(moved[k] + step, 0.0), 0.999)
            other = JelinekMercer(order=3, lambdas=moved.tolist()).fit(train, vocab=ds.vocab)
            assert other.cross_entropy(valid) >= best - 1e-9
    bucketed = JelinekMercer(order=3, buckets=4).fit(train, valid, vocab=ds.vocab)
    assert bucketed.lambdas_.shape == (3, 4)
    assert bucketed.cross_entropy(valid) <= best + 1e-9     # more weights fit valid at least as well
    with pytest.raises(LmbenchError, match="validation split"):
        JelinekMercer(order=2).fit(train, None, vocab=ds.vocab)


# ---------------------------------------------------------------- nltk.lm where the definitions coincide
#
# nltk.lm pads every line with n-1 "<s>" and puts "<s>" among its unigrams; its Witten-Bell,
# absolute discounting and Kneser-Ney unigram levels are plain (continuation) frequencies with no
# uniform order 0, and its Kneser-Ney has one fixed discount for every order. For a bigram model the
# padding is the same as lmbench's (one <s>, one </s>), and the bigram level is defined identically:
# the same alpha(h w) and gamma(h) for every seen context h and every word w. Those are compared.


def nltk_bigram_terms(model, vocab, context):
    words = vocab.itos[:]
    alpha_gamma = [model.estimator.alpha_gamma(w, (context,)) for w in words]
    return np.array([a for a, _ in alpha_gamma]), alpha_gamma[0][1]


@pytest.mark.parametrize("which", ["wb", "kn", "abs"])
def test_bigram_terms_agree_with_nltk(which):
    from nltk.lm import AbsoluteDiscountingInterpolated, KneserNeyInterpolated, WittenBellInterpolated
    from nltk.lm.preprocessing import padded_everygram_pipeline

    rng = np.random.default_rng(3)
    train = random_lines(rng, 120, words=10)
    ds = make_dataset(train, train[:5], train[:5])
    if which == "wb":
        ours, theirs = WittenBell(order=2), WittenBellInterpolated(2)
    elif which == "kn":
        ours, theirs = KneserNey(order=2, discounts=0.1, modified=False), KneserNeyInterpolated(2, discount=0.1)
    else:
        ours, theirs = AbsoluteDiscount(order=2, discount=0.75), AbsoluteDiscountingInterpolated(2)
    ours.fit(ds.splits["train"], vocab=ds.vocab)
    theirs.fit(*padded_everygram_pipeline(2, [line.split() for line in train]))
    alpha, gamma = ours.interpolation_terms()
    counts = ours.counts_
    contexts = ["<s>"] + [w for w in ds.vocab.itos if w not in ("<unk>", "</s>")]
    for word in contexts:
        token = ds.vocab.bos_id if word == "<s>" else ds.vocab.stoi[word]
        theirs_alpha, theirs_gamma = nltk_bigram_terms(theirs, ds.vocab, word)
        ours_alpha = np.zeros(len(ds.vocab))
        grams = counts.lookup(2, np.full(len(ds.vocab), token), np.arange(len(ds.vocab)))
        ours_alpha[grams >= 0] = alpha[2][grams[grams >= 0]]
        np.testing.assert_allclose(ours_alpha, theirs_alpha, rtol=1e-12, atol=1e-15)
        assert gamma[2][token] == pytest.approx(theirs_gamma, rel=1e-12)


# ---------------------------------------------------------------- parameters, registry, persistence


def test_bad_parameters_are_one_line_errors():
    cases = [
        (KneserNey(order=3, discounts=[0.5, 0.5]), "list of 3"),
        (KneserNey(order=2, discounts=[(0.5, 1.0, 3.5), 0.5]), r"D3\+ for order 1 must be in \(0, 3\]"),
        (KneserNey(order=2, discounts=1.5), r"must be in \(0, 1\]"),
        (KneserNey(order=2, discounts=[(0.5, 1, 1.5), (0.5, 1, 1.5)], modified=False), "must be a number"),
        (KneserNey(order=2, modified="yes"), "true or false"),
        (AbsoluteDiscount(order=2, discount=0), r"must be in \(0, 1\]"),
        (Katz(order=2, max_count=1), "whole number >= 2"),
        (JelinekMercer(order=2, lambdas=[0.5, 1.0]), r"numbers in \[0, 1\)"),
        (JelinekMercer(order=2, buckets=0), "buckets"),
        (StupidBackoff(order=2, alpha=0), r"alpha must be a number in \(0, 1\]"),
        (WittenBell(order=0), "order must be"),
    ]
    for model, message in cases:
        with pytest.raises(LmbenchError, match=message):
            model.check_params()


NAN, INF = math.nan, math.inf


@pytest.mark.parametrize("model, message", [
    (KneserNey(order=2, discounts=INF), r"must be in \(0, 1\], got inf"),
    (KneserNey(order=2, discounts=NAN), r"must be in \(0, 1\], got nan"),
    (KneserNey(order=2, discounts=[(0.5, NAN, 1.5), 0.5]), r"D2 for order 1 must be in \(0, 2\], got nan"),
    (AbsoluteDiscount(order=2, discount=[0.5, INF]), r"order 2 must be in \(0, 1\], got inf"),
    (JelinekMercer(order=2, lambdas=[NAN, 0.5]), r"numbers in \[0, 1\)"),
    (JelinekMercer(order=2, tol=INF), "tol must be a finite number > 0"),
    (JelinekMercer(order=2, tol=NAN), "tol must be a finite number > 0"),
    (StupidBackoff(order=2, alpha=NAN), r"alpha must be a number in \(0, 1\]"),
    (StupidBackoff(order=2, alpha=INF), r"alpha must be a number in \(0, 1\]"),
    (Katz(order=2, max_count=INF), "whole number >= 2"),
], ids=lambda x: x if isinstance(x, str) else type(x).__name__)
def test_non_finite_hyperparameters_are_refused(model, message):
    """NaN passes no comparison and inf passes every "> 0": each must be refused, not fitted."""
    with pytest.raises(LmbenchError, match=message):
        model.check_params()


@pytest.mark.parametrize("cls", [KneserNey, WittenBell, AbsoluteDiscount, Katz, JelinekMercer, StupidBackoff])
def test_huge_order_fails_in_fit_before_counting(tiny_dataset, cls):
    ds = tiny_dataset
    with pytest.raises(LmbenchError, match="order must be at most 64, got 1000000000"):
        cls(order=10**9).fit(ds.splits["train"], ds.splits["valid"], vocab=ds.vocab)


def test_sizes_that_would_allocate_huge_tables_are_refused():
    """Katz's max_count sizes its counts-of-counts tables, Jelinek-Mercer's buckets its lambda table."""
    with pytest.raises(LmbenchError, match="Katz max_count .* at most 1000, got 1000000000"):
        Katz(order=2, max_count=10**9).check_params()
    with pytest.raises(LmbenchError, match="buckets must be a whole number from 1 to 64"):
        JelinekMercer(order=2, buckets=10**9).check_params()
    Katz(order=2, max_count=1000).check_params()
    JelinekMercer(order=2, buckets=64).check_params()


def test_registry_suffixes():
    expected = {"5gram-kn": (KneserNey, {"order": 5, "modified": True}),
                "trigram-kn1": (KneserNey, {"order": 3, "modified": False}),
                "4gram-wb": (WittenBell, {"order": 4}), "bigram-abs": (AbsoluteDiscount, {"order": 2}),
                "trigram-katz": (Katz, {"order": 3}), "trigram-interp": (JelinekMercer, {"order": 3}),
                "7gram-stupid": (StupidBackoff, {"order": 7})}
    for name, (cls, params) in expected.items():
        assert lookup(name) == (cls, params)
    assert resolve("5gram-kn", {"discounts": 0.7}).build().discounts == 0.7


@pytest.mark.parametrize("cls,params", NORMALIZED + [
    (StupidBackoff, {"alpha": 0.3}), (KneserNey, {"discounts": [(0.4, 0.9, 1.3), 0.6, [0.7, 1.1, 1.6]]}),
    (JelinekMercer, {"lambdas": [0.9, 0.5, 0.2]}), (Katz, {"max_count": 3})], ids=lambda x: getattr(x, "__name__", str(x)))
def test_save_load_round_trip(tmp_path, tiny_dataset, cls, params):
    ds = tiny_dataset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cls(order=3, **params).fit(ds.splits["train"], ds.splits["valid"], vocab=ds.vocab)
    model.save(tmp_path / "m.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # loading re-uses the fitted hyperparameters: no re-warning
        loaded = load_model(tmp_path / "m.pt")
    assert type(loaded) is cls and loaded.get_params() == model.get_params()
    assert loaded.fitted_summary() == model.fitted_summary() and loaded.n_params == model.n_params
    np.testing.assert_array_equal(loaded.logprobs(ds.splits["test"]), model.logprobs(ds.splits["test"]))
    np.testing.assert_array_equal(loaded.next_logprobs(ds.splits["test"][:5]), model.next_logprobs(ds.splits["test"][:5]))


# ---------------------------------------------------------------- real data: parity with KenLM

# ../shared/reference/ngram-reference.md, KenLM lmplz (unk as a word): (valid, test) per order
KENLM_PTB = {2: (199.02, 185.70), 3: (157.77, 148.28), 4: (149.90, 142.72), 5: (148.01, 141.19)}


def test_ptb_kneser_ney_matches_kenlm(ptb_dataset, ptb_kn5):
    """lmbench's n-gram-kn within 1% of KenLM's lmplz -o n on PTB (PTB's <unk> is an ordinary word)."""
    ds = ptb_dataset
    for order, (valid, test) in KENLM_PTB.items():
        model = ptb_kn5 if order == 5 else KneserNey(order=order).fit(ds.splits["train"], vocab=ds.vocab)
        assert model.perplexity(ds.splits["valid"]) == pytest.approx(valid, rel=0.01)
        assert model.perplexity(ds.splits["test"]) == pytest.approx(test, rel=0.01)
        # in fact it agrees to the printed digits
        assert abs(model.perplexity(ds.splits["test"]) - test) < 0.01
