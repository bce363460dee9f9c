"""Linear interpolation of models of the same run, weights fitted by EM on valid.

    P(w | h) = sum_k lambda_k P_k(w | h),      lambda_k >= 0,  sum_k lambda_k = 1

Mixing a Kneser-Ney 5-gram with a recurrent network lowers perplexity below both (Mikolov et al.
2011, "Empirical Evaluation and Combination of Advanced Language Modeling Techniques"; Liu et al.
2024 do the same with the ∞-gram and a Transformer). Each component keeps its own notion of context
(n-grams restart at line ends, networks read the stream), so the mixture is a distribution over the
same targets and is scored on exactly the same tokens as its components.

The weights maximize the likelihood of the validation split by EM (Dempster, Laird & Rubin 1977):
responsibilities r_kt = lambda_k P_k(t) / P(t), then lambda_k = mean_t r_kt, in log space, until the
validation NLL per token improves by less than ``tol``. Valid is therefore not held out for a
mixture (its valid row is marked ``tuned_on_valid``); test is.

A mixture names its components by their labels in the run (``mix(5gram-kn+lstm)``); the runner fits
the components first and hands the fitted models over through :meth:`attach`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ..errors import LmbenchError, is_finite_number, is_whole
from ..data.vocab import Vocabulary
from .base import LanguageModel


class MixtureLM(LanguageModel):
    """Interpolate two or more fitted models of the same run.

    Args:
        components: labels of the models to mix (at least two, each a model of the same run).
        weights: fixed mixture weights (same length, non-negative, summing to 1); None: EM on valid.
        max_iter: EM iterations at most.
        tol: stop when the validation NLL per token (nats) improves by less than this.
    """

    family = "mixture"

    def __init__(self, components: tuple = (), weights: tuple | None = None, max_iter: int = 200,
                 tol: float = 1e-7):
        self.components = tuple(components)
        self.weights = None if weights is None else tuple(weights) if isinstance(weights, (list, tuple)) else weights
        self.max_iter = max_iter
        self.tol = tol

    # ------------------------------------------------------------ what it is made of

    def requires(self) -> list[str]:
        return list(self.components)

    def attach(self, peers: dict) -> None:
        missing = [c for c in self.components if c not in peers]
        if missing:
            raise LmbenchError(f"mixture needs the fitted models {', '.join(missing)}; list them in --models")
        scores_only = [c for c in self.components if not peers[c].comparable]
        if scores_only:
            raise LmbenchError(f"{scores_only[0]} gives scores that are not probabilities "
                               f"({peers[scores_only[0]].not_comparable_reason}); a mixture of it would not be a "
                               f"distribution either: mix only models that are (e.g. kn, wb, katz, lstm)")
        own = [c for c in self.components if getattr(peers[c], "family", "") == "pretrained"]
        if own:
            raise LmbenchError(f"{own[0]} scores its own tokens, not the run's: it cannot be mixed token by token with "
                               f"models over the run's vocabulary")
        self.models_ = [peers[c] for c in self.components]

    def check_params(self) -> None:
        if len(self.components) < 2 or len(set(self.components)) != len(self.components):
            raise LmbenchError(f"a mixture needs at least two different components, got {list(self.components)}; "
                               f"e.g. mix(5gram-kn+lstm)")
        if self.weights is not None:
            values = self.weights if isinstance(self.weights, (list, tuple)) else [self.weights]
            if not all(is_finite_number(v) for v in values):
                raise LmbenchError(f"mixture weights must be {len(self.components)} numbers summing to 1 (e.g. "
                                   f"--set 'MIX.weights=[0.5, 0.5]'), got {self.weights!r}")
            w = np.asarray(values, dtype=np.float64)
            if w.shape != (len(self.components),) or not np.isfinite(w).all() or (w < 0).any() \
                    or abs(w.sum() - 1) > 1e-9:
                raise LmbenchError(f"mixture weights must be {len(self.components)} non-negative numbers summing "
                                   f"to 1, got {values}")
        if not is_whole(self.max_iter) or self.max_iter < 1:
            raise LmbenchError(f"max_iter must be a whole number >= 1, got {self.max_iter!r}")
        if not isinstance(self.tol, (int, float)) or not np.isfinite(self.tol) or self.tol <= 0:
            raise LmbenchError(f"tol must be a number > 0, got {self.tol!r}")

    # ------------------------------------------------------------ fitting

    def fit(self, train_ids=None, valid_ids=None, *, vocab: Vocabulary) -> "MixtureLM":
        self.check_params()
        if not hasattr(self, "models_"):
            raise LmbenchError("a mixture is fitted from its components: call attach({label: model}) first")
        self.vocab_ = vocab
        if self.weights is not None:
            self.log_weights_, self.em_iterations_ = np.log(np.asarray(self.weights, dtype=np.float64)), 0
        elif valid_ids is None or not len(valid_ids):
            raise LmbenchError("mixture weights are fitted on a validation split; pass valid_ids or set weights")
        else:
            self.log_weights_, self.em_iterations_ = em_weights(self._component_logprobs(valid_ids),
                                                                self.max_iter, self.tol)
        return self

    def _component_logprobs(self, ids) -> np.ndarray:
        return np.stack([np.asarray(m.logprobs(ids), dtype=np.float64) for m in self.models_])  # (K, N)

    def valid_use(self) -> str:
        return "mixture weights by EM on valid" if self.weights is None else ""

    def fitted_summary(self) -> dict:
        weights = np.exp(self.log_weights_)
        return {"weights": {c: round(float(w), 6) for c, w in zip(self.components, weights)},
                "em_iterations": int(self.em_iterations_)}

    # ------------------------------------------------------------ scoring

    def logprobs(self, ids) -> np.ndarray:
        self._check_fitted()
        return logsumexp(self.log_weights_[:, None] + self._component_logprobs(ids), axis=0)  # (N,)

    def next_logprobs(self, history) -> np.ndarray:
        self._check_fitted()
        parts = np.stack([np.asarray(m.next_logprobs(history), dtype=np.float64) for m in self.models_])  # (K, V)
        return logsumexp(self.log_weights_[:, None] + parts, axis=0)  # (V,)

    @property
    def n_params(self) -> int:
        """The components' parameters plus one weight each."""
        return sum(m.n_params for m in self.models_) + len(self.components)

    def state_dict(self) -> dict:
        return {"log_weights_": self.log_weights_, "em_iterations_": int(self.em_iterations_)}

    def load_state_dict(self, state: dict) -> None:
        self.log_weights_ = np.asarray(state["log_weights_"], dtype=np.float64)
        self.em_iterations_ = int(state["em_iterations_"])


def em_weights(component_logprobs: np.ndarray, max_iter: int = 200, tol: float = 1e-7) -> tuple[np.ndarray, int]:
    """Log mixture weights maximizing sum_t log sum_k lambda_k P_k(t), by EM.

    Args:
        component_logprobs: (K, N) natural-log probabilities of N tokens under K models.
        max_iter: iterations at most.
        tol: stop when the mean NLL (nats per token) improves by less than this.

    Returns:
        (log weights (K,), iterations run). Tokens every component gives probability zero carry no
        information about the weights and are left out.
    """
    lp = component_logprobs[:, np.isfinite(component_logprobs).any(axis=0)]  # (K, N')
    k = lp.shape[0]
    log_w = np.full(k, -np.log(k))
    previous = np.inf
    for iteration in range(1, max_iter + 1):
        joint = log_w[:, None] + lp  # (K, N')
        total = logsumexp(joint, axis=0)  # (N',)
        nll = -float(total.mean())
        log_w = logsumexp(joint - total, axis=1) - np.log(lp.shape[1])  # log mean responsibility (K,)
        if previous - nll < tol:
            return log_w, iteration
        previous = nll
    return log_w, max_iter
