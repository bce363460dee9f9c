"""Katz back-off with Good-Turing discounted counts (Katz 1987; Good 1953)."""

from __future__ import annotations

import numpy as np

from ...errors import LmbenchError, is_whole
from .model import SmoothedNGram
from .smoothing import Smoothing, counts_of_counts, format_orders, one_line_warning

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
        return {"k": int(self.max_count), "k_used": [int(x) for x in self.k_used_],
                "discount_ratios": [f"absolute {FALLBACK_DISCOUNT}" if absolute else
                                    [round(float(x), 6) for x in row[1: int(kk) + 1]]
                                    for row, kk, absolute in zip(self.ratios_, self.k_used_, self.absolute_)],
                "fallback_orders": [int(x) for x in self.fallback_orders_]}


class Katz(SmoothedNGram):
    """Katz (1987) back-off with Good-Turing (Good 1953) discounting.

    Seen n-grams keep their discounted relative frequency; unseen ones back off to the next lower
    order, scaled so that each context's distribution sums to one::

        P(w | h) = d_c c(h w) / c(h)                        if c(h w) > 0  (d_c = 1 for c > max_count)
                 = beta(h) P(w | h')                        otherwise,
        beta(h) = (1 - sum_{w: c(h w) > 0} P(w | h)) / (1 - sum_{w: c(h w) > 0} P(w | h'))

    with Katz's ratios d_r from the counts of counts of each order and raw counts at every order
    (see :class:`GoodTuring` for the unigram level, contexts that lose no mass, and orders whose
    ratios are invalid: small corpora, or PTB's unigrams, whose Good-Turing ratios r*/r for r >= 2
    fall outside (0, 1), above 1, since only 30 words are seen once: there max_count is lowered, down
    to the absolute discount when no value is valid).

    Args:
        order: n-gram order.
        max_count: counts up to it are discounted (Katz's recommendation: 5; at least 2, since 1
            makes d_1 = 0 whatever the counts; at most 1000). Renamed from ``k`` (old checkpoints load).
        memory, storage: where the tables are kept (see :class:`~lmbench.models.ngram.model.NGramModel`).
    """

    renamed_params = {"k": "max_count"}

    def __init__(self, order: int = 3, max_count: int = 5, memory=None, storage: str = "auto"):
        super().__init__(order, form="backoff", memory=memory, storage=storage)
        self.max_count = max_count

    def make_smoothing(self):
        return GoodTuring(self.max_count)
