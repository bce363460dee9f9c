"""Count-based n-gram models: maximum likelihood and additive (Laplace, Lidstone) smoothing.

Every model here predicts from at most ``order - 1`` previous tokens of the same line (see
:mod:`lmbench.models.ngram.counts` for the ``<s>`` convention). The vocabulary the model predicts
over has V = len(vocab) entries: every token type, ``<unk>`` and the end-of-line token, not ``<s>``.
"""

from __future__ import annotations

import math
import numbers
from abc import abstractmethod

import numpy as np

from ...errors import LmbenchError, is_finite_number, is_whole
from ...data.vocab import Vocabulary
from ..base import LanguageModel
from .counts import NGramCounts, NGramQuery, line_chunks, take


class NGramModel(LanguageModel):
    """Base for n-gram models: ``fit`` counts, subclasses turn counts into probabilities.

    Subclasses implement ``_logprob(query)`` (natural-log probabilities for an
    :class:`NGramQuery`) and may override ``_estimate(valid_ids)`` to precompute or tune.

    Args:
        order: n, the number of tokens in the longest n-gram (1 = unigram; at most :data:`MAX_ORDER`).
    """

    family = "n-gram"

    def __init__(self, order: int = 2):
        self.order = order

    def check_params(self) -> None:
        check_order(self.order)

    def fit(self, train_ids, valid_ids=None, *, vocab: Vocabulary) -> "NGramModel":
        self.check_params()
        self.vocab_ = vocab
        self.counts_ = NGramCounts.from_ids(train_ids, self.order, len(vocab), vocab.eos_id)
        self._estimate(valid_ids)
        return self

    def _estimate(self, valid_ids) -> None:
        """Precompute what scoring needs once counts exist (and tune on valid if the method does)."""

    @abstractmethod
    def _logprob(self, query: NGramQuery) -> np.ndarray:
        """Natural-log probability of each query token given its context."""

    def logprobs(self, ids) -> np.ndarray:
        eos, chunk = self.vocab_.eos_id, self.counts_.scoring_chunk_tokens()
        if chunk is None or len(ids) <= chunk:
            return self._logprob(self.counts_.query_split(ids, eos))
        # tables on disk: score slices of whole lines (lines are independent), bounding memory
        return np.concatenate([self._logprob(self.counts_.query_split(ids[start:stop], eos))
                               for start, stop in line_chunks(ids, eos, chunk)])

    def next_logprobs(self, history) -> np.ndarray:
        return self._logprob(self.counts_.query_next(history, self.vocab_.eos_id))

    @property
    def n_params(self) -> int:
        return self.counts_.n_entries()

    def state_dict(self) -> dict:
        return self.counts_.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.check_params()  # a checkpoint's parameters are input like any other
        self.counts_ = NGramCounts.from_state(state, self.order, len(self.vocab_))
        self._estimate(None)

    def top_counts(self, query: NGramQuery) -> tuple[np.ndarray, np.ndarray]:
        """c(h w) and c(h) at the highest usable order of each query (0 where unseen)."""
        c = self.counts_
        grams = [None] + [take(c.counts[k], query.grams[k]) for k in range(1, self.order + 1)]
        totals = [None] + [take(c.context_total[k], query.contexts[k]) for k in range(1, self.order + 1)]
        return c.top_order(query, grams), c.top_order(query, totals)


#: the highest n-gram order accepted. Every order is one table and one pass over the data, so an order far
#: beyond any line length only costs memory and time; contexts longer than this call for an unbounded-context
#: model (an infinity-gram over a suffix array), not for n-gram tables.
MAX_ORDER = 64


def check_order(order) -> None:
    """Raise LmbenchError unless ``order`` is a whole number in 1..MAX_ORDER."""
    if not is_whole(order) or order < 1:
        raise LmbenchError(f"n-gram order must be a whole number from 1 to {MAX_ORDER}, got {order!r}")
    if order > MAX_ORDER:
        raise LmbenchError(f"n-gram order must be at most {MAX_ORDER}, got {order}; longer contexts need an "
                           f"unbounded-context model (an infinity-gram over a suffix array), not n-gram tables")


def safe_log(p: np.ndarray) -> np.ndarray:
    """log(p) with log(0) = -inf and no warning."""
    with np.errstate(divide="ignore"):
        return np.log(p)


class MLE(NGramModel):
    """Maximum-likelihood n-gram model: P(w | h) = c(h w) / c(h).

    An n-gram never seen in training, or a context never seen, gets probability zero; such a
    token makes the split's perplexity infinite and is counted in ``n_zero_prob``.
    """

    def _logprob(self, query):
        gram, context = self.top_counts(query)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.where(context > 0, gram / np.maximum(context, 1), 0.0)
        return safe_log(p)


class AddK(NGramModel):
    """Additive smoothing: P(w | h) = (c(h w) + k) / (c(h) + k V).

    k = 1 is Laplace's add-one rule; other k is Lidstone's (1920) generalization (see Chen & Goodman,
    "An Empirical Study of Smoothing Techniques for Language Modeling", 1998, section 2.1). V is
    the number of tokens the model can predict, so each distribution sums to exactly one.

    Args:
        order: n-gram order.
        k: the pseudo-count (> 0). None: choose k on the validation split by minimizing its
            cross-entropy over k in [1e-6, 10] (bounded Brent search on log10 k).
    """

    def __init__(self, order: int = 2, k: float | None = 1.0):
        super().__init__(order)
        self.k = k

    def check_params(self):
        super().check_params()
        if self.k is not None and not (is_finite_number(self.k) and self.k > 0):
            raise LmbenchError(f"add-k pseudo-count k must be a number > 0 (finite; or null to tune it on valid), "
                               f"got {self.k!r}")

    def _estimate(self, valid_ids):
        if self.k is not None:
            self.k_ = float(self.k)
        elif valid_ids is not None:
            self.k_ = self._tune_k(valid_ids)
        elif not hasattr(self, "k_"):
            raise LmbenchError("add-k with k=None tunes k on a validation split; pass valid_ids or set k")

    def _tune_k(self, valid_ids) -> float:
        from scipy.optimize import minimize_scalar  # heavy (~0.2 s): only when k is tuned

        gram, context = self.top_counts(self.counts_.query_split(valid_ids, self.vocab_.eos_id))
        V = len(self.vocab_)

        def cross_entropy(log10_k):
            k = 10.0 ** log10_k
            return -np.mean(np.log((gram + k) / (context + k * V)))

        best = minimize_scalar(cross_entropy, bounds=(-6, 1), method="bounded", options={"xatol": 1e-4})
        return float(10.0 ** best.x)

    def _logprob(self, query):
        gram, context = self.top_counts(query)
        return np.log((gram + self.k_) / (context + self.k_ * len(self.vocab_)))

    def fitted_summary(self):
        return {"k": self.k_, "k_tuned_on_valid": self.k is None}

    def valid_use(self) -> str:
        return "k tuned on valid" if self.k is None else ""

    def state_dict(self):
        return {**super().state_dict(), "k_": self.k_}

    def load_state_dict(self, state):
        self.k_ = float(state["k_"])
        super().load_state_dict(state)
