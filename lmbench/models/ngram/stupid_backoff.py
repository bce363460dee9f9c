"""Stupid backoff: relative frequencies with a fixed backoff factor, not a probability distribution."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ...errors import LmbenchError
from .backoff import BackoffNGram
from .mle import safe_log


class StupidBackoff(BackoffNGram):
    """Stupid backoff (Brants, Popat, Xu, Och & Dean 2007, "Large Language Models in Machine Translation").

    Scores, not probabilities::

        S(w | h) = c(h w) / c(h)            if c(h w) > 0
                 = alpha * S(w | h')        otherwise          S(w) = c(w) / N

    Every backoff step costs the factor alpha, whether or not h itself was seen. The scores of a
    context sum to more than one, so lmbench reports no perplexity for it (the runner marks its rows
    not comparable); ``logprobs`` still returns the log scores, and a token never seen in training
    scores log 0 = -inf.

    Args:
        order: n-gram order.
        alpha: the backoff factor in (0, 1] (Brants et al.: 0.4).
    """

    comparable = False
    not_comparable_reason = ("stupid backoff scores are not normalized probabilities (they sum to more than 1), "
                             "so no perplexity is reported")
    normalized = False

    def __init__(self, order: int = 3, alpha: float = 0.4):
        super().__init__(order)
        self.alpha = alpha

    def check_params(self):
        super().check_params()
        if not isinstance(self.alpha, numbers.Real) or isinstance(self.alpha, bool) or not 0 < self.alpha <= 1:
            raise LmbenchError(f"stupid backoff alpha must be a number in (0, 1], got {self.alpha!r}")

    @property
    def unseen_context_bow(self) -> float:
        return math.log(self.alpha)

    def _tables(self, suffixes):
        c = self.counts_
        total = max(int(c.counts[1].sum()), 1)
        logp, bow = [None, safe_log(c.counts[1] / total)], [None, None]
        for k in range(2, self.order + 1):
            logp.append(np.log(c.counts[k] / c.context_total[k][c.prefix(k)]))
            bow.append(np.full(c.n_types(k - 1), math.log(self.alpha)))
        return logp, bow
