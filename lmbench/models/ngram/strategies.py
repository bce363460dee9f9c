"""The built-in smoothing strategies: per-order terms (alpha, gamma) of Kneser-Ney, absolute discounting,
Witten-Bell, Jelinek-Mercer and Good-Turing (Katz), and the lookup of a strategy by name.

Kneser & Ney (1995) and Chen & Goodman (1998) for Kneser-Ney; Ney, Essen & Kneser (1994) for absolute
discounting; Witten & Bell (1991); Jelinek & Mercer (1980) with EM (Dempster, Laird & Rubin 1977);
Good (1953) and Katz (1987). The named model classes that use them are in :mod:`.interpolated`,
:mod:`.jelinek_mercer` and :mod:`.katz`.
"""

from __future__ import annotations

import numbers

import numpy as np

from ...errors import LmbenchError, is_finite_number, is_whole, unknown_name_error
from .counts import NGramCounts
from .smoothing import STRATEGIES, Smoothing, counts_of_counts, format_orders, one_line_warning


# ---------------------------------------------------------------- from interpolated

#: KenLM's ``--discount_fallback`` defaults for modified Kneser-Ney (D1, D2, D3+).
FALLBACK_MODIFIED = (0.5, 1.0, 1.5)


#: fallback for a single discount per order (the customary 0.75 of absolute discounting).
FALLBACK_ONE = 0.75


def discounted_terms(a: np.ndarray, context: np.ndarray, n_contexts: int, d) -> tuple[np.ndarray, np.ndarray]:
    """alpha and gamma of one order for counts ``a`` discounted by D(a) = d[min(a, 3) - 1] (D(0) = 0).

    alpha(h w) = (a(h w) - D(a(h w))) / sum_v a(h v);
    gamma(h) = (D1 N1(h .) + D2 N2(h .) + D3 N3+(h .)) / sum_v a(h v)   (1 where h has no continuation).
    """
    a = np.asarray(a, dtype=np.float64)
    table = np.array([0.0, d[0], d[1], d[2]])
    discount = table[np.minimum(a, 3).astype(np.int64)]
    total = np.bincount(context, weights=a, minlength=n_contexts).astype(np.float64)
    left = np.bincount(context, weights=discount, minlength=n_contexts).astype(np.float64)
    seen = total > 0
    safe = np.where(seen, total, 1.0)
    alpha = (a - discount) / safe[context]
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


class AbsoluteDiscounting(Smoothing):
    """Discounted terms: alpha(h w) = (a - D(a)) / sum a, gamma(h) = the discounted mass / sum a.

    One discount per order (``modified``: three, D1, D2, D3+ for counts 1, 2, 3+), given or estimated
    from the counts of counts of that order (Ney, Essen & Kneser 1994: D = n1 / (n1 + 2 n2); Chen &
    Goodman 1998, eq. 26 for three), falling back with a warning where the estimate is impossible.
    """

    name = "abs"
    method_name = "absolute discounting"
    fitted_keys = ("discounts_", "discounts_estimated_", "fallback_orders_")

    def __init__(self, discounts=None, modified: bool = False):
        self.discounts = discounts
        self.modified = modified

    def check(self, order):
        parse_discounts(self.discounts, order, self.modified, self.method_name)

    def estimate(self, counts, valid_ids, eos_id):
        order = counts.order
        given = parse_discounts(self.discounts, order, self.modified, self.method_name)
        self.discounts_estimated_ = given is None
        self.fallback_orders_ = []
        if given is not None:
            self.discounts_ = given
            return
        out, reasons = np.zeros((order, 3)), []
        for k in range(1, order + 1):
            n = counts_of_counts(counts, self, k, 4)
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
            one_line_warning(f"{self.method_name} discounts for {format_orders(self.fallback_orders_)} cannot be "
                             f"estimated from counts of counts ({reasons[0]}: small or artificial data); "
                             f"using fallback {fallback}")

    def terms(self, k, a, context, n_contexts):
        return discounted_terms(a, context, n_contexts, self.discounts_[k - 1])

    def fitted_summary(self):
        return {"discount": [round(float(row[0]), 6) for row in self.discounts_],
                "discount_estimated": bool(self.discounts_estimated_),
                "fallback_orders": [int(k) for k in self.fallback_orders_]}


