"""Back-off tables, the form every smoothed n-gram model is stored and scored in, and the one builder that makes them.

A model holds log p(h w) for every n-gram seen in training and log b(h) for every context; a token
scores log p if its n-gram was seen, else log b(h) plus its score after the shorter context (the
ARPA format's walk). :func:`build_tables` makes the interpolated or the back-off form (Chen &
Goodman 1998, sec. 2.8; Katz 1987) from a smoothing strategy's terms, in windows of whole contexts:
counts in memory are one window per order, counts on disk many, with the same arithmetic.
"""

from __future__ import annotations

import numpy as np

from .counts import NGramCounts, NGramQuery, safe_log, take

#: the two forms of a smoothed model (see the module docstring).
FORMS = ("interpolated", "backoff")


def backoff_logprob(query: NGramQuery, logp: list, bow: list, unseen_context_bow: float = 0.0) -> np.ndarray:
    """Natural-log scores of a query under back-off tables.

    Args:
        query: the (context, token) pairs, from :meth:`NGramCounts.query_split` or ``query_next``.
        logp: ``logp[k]`` = log p of every k-gram id (``logp[1]`` over token ids, ``<s>`` included): an
            array, or an object with ``take(index)`` (a table on disk).
        bow: ``bow[k]`` = log back-off weight of every (k-1)-gram id as a context of order k (k >= 2), likewise.
        unseen_context_bow: log weight of backing off from a context never seen (0 for normalized
            models; log alpha for stupid backoff).
    """
    order = len(logp) - 1
    out = np.zeros(query.tokens.size, dtype=np.float64)
    pending = np.ones(query.tokens.size, dtype=bool)
    for k in range(order, 1, -1):
        rows = np.flatnonzero(pending & (query.max_order >= k))
        if rows.size == 0:
            continue
        gram = query.grams[k][rows]
        hit = gram >= 0
        out[rows[hit]] += gather(logp[k], gram[hit])
        pending[rows[hit]] = False
        miss = rows[~hit]
        out[miss] += gather_or_fill(bow[k], query.contexts[k][miss], unseen_context_bow)
    rows = np.flatnonzero(pending)
    out[rows] += logp[1][query.tokens[rows]]
    return out


def gather(table, index: np.ndarray) -> np.ndarray:
    """``table[index]`` (index >= 0) for an array or a table object (with ``take``)."""
    return table[index] if isinstance(table, np.ndarray) else table.take(index)


def gather_or_fill(table, index: np.ndarray, fill: float) -> np.ndarray:
    """``table[index]`` where ``index >= 0``, ``fill`` where it is -1 (an unseen context)."""
    if isinstance(table, np.ndarray):
        return take(table, index, fill=fill)
    out = np.full(index.shape, fill, dtype=np.float64)
    seen = index >= 0
    out[seen] = table.take(index[seen])
    return out


class ConstantTable:
    """A table holding one value for every entry (stupid backoff's log alpha), stored as that value."""

    def __init__(self, value: float, size: int):
        self.value, self.size = value, size

    def take(self, index: np.ndarray) -> np.ndarray:
        return np.full(np.shape(index), self.value, dtype=np.float64)


def unigram_level(counts: NGramCounts, smoothing) -> np.ndarray:
    """P(w) = alpha(w) + gamma() / V over every token id (``<s>``: 0)."""
    ids = (0, counts.base)
    alpha, gamma = smoothing.terms(1, smoothing.order_counts(counts, 1, *ids), counts.window_contexts(1, *ids, 0), 1)
    p = alpha + gamma[0] / counts.vocab_size
    p[counts.bos_id] = 0.0
    return p


def build_tables(counts: NGramCounts, smoothing, form: str = "interpolated", progress=None) -> tuple[list, list]:
    """(logp, bow) tables for :func:`backoff_logprob` from a strategy's terms, in either form.

    Args:
        counts: the training counts, in memory or on disk (their storage holds the tables too).
        smoothing: a fitted :class:`~lmbench.models.ngram.smoothing.Smoothing`.
        form: "interpolated" or "backoff".
        progress: a :class:`~lmbench.models.ngram.ondisk.Progress` to report each order to, or None.
    """
    p = unigram_level(counts, smoothing)
    logp, bow, lower = [None, safe_log(p)], [None, None], p
    for k in range(2, counts.order + 1):
        p_out, weight_out = counts.writer(f"p{k}"), counts.writer(f"gamma{k}")
        for x0, x1, c0, c1 in _windows(counts, k, progress, form):
            context = counts.window_contexts(k, x0, x1, c0)
            alpha, gamma = smoothing.terms(k, smoothing.order_counts(counts, k, x0, x1), context, c1 - c0)
            below = counts.gather(lower, counts.read(counts.suffix_ids(k), x0, x1))
            if form == "interpolated":
                p_out.append(alpha + gamma[context] * below)
                weight_out.append(gamma)
            else:
                p_out.append(alpha)
                weight_out.append(backoff_weights(alpha, below, context, c1 - c0))
        lower = p_out.close()
        logp.append(counts.table(lower))
        bow.append(counts.table(weight_out.close()))
    return logp, bow


def backoff_weights(p: np.ndarray, lower: np.ndarray, context: np.ndarray, n_contexts: int) -> np.ndarray:
    """b(h) = (1 - sum_w p(h w)) / (1 - sum_w P(w | h')) over the w seen after each context h.

    A context without continuations gets 1 (both sums are 0). The numerator is kept >= 0 and the
    denominator > 0 against rounding.
    """
    seen_mass = np.bincount(context, weights=p, minlength=n_contexts)
    lower_mass = np.bincount(context, weights=lower, minlength=n_contexts)
    left = np.maximum(1.0 - seen_mass, 0.0)
    room = np.maximum(1.0 - lower_mass, np.finfo(np.float64).tiny)
    return left / room


def _windows(counts: NGramCounts, k: int, progress, form: str):
    """The context windows of order k, reported to ``progress`` as a step."""
    if progress is None:
        yield from counts.context_windows(k)
        return
    verb = "interpolating" if form == "interpolated" else "backing off"
    with progress.step(f"{verb} {k}-grams", counts.n_types(k), "n-grams") as step:
        for window in counts.context_windows(k):
            yield window
            step.advance(window[1] - window[0])
