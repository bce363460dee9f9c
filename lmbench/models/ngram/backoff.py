"""Backoff form shared by every smoothed n-gram model: one table per order, one lookup per order.

Kneser-Ney, Witten-Bell, absolute discounting, Jelinek-Mercer, Katz and stupid backoff all end up
in the same representation, the one an ARPA file stores::

    log p(w | h)   for every k-gram "h w" seen in training (k = 1: every token of the vocabulary)
    log b(h)       for every context h seen in training (the backoff weight)

and score a token w after context h = w1..w(m-1) by the standard backoff walk::

    log P(w | w1..w(m-1)) = log p(w | w1..w(m-1))                         if "w1..w(m-1) w" is stored
                          = log b(w1..w(m-1)) + log P(w | w2..w(m-1))     otherwise

where b of a context never seen in training is 1 (log 0). For an interpolated model, p(w | h) is
the full interpolated probability of a stored n-gram and b(h) the interpolation weight gamma(h) of
the lower order, so the walk reproduces the interpolation recursion exactly (an unseen n-gram's own
discounted term is zero). Fitting computes the tables once with per-order array operations;
scoring is one pass per order over all tokens of a split.
"""

from __future__ import annotations

import warnings

import numpy as np

from .mle import NGramModel, safe_log
from .counts import NGramCounts, NGramQuery, take


def backoff_logprob(query: NGramQuery, logp: list, bow: list, unseen_context_bow: float = 0.0) -> np.ndarray:
    """Natural-log scores of a query under backoff tables.

    Args:
        query: the (context, token) pairs, from :meth:`NGramCounts.query_split` or ``query_next``.
        logp: ``logp[k]`` = log p of every k-gram id (``logp[1]`` over token ids, ``<s>`` included); an
            array, or for k >= 2 an on-disk table with ``take(index)`` (:class:`lmbench.models.ngram.ondisk.tables.LogTable`).
        bow: ``bow[k]`` = log backoff weight of every (k-1)-gram id as a context of order k (k >= 2), likewise.
        unseen_context_bow: log weight of backing off from a context never seen (0 for normalized
            models; log alpha for stupid backoff).

    Returns:
        float64 array, one score per query.
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
    """``table[index]`` (index >= 0) for an array or an on-disk table (an object with ``take``)."""
    return table[index] if isinstance(table, np.ndarray) else table.take(index)


def gather_or_fill(table, index: np.ndarray, fill: float) -> np.ndarray:
    """``table[index]`` where ``index >= 0``, ``fill`` where it is -1 (an unseen context)."""
    if isinstance(table, np.ndarray):
        return take(table, index, fill=fill)
    out = np.full(index.shape, fill, dtype=np.float64)
    seen = index >= 0
    out[seen] = table.take(index[seen])
    return out


class BackoffNGram(NGramModel):
    """Base of n-gram models in backoff form (see the module docstring).

    Subclasses implement ``_choose(valid_ids, suffixes)`` (estimate or tune hyperparameters:
    discounts, lambdas; may warn) and ``_tables(suffixes)`` (return ``(logp, bow)`` from the counts and the chosen
    hyperparameters, deterministically), and list their fitted hyperparameters in
    ``fitted_keys``, which are saved with the counts so that a loaded model rebuilds exactly the
    same tables without re-estimating (or re-warning).
    """

    #: log backoff weight for contexts never seen in training.
    unseen_context_bow: float = 0.0
    #: whether every context's distribution sums to one (exportable to ARPA).
    normalized: bool = True
    #: names of fitted hyperparameters (attributes ending in ``_``) saved in the state dict.
    fitted_keys: tuple = ()

    def _estimate(self, valid_ids) -> None:
        suffixes = self.counts_.all_suffix_ids()
        self._choose(valid_ids, suffixes)
        self.logp_, self.bow_ = self._tables(suffixes)

    def _choose(self, valid_ids, suffixes: list) -> None:
        """Set fitted hyperparameters (default: none); ``suffixes`` is ``counts_.all_suffix_ids()``."""

    def _tables(self, suffixes: list) -> tuple[list, list]:
        """(logp, bow) backoff tables from the counts and the fitted hyperparameters."""
        raise NotImplementedError

    def _logprob(self, query: NGramQuery) -> np.ndarray:
        return backoff_logprob(query, self.logp_, self.bow_, self.unseen_context_bow)

    def state_dict(self) -> dict:
        state = self.counts_.state_dict()
        for key in self.fitted_keys:
            state[key] = getattr(self, key)
        return state

    def load_state_dict(self, state: dict) -> None:
        self.check_params()  # a checkpoint's parameters are input like any other
        for key in self.fitted_keys:
            setattr(self, key, state[key])
        self.counts_ = NGramCounts.from_state(state, self.order, len(self.vocab_))
        self.logp_, self.bow_ = self._tables(self.counts_.all_suffix_ids())

    # ------------------------------------------------------------ helpers for subclasses

    def _context_of(self, k: int) -> np.ndarray:
        """Context id of every k-gram (k = 1: all zeros, the empty context)."""
        return np.zeros(self.counts_.n_types(1), np.int64) if k == 1 else self.counts_.prefix(k)

    def _per_context(self, k: int, values: np.ndarray) -> np.ndarray:
        """Sum of a per-k-gram value over each context of order k (index: (k-1)-gram id)."""
        return np.bincount(self._context_of(k), weights=values,
                           minlength=self.counts_.n_types(k - 1)).astype(np.float64)


def interpolate(counts: NGramCounts, alpha: list, gamma: list, suffixes: list) -> tuple[list, list]:
    """Backoff tables of an interpolated model from its per-order terms.

    The interpolation recursion (Chen & Goodman 1998, eq. 12) with a uniform order 0::

        P(w | h) = alpha(h w) + gamma(h) * P(w | h')        P_0(w) = 1 / V

    Args:
        counts: the training counts (structure: prefixes, suffixes).
        alpha: ``alpha[k]`` over k-gram ids: the order's own (discounted) probability
            (``alpha[1]`` over token ids, 0 for ``<s>``).
        gamma: ``gamma[k]`` over (k-1)-gram ids: the weight of the lower order (``gamma[1]`` has one
            entry, the empty context). Contexts without continuations must have gamma 1.
        suffixes: ``counts.all_suffix_ids()``.

    Returns:
        (logp, bow) for :func:`backoff_logprob`.
    """
    V, order = counts.vocab_size, counts.order
    p = alpha[1] + gamma[1][0] / V
    p[counts.bos_id] = 0.0
    logp, bow = [None, safe_log(p)], [None, None]
    for k in range(2, order + 1):
        p = alpha[k] + gamma[k][counts.prefix(k)] * p[suffixes[k]]
        logp.append(safe_log(p))
        bow.append(safe_log(gamma[k]))
    return logp, bow


def one_line_warning(message: str) -> None:
    """Warn with one line (the CLI prints it as ``lmbench: warning: ...``)."""
    warnings.warn(message, stacklevel=3)


def format_orders(orders: list) -> str:
    return ", ".join(f"{k}-grams" for k in orders)
