"""Discounting and Witten-Bell smoothing: Kneser-Ney (modified and one-discount), absolute discounting, Witten-Bell.

Each method is a strategy (:class:`~lmbench.models.ngram.smoothing.Smoothing`) and a named model class
with flat parameters; both forms, interpolated (Chen & Goodman 1998) and back-off (``form="backoff"``,
as SRILM without ``-interpolate``), come from :class:`~lmbench.models.ngram.model.SmoothedNGram`.
Counts follow lmbench's line convention (one ``<s>`` per line, no n-gram crosses a line), which
is KenLM's and SRILM's.
"""

from __future__ import annotations

import numbers

import numpy as np

from ...errors import LmbenchError
from .counts import NGramCounts
from .model import SmoothedNGram
from .smoothing import Smoothing, counts_of_counts, format_orders, one_line_warning

#: KenLM's ``--discount_fallback`` defaults for modified Kneser-Ney (D1, D2, D3+).
FALLBACK_MODIFIED = (0.5, 1.0, 1.5)
#: fallback for a single discount per order (the customary 0.75 of absolute discounting).
FALLBACK_ONE = 0.75


def discounted_terms(a: np.ndarray, context: np.ndarray, n_contexts: int, d) -> tuple[np.ndarray, np.ndarray]:
    """alpha and gamma of one order for counts ``a`` discounted by D(a) = d[min(a, 3) - 1] (D(0) = 0).

    alpha(h w) = (a(h w) - D(a(h w))) / sum_v a(h v);
    gamma(h) = (D1 N1(h .) + D2 N2(h .) + D3 N3+(h .)) / sum_v a(h v)   (1 where h has no continuation).
    """
    a = np.asarray(a, dtype=np.float64)
    table = np.array([0.0, d[0], d[1], d[2]])
    discount = table[np.minimum(a, 3).astype(np.int64)]
    total = np.bincount(context, weights=a, minlength=n_contexts).astype(np.float64)
    left = np.bincount(context, weights=discount, minlength=n_contexts).astype(np.float64)
    seen = total > 0
    safe = np.where(seen, total, 1.0)
    alpha = (a - discount) / safe[context]
    gamma = np.where(seen, left / safe, 1.0)
    return alpha, gamma


def parse_discounts(discounts, order: int, modified: bool, name: str):
    """Check user discounts; return an (order, 3) array (D1, D2, D3+ per order) or None.

    Accepts None, one number (every order; with ``modified`` it is D1 = D2 = D3+), or a list of
    ``order`` entries, each a number or (with ``modified``) a triple (D1, D2, D3+).
    """
    if discounts is None:
        return None
    entries = [discounts] * order if isinstance(discounts, numbers.Real) else discounts
    if isinstance(entries, (str, bytes)) or not hasattr(entries, "__len__") or len(entries) != order:
        raise LmbenchError(f"{name} discounts must be a number or a list of {order} (one per order), got {discounts!r}")
    out = np.zeros((order, 3))
    for k, entry in enumerate(entries, start=1):
        if isinstance(entry, numbers.Real) and not isinstance(entry, bool):
            triple = (float(entry),) * 3
        elif modified and hasattr(entry, "__len__") and len(entry) == 3 and all(
                isinstance(x, numbers.Real) and not isinstance(x, bool) for x in entry):
            triple = tuple(float(x) for x in entry)
        else:
            shape = "a number or a triple (D1, D2, D3+)" if modified else "a number"
            raise LmbenchError(f"{name} discount for order {k} must be {shape}, got {entry!r}")
        for j, value in enumerate(triple, start=1):
            if not 0 < value <= j:  # D(c) <= c keeps every discounted count >= 0
                what = "discount" if triple[0] == triple[1] == triple[2] else f"discount D{j if j < 3 else '3+'}"
                raise LmbenchError(f"{name} {what} for order {k} must be in (0, {j}], got {value!r}")
        out[k - 1] = triple
    return out