class KneserNeySmoothing(AbsoluteDiscounting):
    """Kneser & Ney's (1995) discounted terms over KenLM's adjusted counts.

    Raw counts at the highest order and for n-grams that begin with ``<s>`` (nothing can precede
    it), continuation counts N1+(. g) (distinct left extensions) below; discounted as
    :class:`AbsoluteDiscounting` (``modified``: three discounts per order, Chen & Goodman 1998).
    """

    name = "kn"
    method_name = "Kneser-Ney"
    continuation = True

    def __init__(self, discounts=None, modified: bool = True):
        super().__init__(discounts, modified)

    def check(self, order):
        if not isinstance(self.modified, bool):
            raise LmbenchError(f"Kneser-Ney 'modified' must be true or false, got {self.modified!r}")
        super().check(order)

    def order_counts(self, counts: NGramCounts, k, x0, x1):
        if k == counts.order:
            return counts.read(counts.counts[k], x0, x1)
        cut = min(max(counts.bos_start(k), x0), x1)                   # <s>-initial ids come last: raw counts
        if cut == x1:
            return counts.read(counts.continuation(k), x0, x1)
        if cut == x0:
            return counts.read(counts.counts[k], x0, x1)
        out = np.empty(x1 - x0, dtype=np.int64)
        out[:cut - x0] = counts.read(counts.continuation(k), x0, cut)
        out[cut - x0:] = counts.read(counts.counts[k], cut, x1)
        return out

    def fitted_summary(self):
        d = self.discounts_
        per_order = ([[round(float(x), 6) for x in row] for row in d] if self.modified
                     else [round(float(row[0]), 6) for row in d])
        return {"discounts": per_order, "discounts_estimated": bool(self.discounts_estimated_),
                "fallback_orders": [int(k) for k in self.fallback_orders_]}


class WittenBellSmoothing(Smoothing):
    """Witten & Bell's (1991) terms: alpha(h w) = c(h w) / (c(h) + N1+(h .)), gamma(h) = N1+(h .) / (c(h) + N1+(h .))."""

    name = "wb"

    def terms(self, k, a, context, n_contexts):
        counts = np.asarray(a, dtype=np.float64)
        total = np.bincount(context, weights=counts, minlength=n_contexts).astype(np.float64)
        # N1+(h .): the distinct continuations of each context (order 1: the tokens seen in training)
        types = np.array([(counts > 0).sum()]) if k == 1 else np.bincount(context, minlength=n_contexts)
        types = types.astype(np.float64)
        seen = total > 0
        denominator = np.where(seen, total + types, 1.0)
        return counts / denominator[context], np.where(seen, types / denominator, 1.0)

# ---------------------------------------------------------------- from jelinek_mercer

#: lambdas are kept inside [0, 1 - LAMBDA_MARGIN] so that every lower order keeps some weight.
LAMBDA_MARGIN = 1e-4


#: the most context-count buckets: bucket b holds counts 2^b <= c(h) < 2^(b+1), and counts are 64-bit.
MAX_BUCKETS = 64


def bucket_of(context_counts: np.ndarray, n_buckets: int) -> np.ndarray:
    """Bucket of each context count: b for 2^b <= c(h) < 2^(b+1), the last bucket for all larger (0 for 0 or 1)."""
    c = np.maximum(np.asarray(context_counts, dtype=np.float64), 1.0)
    return np.minimum(np.floor(np.log2(c)).astype(np.int64), n_buckets - 1)


