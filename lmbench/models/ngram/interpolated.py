"""Discounting and Witten-Bell smoothing: Kneser-Ney (modified and one-discount), absolute discounting, Witten-Bell.

Each method is a strategy (in :mod:`.strategies`) and a named model class here with flat parameters; both forms, interpolated (Chen & Goodman 1998) and back-off (``form="backoff"``,
as SRILM without ``-interpolate``), come from :class:`~lmbench.models.ngram.model.SmoothedNGram`.
Counts follow lmbench's line convention (one ``<s>`` per line, no n-gram crosses a line), which
is KenLM's and SRILM's.
"""

from __future__ import annotations

from .model import SmoothedNGram
from .strategies import AbsoluteDiscounting, KneserNeySmoothing, WittenBellSmoothing


class KneserNey(SmoothedNGram):
    """Kneser-Ney smoothing (Kneser & Ney 1995), modified (Chen & Goodman 1998) or with one discount.

    Interpolated, with a uniform order 0 over the V predictable tokens::

        P(w | h) = (a(h w) - D(a(h w))) / sum_v a(h v) + gamma(h) P(w | h'),
        gamma(h) = (D1 N1(h .) + D2 N2(h .) + D3+ N3+(h .)) / sum_v a(h v)

    with KenLM's adjusted counts a (raw at the top order and for ``<s>``-initial n-grams,
    continuation counts N1+(. g) below) and discounts per order from the counts of counts of a
    (Chen & Goodman eq. 26; one discount: D = n1 / (n1 + 2 n2)). Where an estimate is impossible
    (small corpora) that order uses KenLM's ``--discount_fallback`` values D1 = 0.5, D2 = 1, D3+ = 1.5
    (one discount: 0.75) with a warning. ``form="backoff"``: the same terms in back-off form
    (SRILM's ``-kndiscount`` / ``-ukndiscount`` without ``-interpolate``).

    Differences from KenLM: V excludes ``<s>`` and has no extra ``<unk>`` of its own; discounts are
    computed in float64 (KenLM: float32).

    Args:
        order: n-gram order.
        discounts: None (estimate per order), one number for every order, or a list of ``order``
            entries, each a number or (modified) a triple (D1, D2, D3+); Dj in (0, j].
        modified: three discounts per order (True) or one (False, "kn1").
        form: "interpolated" or "backoff".
        memory, storage: where the tables are kept (see :class:`~lmbench.models.ngram.model.NGramModel`).
    """

    def __init__(self, order: int = 3, discounts=None, modified: bool = True, form: str = "interpolated",
                 memory=None, storage: str = "auto"):
        super().__init__(order, form=form, memory=memory, storage=storage)
        self.discounts = discounts
        self.modified = modified

    def make_smoothing(self):
        return KneserNeySmoothing(self.discounts, self.modified)


class AbsoluteDiscount(SmoothedNGram):
    """Absolute discounting (Ney, Essen & Kneser 1994), one discount per order on raw counts.

    Interpolated::

        P(w | h) = (c(h w) - D) / c(h) + D N1+(h .) / c(h) * P(w | h'),     P_0 = 1 / V

    D per order defaults to n1 / (n1 + 2 n2) from the counts of counts of that order (fallback 0.75
    with a warning where n1 or n2 is 0). ``form="backoff"``: the same terms in back-off form.

    Args:
        order: n-gram order.
        discount: None (estimate per order), a number in (0, 1] for every order, or a list of ``order`` numbers.
        form: "interpolated" or "backoff".
        memory, storage: where the tables are kept (see :class:`~lmbench.models.ngram.model.NGramModel`).
    """

    def __init__(self, order: int = 3, discount=None, form: str = "interpolated", memory=None, storage: str = "auto"):
        super().__init__(order, form=form, memory=memory, storage=storage)
        self.discount = discount

    def make_smoothing(self):
        return AbsoluteDiscounting(self.discount)


class WittenBell(SmoothedNGram):
    """Witten-Bell smoothing (Witten & Bell 1991; Chen & Goodman 1998, sec. 2.4), raw counts at every order.

    Interpolated: the lower order gets the weight of "a new token type" after h::

        P(w | h) = (c(h w) + N1+(h .) P(w | h')) / (c(h) + N1+(h .)),     P_0 = 1 / V

    ``form="backoff"``: the same terms in back-off form (SRILM's ``-wbdiscount``).

    Args:
        order: n-gram order.
        form: "interpolated" or "backoff".
        memory, storage: where the tables are kept (see :class:`~lmbench.models.ngram.model.NGramModel`).
    """

    def __init__(self, order: int = 3, form: str = "interpolated", memory=None, storage: str = "auto"):
        super().__init__(order, form=form, memory=memory, storage=storage)

    def make_smoothing(self):
        return WittenBellSmoothing()
