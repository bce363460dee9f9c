"""Interpolated smoothing: Kneser-Ney (modified and one-discount), Witten-Bell, absolute discounting.

All three share Chen & Goodman's (1998) interpolation recursion, down to a uniform order 0::

    P(w | h) = alpha(h w) + gamma(h) * P(w | h')          P_0(w) = 1 / V

with h' = h without its first token, alpha the order's own discounted estimate (zero for n-grams
not seen in training) and gamma(h) the mass it leaves to the lower order, so that every
distribution sums to one over the V tokens of the vocabulary (every type, ``<unk>`` and the
end-of-line token; ``<s>`` is context only). A context never seen in training has gamma 1.

Counts follow lmbench's line convention (one ``<s>`` per line, no n-gram crosses a line; see
:mod:`lmbench.models.ngram_counts`), which is KenLM's and SRILM's.

nltk.lm's ``WittenBellInterpolated``, ``AbsoluteDiscountingInterpolated`` and
``KneserNeyInterpolated`` (with a fixed discount) define the highest order of a bigram model exactly
as here (tested: same alpha and gamma for every context and word). They differ elsewhere, by design:
nltk pads each line with n-1 ``<s>`` (so from trigrams up its n-grams include "<s> <s> w"), counts
``<s>`` among its unigrams, and has no uniform order 0 (its unigram level is a plain or continuation
frequency, so a word unseen in training gets probability 0); its Kneser-Ney uses one discount (0.1 by
default) at every order and continuation counts for ``<s>``-initial lower-order n-grams, where
KenLM and lmbench keep raw counts (nothing can precede ``<s>``).
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import LmbenchError
from .backoff import BackoffNGram, format_orders, interpolate, one_line_warning
from .ngram_counts import NGramCounts

#: KenLM's ``--discount_fallback`` defaults for modified Kneser-Ney (D1, D2, D3+).
FALLBACK_MODIFIED = (0.5, 1.0, 1.5)
#: fallback for a single discount per order (the customary 0.75 of absolute discounting).
FALLBACK_ONE = 0.75


def discounted_terms(model: BackoffNGram, k: int, a: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """alpha and gamma of order k for counts ``a`` discounted by D(a) = d[min(a, 3) - 1] (D(0) = 0).

    alpha(h w) = (a(h w) - D(a(h w))) / sum_v a(h v);
    gamma(h) = (D1 N1(h .) + D2 N2(h .) + D3 N3+(h .)) / sum_v a(h v)   (1 where h has no continuation).
    """
    a = np.asarray(a, dtype=np.float64)
    table = np.array([0.0, d[0], d[1], d[2]])
    discount = table[np.minimum(a, 3).astype(np.int64)]
    total = model._per_context(k, a)
    left = model._per_context(k, discount)
    seen = total > 0
    safe = np.where(seen, total, 1.0)
    alpha = (a - discount) / safe[model._context_of(k)]
    gamma = np.where(seen, left / safe, 1.0)
    return alpha, gamma


def parse_discounts(discounts, order: int, modified: bool, name: str):
    """Check user discounts; return an (order, 3) array (D1, D2, D3+ per order) or None.

    Accepts None, one number (every order; with ``modified`` it is D1 = D2 = D3+), or a list of
    ``order`` entries, each a number or (with ``modified``) a triple (D1, D2, D3+).
    """
    if discounts is None:
        return None
    entries = [discounts] * order if isinstance(discounts, numbers.Real) else discounts
    if isinstance(entries, (str, bytes)) or not hasattr(entries, "__len__") or len(entries) != order:
        raise LmbenchError(f"{name} discounts must be a number or a list of {order} (one per order), got {discounts!r}")
    out = np.zeros((order, 3))
    for k, entry in enumerate(entries, start=1):
        if isinstance(entry, numbers.Real) and not isinstance(entry, bool):
            triple = (float(entry),) * 3
        elif modified and hasattr(entry, "__len__") and len(entry) == 3 and all(
                isinstance(x, numbers.Real) and not isinstance(x, bool) for x in entry):
            triple = tuple(float(x) for x in entry)
        else:
            shape = "a number or a triple (D1, D2, D3+)" if modified else "a number"
            raise LmbenchError(f"{name} discount for order {k} must be {shape}, got {entry!r}")
        for j, value in enumerate(triple, start=1):
            if not 0 < value <= j:  # D(c) <= c keeps every discounted count >= 0
                what = "discount" if triple[0] == triple[1] == triple[2] else f"discount D{j if j < 3 else '3+'}"
                raise LmbenchError(f"{name} {what} for order {k} must be in (0, {j}], got {value!r}")
        out[k - 1] = triple
    return out


def modified_discounts(n: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Chen & Goodman (1998, eq. 26) discounts from counts of counts n[1..4], or (None, why not).

    Y = n1 / (n1 + 2 n2);  D1 = 1 - 2Y n2/n1;  D2 = 2 - 3Y n3/n2;  D3+ = 3 - 4Y n4/n3.
    Valid when n1..n4 > 0 and 0 < Dj < j.
    """
    for j in range(1, 5):
        if n[j] == 0:
            return None, f"no n-grams with count {j}"
    y = n[1] / (n[1] + 2.0 * n[2])
    d = np.array([j - (j + 1) * y * n[j + 1] / n[j] for j in (1, 2, 3)])
    for j in (1, 2, 3):
        if not 0 < d[j - 1] < j:
            return None, f"D{j if j < 3 else '3+'} = {d[j - 1]:.3g} outside (0, {j})"
    return d, ""