class JelinekMercerSmoothing(Smoothing):
    """Jelinek-Mercer terms: alpha(h w) = lambda_k(h) c(h w) / c(h), gamma(h) = 1 - lambda_k(h).

    lambda_k(h) depends on the order and the context count's bucket (:func:`bucket_of`); given, or
    fitted by EM on the validation split (:meth:`estimate`).
    """

    name = "interp"
    fitted_keys = ("lambdas_", "lambdas_tuned_", "em_iterations_")

    def __init__(self, lambdas=None, buckets: int = 8, max_iter: int = 1000, tol: float = 1e-9):
        self.lambdas = lambdas
        self.buckets = buckets
        self.max_iter = max_iter
        self.tol = tol

    def check(self, order):
        if not is_whole(self.buckets) or not 1 <= self.buckets <= MAX_BUCKETS:
            raise LmbenchError(f"Jelinek-Mercer buckets must be a whole number from 1 to {MAX_BUCKETS} (bucket b "
                               f"holds context counts from 2^b; 64-bit counts need no more), got {self.buckets!r}")
        if not is_whole(self.max_iter) or self.max_iter < 1:
            raise LmbenchError(f"Jelinek-Mercer max_iter must be a whole number >= 1, got {self.max_iter!r}")
        if not is_finite_number(self.tol) or not self.tol > 0:
            raise LmbenchError(f"Jelinek-Mercer tol must be a finite number > 0, got {self.tol!r}")
        if self.lambdas is not None:
            values = self.lambdas
            if (isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) != order
                    or not all(is_finite_number(x) and 0 <= x < 1 for x in values)):
                raise LmbenchError(f"Jelinek-Mercer lambdas must be a list of {order} numbers in [0, 1) "
                                   f"(one per order, unigram first), got {values!r}")

    def estimate(self, counts, valid_ids, eos_id):
        if self.lambdas is not None:
            self.lambdas_ = np.asarray(self.lambdas, dtype=np.float64).reshape(counts.order, 1)
            self.lambdas_tuned_, self.em_iterations_ = False, 0
            return
        if valid_ids is None:
            raise LmbenchError("Jelinek-Mercer with lambdas=None tunes its weights on a validation split; "
                               "pass valid_ids or set lambdas")
        self.lambdas_, self.em_iterations_ = self._em(counts, valid_ids, eos_id)
        self.lambdas_tuned_ = True

    def _em(self, counts, valid_ids, eos_id) -> tuple[np.ndarray, int]:
        """(lambdas (order, buckets), iterations): EM on the validation split from lambda = 0.5."""
        c, n, nb = counts, counts.order, int(self.buckets)
        query = c.query_split(valid_ids, eos_id)
        M = query.tokens.size
        # p_ml[:, k]: ML estimate of order k (k = 0: uniform); usable[:, k]: the context was seen.
        p_ml = np.zeros((M, n + 1))
        usable = np.zeros((M, n + 1), dtype=bool)
        bucket = np.zeros((M, n + 1), dtype=np.int64)
        p_ml[:, 0], usable[:, 0] = 1.0 / c.vocab_size, True
        for k in range(1, n + 1):
            total = c.take(c.context_totals(k), query.contexts[k])
            gram = c.take(c.counts[k], query.grams[k])
            usable[:, k] = (total > 0) & (query.max_order >= k)
            p_ml[:, k] = np.where(usable[:, k], gram / np.maximum(total, 1), 0.0)
            bucket[:, k] = bucket_of(total, nb)
        lam = np.full((n, nb), 0.5)
        previous, iterations = -np.inf, 0
        for iterations in range(1, int(self.max_iter) + 1):
            # mixture weight of each order: lambda_k times (1 - lambda_j) of every usable higher order
            lam_tok = np.zeros((M, n + 1))
            for k in range(1, n + 1):
                lam_tok[:, k] = np.where(usable[:, k], lam[k - 1][bucket[:, k]], 0.0)
            weight = np.zeros((M, n + 1))
            through = np.ones(M)
            for k in range(n, 0, -1):
                weight[:, k] = through * lam_tok[:, k]
                through = through * (1.0 - lam_tok[:, k])
            weight[:, 0] = through
            joint = weight * p_ml
            p = joint.sum(axis=1)
            loglik = float(np.log(p).mean())
            post = joint / p[:, None]                       # who generated the token
            reached = np.cumsum(post, axis=1)               # reached[:, k]: generated at order <= k
            new = lam.copy()
            for k in range(1, n + 1):
                rows = usable[:, k]
                stopped = np.bincount(bucket[rows, k], weights=post[rows, k], minlength=nb)
                passed = np.bincount(bucket[rows, k], weights=reached[rows, k], minlength=nb)
                pooled = stopped.sum() / passed.sum() if passed.sum() > 0 else 0.5
                new[k - 1] = np.where(passed > 0, stopped / np.where(passed > 0, passed, 1.0), pooled)
            lam = np.clip(new, 0.0, 1.0 - LAMBDA_MARGIN)
            if loglik - previous < self.tol:
                break
            previous = loglik
        return lam, iterations

    def terms(self, k, a, context, n_contexts):
        total = np.bincount(context, weights=a, minlength=n_contexts).astype(np.int64).astype(np.float64)
        lam = self.lambdas_[k - 1][bucket_of(total, self.lambdas_.shape[1])]
        seen = total > 0
        alpha = lam[context] * a / np.where(seen, total, 1.0)[context]
        return alpha, np.where(seen, 1.0 - lam, 1.0)

    def valid_use(self) -> str:
        return "interpolation weights by EM on valid" if self.lambdas_tuned_ else ""

    def fitted_summary(self):
        lam = self.lambdas_
        return {"lambdas": [round(float(x), 6) for x in lam[:, 0]] if lam.shape[1] == 1
                else [[round(float(x), 6) for x in row] for row in lam],
                "lambdas_tuned_on_valid": bool(self.lambdas_tuned_), "em_iterations": int(self.em_iterations_)}

