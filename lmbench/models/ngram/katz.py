"""Katz backoff with Good-Turing discounted counts."""

from __future__ import annotations

import numpy as np

from ...errors import LmbenchError
from .backoff import BackoffNGram, format_orders, one_line_warning
from ...errors import is_whole
from .mle import safe_log
from .counts import NGramCounts

#: absolute discount used at an order where no Good-Turing estimate is valid.
FALLBACK_DISCOUNT = 0.5
#: the largest k accepted: Good-Turing needs n_1..n_(k+1) > 0, which even large corpora lose long before
#: counts of 1000 (k is then lowered with a warning); a larger k would only cost time and memory.
MAX_K = 1000


def good_turing_ratios(n: np.ndarray, k: int) -> tuple[np.ndarray | None, str]:
    """Katz's discount ratios d_r = r*/r for r = 1..k (index r), or None if invalid.

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


class Katz(BackoffNGram):
    """Katz (1987) backoff with Good-Turing (Good 1953) discounting.

    Seen n-grams keep their discounted relative frequency; unseen ones back off to the next lower
    order, scaled so that each context's distribution sums to one::

        P(w | h) = d_c c(h w) / c(h)                        if c(h w) > 0  (d_c = 1 for c > k)
                 = beta(h) P(w | h')                        otherwise,
        beta(h) = (1 - sum_{w: c(h w) > 0} P(w | h)) / (1 - sum_{w: c(h w) > 0} P(w | h'))

    with Katz's ratios d_r from the counts of counts of each order (see
    :func:`good_turing_ratios`) and raw counts at every order. Choices where Katz's recipe leaves
    a gap, so that every distribution sums to one over the V tokens with no zero probability:

    * the unigram level: discounted unigram frequencies, the mass freed by discounting spread
      uniformly over all V tokens (so a token never seen in training is not impossible);
    * a context whose continuations were all seen more than k times loses nothing to discounting
      and would give every other token probability 0: there the seen counts are divided by
      c(h) + 1 instead of c(h), leaving 1 / (c(h) + 1) to back off (as if one more, novel, token
      had followed h);
    * an order whose counts of counts make the Good-Turing ratios invalid (some n_r = 0 for
      r <= k + 1, or a ratio outside (0, 1): small corpora, or PTB's unigrams, which has no word seen
      once) uses the largest smaller k that is valid and, if none is, subtracts 0.5 from every count
      of that order (absolute discounting), with a warning.

    Args:
        order: n-gram order.
        k: counts up to k are discounted (Katz's recommendation: 5; at least 2, since k = 1 makes
            d_1 = 0 whatever the counts; at most 1000).
    """

    fitted_keys = ("ratios_", "k_used_", "absolute_", "fallback_orders_")

    def __init__(self, order: int = 3, k: int = 5):
        super().__init__(order)
        self.k = k

    def check_params(self):
        super().check_params()
        if not is_whole(self.k) or self.k < 2:
            raise LmbenchError(f"Katz k (largest discounted count) must be a whole number >= 2 (with k = 1 "
                               f"Katz's formula discounts every singleton to 0), got {self.k!r}")
        if self.k > MAX_K:
            raise LmbenchError(f"Katz k (largest discounted count) must be at most {MAX_K}, got {self.k}; "
                               f"Katz's recommendation is 5")

    def _choose(self, valid_ids, suffixes):
        k = int(self.k)
        c = self.counts_
        self.ratios_ = np.zeros((self.order, k + 1))   # row k-1: d_r for r = 0..k (d_0 unused)
        self.k_used_ = np.zeros(self.order, dtype=np.int64)
        self.absolute_ = np.zeros(self.order, dtype=bool)   # orders discounted by FALLBACK_DISCOUNT
        self.fallback_orders_ = []
        lowered, failed, reasons = [], [], []
        for order in range(1, self.order + 1):
            n = NGramCounts.count_of_counts(c.counts[order], k + 1)
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
                parts.append("k lowered to " + ", ".join(f"{kk} for {o}-grams" for o, kk in lowered))
            if failed:
                parts.append(f"an absolute discount of {FALLBACK_DISCOUNT} for {format_orders(failed)}")
            one_line_warning(f"Katz: Good-Turing discounts with k={k} are invalid ({reasons[0]}; small or "
                             f"artificial data, or a capped vocabulary); using {'; '.join(parts)}")

    def _discounted(self, order: int) -> np.ndarray:
        """Discounted counts d_c * c of every n-gram of this order."""
        counts = self.counts_.counts[order]
        if self.absolute_[order - 1]:
            return np.maximum(counts - FALLBACK_DISCOUNT, 0.0)
        ratios = np.concatenate((self.ratios_[order - 1], [1.0]))
        return ratios[np.minimum(counts, ratios.size - 1)] * counts

    def _tables(self, suffixes):
        c, V = self.counts_, len(self.vocab_)
        star = self._discounted(1)
        total = float(c.counts[1].sum())
        p = star / total + (1.0 - star.sum() / total) / V if total > 0 else np.full(star.size, 1.0 / V)
        p[c.bos_id] = 0.0
        logp, bow = [None, safe_log(p)], [None, None]
        for order in range(2, self.order + 1):
            prefix = c.prefix(order)
            star = self._discounted(order)
            counts = c.counts[order].astype(np.float64)
            context_total = c.context_total[order].astype(np.float64)
            discounted_any = np.bincount(prefix, weights=(star < counts), minlength=c.n_types(order - 1)) > 0
            # a context that lost no mass gets one extra (novel) token: divide by c(h) + 1
            denominator = np.where(discounted_any, context_total, context_total + 1.0)
            denominator = np.where(context_total > 0, denominator, 1.0)
            p_new = star / denominator[prefix]
            seen_mass = np.bincount(prefix, weights=p_new, minlength=c.n_types(order - 1))
            lower_mass = np.bincount(prefix, weights=p[suffixes[order]], minlength=c.n_types(order - 1))
            left = np.maximum(1.0 - seen_mass, 0.0)
            room = np.maximum(1.0 - lower_mass, np.finfo(np.float64).tiny)
            beta = np.where(context_total > 0, left / room, 1.0)
            p = p_new
            logp.append(safe_log(p))
            bow.append(safe_log(beta))
        return logp, bow

    def fitted_summary(self):
        return {"k": int(self.k), "k_used": [int(x) for x in self.k_used_],
                "discount_ratios": [f"absolute {FALLBACK_DISCOUNT}" if absolute else
                                    [round(float(x), 6) for x in row[1: int(kk) + 1]]
                                    for row, kk, absolute in zip(self.ratios_, self.k_used_, self.absolute_)],
                "fallback_orders": [int(x) for x in self.fallback_orders_]}