def one_discount(n: np.ndarray) -> tuple[float | None, str]:
    """Ney, Essen & Kneser's (1994) estimate D = n1 / (n1 + 2 n2), or (None, why not)."""
    if n[1] == 0 or n[2] == 0:
        return None, f"no n-grams with count {1 if n[1] == 0 else 2}"
    return n[1] / (n[1] + 2.0 * n[2]), ""


class InterpolatedNGram(BackoffNGram):
    """Base of interpolated models: subclasses give the per-order terms alpha and gamma."""

    def _terms(self, suffixes: list) -> tuple[list, list]:
        raise NotImplementedError

    def _tables(self, suffixes):
        alpha, gamma = self._terms(suffixes)
        return interpolate(self.counts_, alpha, gamma, suffixes)

    def interpolation_terms(self) -> tuple[list, list]:
        """The fitted model's (alpha, gamma) per order, for inspection.

        ``alpha[k]`` is indexed by k-gram id (``alpha[1]`` by token id), ``gamma[k]`` by the id of
        the (k-1)-gram context (``gamma[1][0]``: the weight of the uniform distribution).
        """
        self._check_fitted()
        return self._terms(self.counts_.all_suffix_ids())


class _Discounted(InterpolatedNGram):
    """Shared machinery of the discounting methods (Kneser-Ney, absolute discounting)."""

    fitted_keys = ("discounts_", "discounts_estimated_", "fallback_orders_")
    method_name = ""
    modified = False

    def _count_arrays(self, suffixes: list) -> list:
        """The counts each order discounts (raw or Kneser-Ney adjusted), index k."""
        raise NotImplementedError

    def _given_discounts(self):
        """The user's discount parameter (None: estimate)."""
        raise NotImplementedError

    def _choose(self, valid_ids, suffixes):
        given = parse_discounts(self._given_discounts(), self.order, self.modified, self.method_name)
        self.discounts_estimated_ = given is None
        self.fallback_orders_ = []
        if given is not None:
            self.discounts_ = given
            return
        counts = self._count_arrays(suffixes)
        out, reasons = np.zeros((self.order, 3)), []
        for k in range(1, self.order + 1):
            n = NGramCounts.count_of_counts(counts[k], 4)
            if self.modified:
                d, why = modified_discounts(n)
            else:
                one, why = one_discount(n)
                d = None if one is None else np.full(3, one)
            if d is None:
                d = np.array(FALLBACK_MODIFIED) if self.modified else np.full(3, FALLBACK_ONE)
                self.fallback_orders_.append(k)
                reasons.append(why)
            out[k - 1] = d
        self.discounts_ = out
        if self.fallback_orders_:
            fallback = ("D1=%g, D2=%g, D3+=%g" % FALLBACK_MODIFIED) if self.modified else f"D={FALLBACK_ONE:g}"
            orders = format_orders(self.fallback_orders_)
            one_line_warning(f"{self.method_name} discounts for {orders} cannot be estimated from counts of counts "
                             f"({reasons[0]}: small or artificial data); using fallback {fallback}")

    def _terms(self, suffixes):
        counts = self._count_arrays(suffixes)
        alpha, gamma = [None], [None]
        for k in range(1, self.order + 1):
            a, g = discounted_terms(self, k, counts[k], self.discounts_[k - 1])
            alpha.append(a)
            gamma.append(g)
        return alpha, gamma

    def fitted_summary(self):
        d = self.discounts_
        per_order = ([[round(float(x), 6) for x in row] for row in d] if self.modified
                     else [round(float(row[0]), 6) for row in d])
        return {"discounts": per_order, "discounts_estimated": bool(self.discounts_estimated_),
                "fallback_orders": [int(k) for k in self.fallback_orders_]}