def modified_discounts(n: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Chen & Goodman (1998, eq. 26) discounts from counts of counts n[1..4], or (None, why not).

    Y = n1 / (n1 + 2 n2);  D1 = 1 - 2Y n2/n1;  D2 = 2 - 3Y n3/n2;  D3+ = 3 - 4Y n4/n3.
    Valid when n1..n4 > 0 and 0 < Dj < j.
    """
    for j in range(1, 5):
        if n[j] == 0:
            return None, f"no n-grams with count {j}"
    y = n[1] / (n[1] + 2.0 * n[2])
    d = np.array([j - (j + 1) * y * n[j + 1] / n[j] for j in (1, 2, 3)])
    for j in (1, 2, 3):
        if not 0 < d[j - 1] < j:
            return None, f"D{j if j < 3 else '3+'} = {d[j - 1]:.3g} outside (0, {j})"
    return d, ""


def one_discount(n: np.ndarray) -> tuple[float | None, str]:
    """Ney, Essen & Kneser's (1994) estimate D = n1 / (n1 + 2 n2), or (None, why not)."""
    if n[1] == 0 or n[2] == 0:
        return None, f"no n-grams with count {1 if n[1] == 0 else 2}"
    return n[1] / (n[1] + 2.0 * n[2]), ""


# ---------------------------------------------------------------- strategies


class AbsoluteDiscounting(Smoothing):
    """Discounted terms: alpha(h w) = (a - D(a)) / sum a, gamma(h) = the discounted mass / sum a.

    One discount per order (``modified``: three, D1, D2, D3+ for counts 1, 2, 3+), given or estimated
    from the counts of counts of that order (Ney, Essen & Kneser 1994: D = n1 / (n1 + 2 n2); Chen &
    Goodman 1998, eq. 26 for three), falling back with a warning where the estimate is impossible.
    """

    name = "abs"
    method_name = "absolute discounting"
    fitted_keys = ("discounts_", "discounts_estimated_", "fallback_orders_")

    def __init__(self, discounts=None, modified: bool = False):
        self.discounts = discounts
        self.modified = modified

    def check(self, order):
        parse_discounts(self.discounts, order, self.modified, self.method_name)

    def estimate(self, counts, valid_ids, eos_id):
        order = counts.order
        given = parse_discounts(self.discounts, order, self.modified, self.method_name)
        self.discounts_estimated_ = given is None
        self.fallback_orders_ = []
        if given is not None:
            self.discounts_ = given
            return
        out, reasons = np.zeros((order, 3)), []
        for k in range(1, order + 1):
            n = counts_of_counts(counts, self, k, 4)
            if self.modified:
                d, why = modified_discounts(n)
            else:
                one, why = one_discount(n)
                d = None if one is None else np.full(3, one)
            if d is None:
                d = np.array(FALLBACK_MODIFIED) if self.modified else np.full(3, FALLBACK_ONE)
                self.fallback_orders_.append(k)
                reasons.append(why)
            out[k - 1] = d
        self.discounts_ = out
        if self.fallback_orders_:
            fallback = ("D1=%g, D2=%g, D3+=%g" % FALLBACK_MODIFIED) if self.modified else f"D={FALLBACK_ONE:g}"
            one_line_warning(f"{self.method_name} discounts for {format_orders(self.fallback_orders_)} cannot be "
                             f"estimated from counts of counts ({reasons[0]}: small or artificial data); "
                             f"using fallback {fallback}")

    def terms(self, k, a, context, n_contexts):
        return discounted_terms(a, context, n_contexts, self.discounts_[k - 1])

    def fitted_summary(self):
        return {"discount": [round(float(row[0]), 6) for row in self.discounts_],
                "discount_estimated": bool(self.discounts_estimated_),
                "fallback_orders": [int(k) for k in self.fallback_orders_]}


class KneserNeySmoothing(AbsoluteDiscounting):
    """Kneser & Ney's (1995) discounted terms over KenLM's adjusted counts.

    Raw counts at the highest order and for n-grams that begin with ``<s>`` (nothing can precede
    it), continuation counts N1+(. g) (distinct left extensions) below; discounted as
    :class:`AbsoluteDiscounting` (``modified``: three discounts per order, Chen & Goodman 1998).
    """

    name = "kn"
    method_name = "Kneser-Ney"
    continuation = True

    def __init__(self, discounts=None, modified: bool = True):
        super().__init__(discounts, modified)

    def check(self, order):
        if not isinstance(self.modified, bool):
            raise LmbenchError(f"Kneser-Ney 'modified' must be true or false, got {self.modified!r}")
        super().check(order)

    def order_counts(self, counts: NGramCounts, k, x0, x1):
        if k == counts.order:
            return counts.read(counts.counts[k], x0, x1)
        cut = min(max(counts.bos_start(k), x0), x1)                   # <s>-initial ids come last: raw counts
        if cut == x1:
            return counts.read(counts.continuation(k), x0, x1)
        if cut == x0:
            return counts.read(counts.counts[k], x0, x1)
        out = np.empty(x1 - x0, dtype=np.int64)
        out[:cut - x0] = counts.read(counts.continuation(k), x0, cut)
        out[cut - x0:] = counts.read(counts.counts[k], cut, x1)
        return out

    def fitted_summary(self):
        d = self.discounts_
        per_order = ([[round(float(x), 6) for x in row] for row in d] if self.modified
                     else [round(float(row[0]), 6) for row in d])
        return {"discounts": per_order, "discounts_estimated": bool(self.discounts_estimated_),
                "fallback_orders": [int(k) for k in self.fallback_orders_]}


class WittenBellSmoothing(Smoothing):
    """Witten & Bell's (1991) terms: alpha(h w) = c(h w) / (c(h) + N1+(h .)), gamma(h) = N1+(h .) / (c(h) + N1+(h .))."""

    name = "wb"

    def terms(self, k, a, context, n_contexts):
        counts = np.asarray(a, dtype=np.float64)
        total = np.bincount(context, weights=counts, minlength=n_contexts).astype(np.float64)
        # N1+(h .): the distinct continuations of each context (order 1: the tokens seen in training)
        types = np.array([(counts > 0).sum()]) if k == 1 else np.bincount(context, minlength=n_contexts)
        types = types.astype(np.float64)
        seen = total > 0
        denominator = np.where(seen, total + types, 1.0)
        return counts / denominator[context], np.where(seen, types / denominator, 1.0)


# ---------------------------------------------------------------- the named models


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
