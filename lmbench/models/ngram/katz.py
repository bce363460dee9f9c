"""Katz back-off with Good-Turing discounted counts (Katz 1987; Good 1953)."""

from __future__ import annotations

from .model import SmoothedNGram
from .strategies import GoodTuring


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