class KneserNey(_Discounted):
    """Interpolated Kneser-Ney smoothing, modified (three discounts per order) or with one discount.

    Kneser & Ney (1995) estimate lower orders from continuation counts; Chen & Goodman (1998,
    "An Empirical Study of Smoothing Techniques for Language Modeling", sections 3.5 and 4.1.6)
    interpolate all orders and, in the modified form, use three discounts per order, D1 for n-grams
    seen once, D2 twice, D3+ three times or more::

        P(w | h) = (a(h w) - D(a(h w))) / sum_v a(h v) + gamma(h) P(w | h'),
        gamma(h) = (D1 N1(h .) + D2 N2(h .) + D3+ N3+(h .)) / sum_v a(h v)

    Counts a follow KenLM's lmplz: raw counts at the highest order and for n-grams that begin with
    ``<s>`` (nothing can precede ``<s>``), continuation counts N1+(. g) (distinct left
    extensions) otherwise. The unigram level is interpolated with the uniform distribution over the
    V predictable tokens. Discounts are estimated per order from the counts of counts of a (Chen &
    Goodman eq. 26: Y = n1/(n1 + 2 n2), D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3;
    with one discount, D = Y). Where an estimate is impossible (some n_j = 0 or Dj outside (0, j),
    typical of small corpora), that order falls back to KenLM's ``--discount_fallback`` values
    D1 = 0.5, D2 = 1.0, D3+ = 1.5 (one discount: 0.75) with a warning, instead of failing as lmplz
    does (``BadDiscountException``).

    Differences from KenLM: V excludes ``<s>`` and has no extra ``<unk>`` of its own (KenLM's
    uniform level divides by the number of its unigrams minus ``<s>``, its own ``<unk>`` included,
    and gives that ``<unk>`` the mass gamma/V even when the corpus has its own unknown-word token);
    discounts are computed in float64 (KenLM: float32).

    Args:
        order: n-gram order.
        discounts: None (estimate per order), one number for every order, or a list of ``order``
            entries, each a number or (modified) a triple (D1, D2, D3+); Dj in (0, j] (a single
            number: in (0, 1]).
        modified: three discounts per order (True) or one (False, "kn1").
    """

    method_name = "Kneser-Ney"

    def __init__(self, order: int = 3, discounts=None, modified: bool = True):
        super().__init__(order)
        self.discounts = discounts
        self.modified = modified

    def check_params(self):
        super().check_params()
        if not isinstance(self.modified, bool):
            raise LmbenchError(f"Kneser-Ney 'modified' must be true or false, got {self.modified!r}")
        parse_discounts(self.discounts, self.order, self.modified, self.method_name)

    def _given_discounts(self):
        return self.discounts

    def _count_arrays(self, suffixes):
        return kn_adjusted_counts(self.counts_, suffixes)


def kn_adjusted_counts(counts: NGramCounts, suffixes: list) -> list:
    """KenLM's adjusted counts per order (index k): raw at the top order and for n-grams starting
    with ``<s>``, continuation counts N1+(. g) below."""
    out = [None]
    for k in range(1, counts.order + 1):
        if k == counts.order:
            out.append(counts.counts[k])
        else:
            continuation = counts.continuation_counts(k, suffixes[k + 1])
            out.append(np.where(counts.starts_with_bos(k), counts.counts[k], continuation))
    return out


class AbsoluteDiscount(_Discounted):
    """Interpolated absolute discounting (Ney, Essen & Kneser 1994).

    One discount D per order subtracted from every raw count, the freed mass given to the lower
    order::

        P(w | h) = (c(h w) - D) / c(h) + D N1+(h .) / c(h) * P(w | h'),     P_0 = 1 / V

    D per order defaults to Ney, Essen & Kneser's estimate n1 / (n1 + 2 n2) from the counts of
    counts of that order (fallback 0.75 with a warning where n1 or n2 is 0). It is Kneser-Ney
    with one discount, without continuation counts.

    Args:
        order: n-gram order.
        discount: None (estimate per order), a number in (0, 1] for every order, or a list of
            ``order`` numbers.
    """

    method_name = "absolute discounting"

    def __init__(self, order: int = 3, discount=None):
        super().__init__(order)
        self.discount = discount

    def _given_discounts(self):
        return self.discount

    def check_params(self):
        super().check_params()
        parse_discounts(self.discount, self.order, False, self.method_name)

    def _count_arrays(self, suffixes):
        return self.counts_.counts

    def fitted_summary(self):
        return {"discount": [round(float(row[0]), 6) for row in self.discounts_],
                "discount_estimated": bool(self.discounts_estimated_),
                "fallback_orders": [int(k) for k in self.fallback_orders_]}


class WittenBell(InterpolatedNGram):
    """Interpolated Witten-Bell smoothing (Witten & Bell 1991; as in Chen & Goodman 1998, sec. 2.4).

    The lower order gets the weight of "a new token type" after h::

        P(w | h) = (c(h w) + N1+(h .) P(w | h')) / (c(h) + N1+(h .)),     P_0 = 1 / V

    with raw counts at every order. It has no hyperparameters.
    """

    def _terms(self, suffixes):
        c = self.counts_
        alpha, gamma = [None], [None]
        for k in range(1, self.order + 1):
            counts = c.counts[k].astype(np.float64)
            total = self._per_context(k, counts)
            types = c.distinct_continuations(k).astype(np.float64)
            seen = total > 0
            denominator = np.where(seen, total + types, 1.0)
            alpha.append(counts / denominator[self._context_of(k)])
            gamma.append(np.where(seen, types / denominator, 1.0))
        return alpha, gamma
