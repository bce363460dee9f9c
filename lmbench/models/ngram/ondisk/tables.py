"""Backoff tables of interpolated models from on-disk counts, computed in streaming passes.

For each order k, windows of k-grams that hold whole contexts (:meth:`OnDiskCounts.context_windows`)
give the per-context sums, the order's own terms alpha (per k-gram) and gamma (per context), and the
interpolated probability::

    p_k(h w) = alpha(h w) + gamma(h) * p_(k-1)(suffix of h w)

with p_(k-1) read at the suffix ids. The per-window arithmetic is the in-memory path's, on the same
values in the same order, so every probability is bit-for-bit the in-memory one. Files hold p and
gamma; logs are taken when scoring (the same elementwise ``log``).
"""

from __future__ import annotations

import numpy as np

from ..mle import safe_log
from .arrays import ArrayFile, ArrayWriter
from .budget import Progress
from .counts import OnDiskCounts


class LogTable:
    """log of a file of probabilities or weights, read at given indices."""

    def __init__(self, values: ArrayFile, window_items: int):
        self.values, self.window_items = values, window_items

    @property
    def size(self) -> int:
        return self.values.size

    def take(self, index: np.ndarray) -> np.ndarray:
        return safe_log(self.values.take(index, self.window_items).astype(np.float64, copy=False))


def read_window(values, start: int, stop: int) -> np.ndarray:
    """Entries start:stop of an in-memory array or an :class:`ArrayFile`."""
    return values[start:stop] if isinstance(values, np.ndarray) else values.read(start, stop)


def interpolated_tables(counts: OnDiskCounts, term_counts: list, order_terms, progress: Progress | None = None):
    """(logp, bow) for :func:`lmbench.models.ngram.backoff.backoff_logprob`, as :func:`lmbench.models.ngram.backoff.interpolate`.

    Args:
        counts: the on-disk counts.
        term_counts: per order (index k), the counts the model's terms use (order 1 in memory, files above).
        order_terms: ``order_terms(k, a, context, n_contexts) -> (alpha, gamma)`` for a window of k-grams
            with counts ``a`` whose contexts are numbered 0..n_contexts-1 (``context``).
        progress: where to report each order.
    """
    progress = progress or Progress(enabled=False)
    V, W = counts.vocab_size, counts.budget.window_items
    alpha, gamma = order_terms(1, term_counts[1], np.zeros(counts.n_types(1), np.int64), 1)
    p = alpha + gamma[0] / V
    p[counts.bos_id] = 0.0
    logp, bow = [None, safe_log(p)], [None, None]
    lower = p
    for k in range(2, counts.order + 1):
        p_out = ArrayWriter(counts.folder / f"p{k}", np.float64)
        gamma_out = ArrayWriter(counts.folder / f"gamma{k}", np.float64)
        with progress.step(f"interpolating {k}-grams", counts.n_types(k), "n-grams") as step:
            for x0, x1, c0, c1 in counts.context_windows(k):
                context = counts.keys[k].read(x0, x1) // counts.base - c0
                alpha, gamma = order_terms(k, read_window(term_counts[k], x0, x1), context, c1 - c0)
                suffix = counts.suffix[k].read(x0, x1)
                below = lower[suffix] if isinstance(lower, np.ndarray) else lower.take(suffix, W)
                p_out.append(alpha + gamma[context] * below)
                gamma_out.append(gamma)
                step.advance(x1 - x0)
        lower = p_out.close()
        logp.append(LogTable(lower, W))
        bow.append(LogTable(gamma_out.close(), W))
    return logp, bow


def count_of_counts(values, max_count: int, window_items: int) -> np.ndarray:
    """n_r for r = 0..max_count of an in-memory array or an :class:`ArrayFile`."""
    if isinstance(values, ArrayFile):
        return values.count_of_counts(max_count, window_items)
    values = np.asarray(values, dtype=np.int64)
    small = values[(values >= 0) & (values <= max_count)]
    return np.bincount(small, minlength=max_count + 1).astype(np.int64)