# ---------------------------------------------------------------- from katz

#: absolute discount used at an order where no Good-Turing estimate is valid.
FALLBACK_DISCOUNT = 0.5


#: the largest max_count accepted: Good-Turing needs n_1..n_(max_count+1) > 0, which even large corpora lose
#: long before counts of 1000 (it is then lowered with a warning); a larger one would only cost time and memory.
MAX_COUNT = 1000


def good_turing_ratios(n: np.ndarray, k: int) -> tuple[np.ndarray | None, str]:
    """Katz's discount ratios d_r for r = 1..k (index r) from counts of counts n, or None if invalid.

    Good (1953): r* = (r + 1) n_{r+1} / n_r. Katz (1987, eq. 13) leaves counts above k alone and
    renormalizes the discounts of counts 1..k so that the mass taken from them equals the
    Good-Turing mass of unseen events, n_1 / N::

        d_r = (r*/r - (k+1) n_{k+1} / n_1) / (1 - (k+1) n_{k+1} / n_1)

    Valid when n_1..n_{k+1} > 0 and 0 < d_r < 1 for every r <= k.

    Returns:
        (array d with d[0] = 0 and d[r] for r = 1..k, "") or (None, why the estimate is invalid).
    """
    for r in range(1, k + 2):
        if n[r] == 0:
            return None, f"no n-grams seen exactly {r} time{'s' if r > 1 else ''}"
    r = np.arange(1, k + 1, dtype=np.float64)
    star = (r + 1) * n[2:k + 2] / n[1:k + 1]
    common = (k + 1) * n[k + 1] / n[1]
    if common >= 1:
        return None, f"(k+1) n_(k+1) >= n_1 for k={k}"
    d = (star / r - common) / (1 - common)
    bad = np.flatnonzero((d <= 0) | (d >= 1))
    if bad.size:
        return None, f"discount ratio d_{bad[0] + 1} = {d[bad[0]]:.3g} outside (0, 1)"
    return np.concatenate(([0.0], d)), ""


