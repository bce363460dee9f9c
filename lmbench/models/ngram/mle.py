"""Unsmoothed and additively smoothed n-gram models: maximum likelihood, add-one (Laplace) and add-k (Lidstone).

Both score a token from the counts at the highest order its line allows (no back-off). The
vocabulary predicted over has V = len(vocab) entries: every token type, ``<unk>`` and the
end-of-line token, not ``<s>``.
"""

from __future__ import annotations

import numpy as np

from ...errors import LmbenchError, is_finite_number
from .counts import safe_log
from .model import NGramModel


class MLE(NGramModel):
    """Maximum-likelihood n-gram model: P(w | h) = c(h w) / c(h).

    An n-gram never seen in training, or a context never seen, gets probability zero; such a
    token makes the split's perplexity infinite and is counted in ``n_zero_prob``.

    Args:
        order: n-gram order.
        memory, storage: where the counts are kept (see :class:`~lmbench.models.ngram.model.NGramModel`).
    """

    def __init__(self, order: int = 2, memory=None, storage: str = "auto"):
        super().__init__(order, memory, storage)

    def _logprob(self, query):
        gram, context = self.top_counts(query)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.where(context > 0, gram / np.maximum(context, 1), 0.0)
        return safe_log(p)


class AddK(NGramModel):
    """Additive smoothing: P(w | h) = (c(h w) + k) / (c(h) + k V).

    k = 1 is Laplace's add-one rule; other k is Lidstone's (1920) generalization (Chen & Goodman 1998,
    section 2.1). V is the number of tokens the model can predict, so each distribution sums to one.

    Args:
        order: n-gram order.
        k: the pseudo-count (> 0). None: choose k on the validation split by minimizing its
            cross-entropy over k in [1e-6, 10] (bounded Brent search on log10 k).
        memory, storage: where the counts are kept (see :class:`~lmbench.models.ngram.model.NGramModel`).
    """

    def __init__(self, order: int = 2, k: float | None = 1.0, memory=None, storage: str = "auto"):
        super().__init__(order, memory, storage)
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
        from scipy.optimize import minimize_scalar  # a heavy import: only when k is tuned

        gram, context = self._valid_counts(valid_ids)
        V = len(self.vocab_)

        def cross_entropy(log10_k):
            k = 10.0 ** log10_k
            return -np.mean(np.log((gram + k) / (context + k * V)))

        best = minimize_scalar(cross_entropy, bounds=(-6, 1), method="bounded", options={"xatol": 1e-4})
        return float(10.0 ** best.x)

    def _valid_counts(self, valid_ids) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`top_counts` of every token of the validation split (on disk: slice by slice)."""
        parts = [self.top_counts(query) for query in self.queries(valid_ids)]
        if len(parts) == 1:
            return parts[0]
        return np.concatenate([g for g, _ in parts]), np.concatenate([c for _, c in parts])

    def _logprob(self, query):
        gram, context = self.top_counts(query)
        return np.log((gram + self.k_) / (context + self.k_ * len(self.vocab_)))

    def fitted_summary(self):
        return {"k": self.k_, "k_tuned_on_valid": self.k is None}

    def valid_use(self) -> str:
        return "k tuned on valid" if self.k is None else ""

    def fitted_state(self):
        return {"k_": self.k_}

    def load_fitted(self, state):
        self.k_ = float(state["k_"])
