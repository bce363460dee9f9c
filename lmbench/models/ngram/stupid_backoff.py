"""Stupid backoff (Brants, Popat, Xu, Och & Dean 2007): relative frequencies with a fixed back-off factor."""

from __future__ import annotations

import math
import numbers

from ...errors import LmbenchError
from .counts import safe_log
from .model import NGramModel
from .tables import ConstantTable


class StupidBackoff(NGramModel):
    """Stupid backoff (Brants et al. 2007, "Large Language Models in Machine Translation"): scores, not probabilities.

    ::

        S(w | h) = c(h w) / c(h)            if c(h w) > 0
                 = alpha * S(w | h')        otherwise          S(w) = c(w) / N

    Every back-off step costs the factor alpha, whether or not h itself was seen. The scores of a
    context sum to more than one, so lmbench reports no perplexity for it (the runner marks its rows
    not comparable); ``logprobs`` still returns the log scores, and a token never seen in training
    scores log 0 = -inf.

    Args:
        order: n-gram order.
        alpha: the back-off factor in (0, 1] (Brants et al.: 0.4).
        memory, storage: where the tables are kept (see :class:`~lmbench.models.ngram.model.NGramModel`).
    """

    comparable = False
    not_comparable_reason = ("stupid backoff scores are not normalized probabilities (they sum to more than 1), "
                             "so no perplexity is reported")
    normalized = False

    def __init__(self, order: int = 3, alpha: float = 0.4, memory=None, storage: str = "auto"):
        super().__init__(order, memory, storage)
        self.alpha = alpha

    def check_params(self):
        super().check_params()
        if not isinstance(self.alpha, numbers.Real) or isinstance(self.alpha, bool) or not 0 < self.alpha <= 1:
            raise LmbenchError(f"stupid backoff alpha must be a number in (0, 1], got {self.alpha!r}")

    @property
    def unseen_context_bow(self) -> float:
        return math.log(self.alpha)

    def _build(self):
        """log c(h w) / c(h) per k-gram, window by window; every back-off weight is alpha."""
        c = self.counts_
        total = max(int(c.counts[1].sum()), 1)
        self.logp_, self.bow_ = [None, safe_log(c.counts[1] / total)], [None, None]
        for k in range(2, self.order + 1):
            out = c.writer(f"p{k}")
            for x0, x1, c0, c1 in c.context_windows(k):
                context = c.window_contexts(k, x0, x1, c0)
                counts = c.read(c.counts[k], x0, x1)
                totals = c.read(c.context_totals(k), c0, c1)
                out.append(counts / totals[context])
            self.logp_.append(c.table(out.close()))
            self.bow_.append(ConstantTable(self.unseen_context_bow, c.n_types(k - 1)))

    def _load_tables(self, state):
        super()._load_tables(state)
        self.bow_ = [None, None] + [ConstantTable(self.unseen_context_bow, self.counts_.n_types(k - 1))
                                    for k in range(2, self.order + 1)]