class GoodTuring(Smoothing):
    """Katz's Good-Turing discounted relative frequencies, the back-off terms of :class:`Katz`.

    alpha(h w) = d_c c(h w) / c(h) with Katz's ratios d_c for c <= max_count (d_c = 1 above), per
    order from its counts of counts (:func:`good_turing_ratios`). Where an order's ratios are invalid
    the largest smaller max_count that is valid is used, and if none is, an absolute discount of
    0.5. A context whose continuations all have counts above max_count loses nothing to
    discounting: there the counts are divided by c(h) + 1 (as SRILM's "incrementing denominator").
    The unigram level spreads the freed mass over all V tokens (gamma() = 1 - sum_w alpha(w)).
    """

    name = "katz"
    forms = ("backoff",)
    fitted_keys = ("ratios_", "k_used_", "absolute_", "fallback_orders_")

    def __init__(self, max_count: int = 5):
        self.max_count = max_count

    def check(self, order):
        if not is_whole(self.max_count) or self.max_count < 2:
            raise LmbenchError(f"Katz max_count (largest discounted count) must be a whole number >= 2 (with 1, "
                               f"Katz's formula discounts every singleton to 0), got {self.max_count!r}")
        if self.max_count > MAX_COUNT:
            raise LmbenchError(f"Katz max_count (largest discounted count) must be at most {MAX_COUNT}, got "
                               f"{self.max_count}; Katz's recommendation is 5")

    def estimate(self, counts, valid_ids, eos_id):
        k, n_orders = int(self.max_count), counts.order
        self.ratios_ = np.zeros((n_orders, k + 1))   # row order-1: d_r for r = 0..k (d_0 unused)
        self.k_used_ = np.zeros(n_orders, dtype=np.int64)
        self.absolute_ = np.zeros(n_orders, dtype=bool)   # orders discounted by FALLBACK_DISCOUNT
        self.fallback_orders_ = []
        lowered, failed, reasons = [], [], []
        for order in range(1, n_orders + 1):
            n = counts_of_counts(counts, self, order, k + 1)
            for kk in range(k, 1, -1):
                d, why = good_turing_ratios(n, kk)
                if kk == k and d is None:
                    reasons.append(f"{order}-grams: {why}")
                if d is not None:
                    break
            if d is None:
                kk = 0
                d = np.zeros(1)
                self.absolute_[order - 1] = True
                failed.append(order)
                self.fallback_orders_.append(order)
            elif kk < k:
                lowered.append((order, kk))
                self.fallback_orders_.append(order)
            self.ratios_[order - 1, : kk + 1] = d
            self.ratios_[order - 1, kk + 1:] = 1.0
            self.k_used_[order - 1] = kk
        if lowered or failed:
            parts = []
            if lowered:
                parts.append("max_count lowered to " + ", ".join(f"{kk} for {o}-grams" for o, kk in lowered))
            if failed:
                parts.append(f"an absolute discount of {FALLBACK_DISCOUNT} for {format_orders(failed)}")
            one_line_warning(f"Katz: Good-Turing discounts with max_count={k} are invalid ({reasons[0]}; small or "
                             f"artificial data, or a capped vocabulary); using {'; '.join(parts)}")

    def discounted(self, k: int, counts: np.ndarray) -> np.ndarray:
        """Discounted counts d_c * c of n-grams of order k."""
        if self.absolute_[k - 1]:
            return np.maximum(counts - FALLBACK_DISCOUNT, 0.0)
        ratios = np.concatenate((self.ratios_[k - 1], [1.0]))
        return ratios[np.minimum(counts, ratios.size - 1)] * counts

    def terms(self, k, a, context, n_contexts):
        star = self.discounted(k, a)
        if k == 1:
            total = float(a.sum())
            if total == 0:
                return np.zeros(star.size), np.array([1.0])
            return star / total, np.array([1.0 - star.sum() / total])
        counts = a.astype(np.float64)
        context_total = np.bincount(context, weights=a, minlength=n_contexts).astype(np.int64).astype(np.float64)
        discounted_any = np.bincount(context, weights=(star < counts), minlength=n_contexts) > 0
        # a context that lost no mass gets one extra (novel) token: divide by c(h) + 1
        denominator = np.where(discounted_any, context_total, context_total + 1.0)
        denominator = np.where(context_total > 0, denominator, 1.0)
        return star / denominator[context], None

    def fitted_summary(self):
        return {"max_count": int(self.max_count), "max_count_used": [int(x) for x in self.k_used_],
                "discount_ratios": [f"absolute {FALLBACK_DISCOUNT}" if absolute else
                                    [round(float(x), 6) for x in row[1: int(kk) + 1]]
                                    for row, kk, absolute in zip(self.ratios_, self.k_used_, self.absolute_)],
                "fallback_orders": [int(x) for x in self.fallback_orders_]}


def strategy_named(name: str) -> type:
    """The strategy class registered under ``name``: a built-in one of this module, or one of yours (a subclass
    of :class:`~lmbench.models.ngram.smoothing.Smoothing` with a ``name`` registers itself when defined)."""
    if name not in STRATEGIES:
        raise unknown_name_error("n-gram smoothing strategy", name, sorted(STRATEGIES))
    return STRATEGIES[name]
