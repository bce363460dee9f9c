"""Interpolated smoothing: Kneser-Ney (modified and one-discount), Witten-Bell, absolute discounting.

All three share Chen & Goodman's (1998) interpolation recursion, down to a uniform order 0::

    P(w | h) = alpha(h w) + gamma(h) * P(w | h')          P_0(w) = 1 / V

with h' = h without its first token, alpha the order's own discounted estimate (zero for n-grams
not seen in training) and gamma(h) the mass it leaves to the lower order, so that every
distribution sums to one over the V tokens of the vocabulary (every type, ``<unk>`` and the
end-of-line token; ``<s>`` is context only). A context never seen in training has gamma 1.

Counts follow lmbench's line convention (one ``<s>`` per line, no n-gram crosses a line; see
:mod:`lmbench.models.ngram.counts`), which is KenLM's and SRILM's.

nltk.lm's ``WittenBellInterpolated``, ``AbsoluteDiscountingInterpolated`` and
``KneserNeyInterpolated`` (with a fixed discount) define the highest order of a bigram model exactly
as here (tested: same alpha and gamma for every context and word). They differ elsewhere, by design:
nltk pads each line with n-1 ``<s>`` (so from trigrams up its n-grams include "<s> <s> w"), counts
``<s>`` among its unigrams, and has no uniform order 0 (its unigram level is a plain or continuation
frequency, so a word unseen in training gets probability 0); its Kneser-Ney uses one discount (0.1 by
default) at every order and continuation counts for ``<s>``-initial lower-order n-grams, where
KenLM and lmbench keep raw counts (nothing can precede ``<s>``).
"""

from __future__ import annotations

import numbers
import time

import numpy as np

from ...errors import LmbenchError
from .backoff import BackoffNGram, format_orders, interpolate, one_line_warning
from .counts import NGramCounts
from .ondisk import Budget, OnDiskCounts, Progress, estimated_in_memory_bytes, parse_memory
from .ondisk.budget import format_bytes
from .ondisk.tables import LogTable, count_of_counts, interpolated_tables

#: KenLM's ``--discount_fallback`` defaults for modified Kneser-Ney (D1, D2, D3+).
FALLBACK_MODIFIED = (0.5, 1.0, 1.5)
#: fallback for a single discount per order (the customary 0.75 of absolute discounting).
FALLBACK_ONE = 0.75


def discounted_terms(a: np.ndarray, context: np.ndarray, n_contexts: int, d) -> tuple[np.ndarray, np.ndarray]:
    """alpha and gamma of one order for counts ``a`` discounted by D(a) = d[min(a, 3) - 1] (D(0) = 0).

    alpha(h w) = (a(h w) - D(a(h w))) / sum_v a(h v);
    gamma(h) = (D1 N1(h .) + D2 N2(h .) + D3 N3+(h .)) / sum_v a(h v)   (1 where h has no continuation).

    Args:
        a: counts of the n-grams (of one order, or a window of it holding whole contexts).
        context: the context of each n-gram, numbered 0..n_contexts-1.
        n_contexts: how many contexts (gamma has one entry each).
        d: (D1, D2, D3+).
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


class InterpolatedNGram(BackoffNGram):
    """Base of interpolated models: subclasses give the per-order terms alpha and gamma.

    Subclasses that accept ``memory`` and ``storage`` (Kneser-Ney, absolute discounting, Witten-Bell)
    implement ``_term_counts`` and ``_order_terms`` and can be fitted in bounded memory: with
    ``storage="disk"``, or ``"auto"`` when :func:`~lmbench.models.ngram.ondisk.estimated_in_memory_bytes` exceeds
    ``memory``, the counts and tables live in files of a temporary folder
    (:class:`~lmbench.models.ngram.ondisk.OnDiskCounts`, see :mod:`lmbench.models.ngram.ondisk`) and every
    probability is bit-for-bit the in-memory one.
    """

    #: where fit keeps the tables: "auto", "memory" or "disk" (classes without the parameter: memory).
    storage: str = "memory"
    #: the memory budget of an on-disk fit (None: :data:`~lmbench.models.ngram.ondisk.DEFAULT_MEMORY`).
    memory = None
    #: whether the terms need N1+(. g) (Kneser-Ney's continuation counts).
    needs_continuation: bool = False
    #: where an on-disk fit makes its temporary folder (None: TMPDIR); set by the caller, e.g. under a
    #: run's output folder. Not a hyperparameter: it changes no probability.
    scratch_dir: str | None = None

    def check_params(self):
        super().check_params()
        check_storage(self.storage, self.memory)

    def fit(self, train_ids, valid_ids=None, *, vocab):
        self.check_params()
        if not self._fit_on_disk(len(train_ids)):
            return super().fit(train_ids, valid_ids, vocab=vocab)
        self.vocab_ = vocab
        self._fit_on_disk_tables(train_ids, valid_ids)
        return self

    def _fit_on_disk_tables(self, train_ids, valid_ids) -> None:
        """Count in sorted runs on disk, then estimate and build the tables in streaming passes."""
        progress, start = self._progress(), time.perf_counter()
        self.counts_ = OnDiskCounts.build(train_ids, self.order, len(self.vocab_), self.vocab_.eos_id,
                                          budget=Budget(parse_memory(self.memory)),
                                          continuation=self.needs_continuation, progress=progress,
                                          parent=self.scratch_dir)
        self._estimate(valid_ids)
        self.counts_.drop_fit_files()
        seconds = time.perf_counter() - start
        if seconds >= progress.min_seconds:
            progress.emit(f"fitted on disk in {seconds:.1f}s ({len(train_ids) / seconds / 1e6:.2f}M tokens/s): "
                          f"{self.n_params:,} n-grams, {format_bytes(self.counts_.disk_bytes())} "
                          f"in {self.counts_.folder}")

    def _fit_on_disk(self, n_tokens: int) -> bool:
        if self.storage == "auto":
            return estimated_in_memory_bytes(n_tokens, self.order) > parse_memory(self.memory)
        return self.storage == "disk"

    @property
    def on_disk(self) -> bool:
        """Whether the fitted tables are files (an on-disk fit) rather than arrays."""
        return isinstance(getattr(self, "counts_", None), OnDiskCounts)

    def _progress(self) -> Progress:
        return Progress(self.label)

    def state_dict(self) -> dict:
        """Counts and fitted values; for an on-disk fit also the scoring tables, so a loaded model scores from the file."""
        state = super().state_dict()
        if self.on_disk:
            state["logp.1"] = self.logp_[1]
            for k in range(2, self.order + 1):
                state[f"p.{k}"], state[f"gamma.{k}"] = self.logp_[k].values, self.bow_[k].values
        return state

    def load_state_dict(self, state: dict) -> None:
        """Rebuild the tables in memory, or for a checkpoint of an on-disk fit read them in place (bounded memory)."""
        if "p.2" not in state:
            return super().load_state_dict(state)
        self.check_params()
        for key in self.fitted_keys:
            setattr(self, key, state[key])
        self.counts_ = OnDiskCounts.from_state(state, self.order, len(self.vocab_), Budget(parse_memory(self.memory)),
                                               parent=self.scratch_dir)
        W = self.counts_.budget.window_items
        self.logp_ = [None, np.asarray(state["logp.1"], dtype=np.float64)]
        self.bow_ = [None, None]
        for k in range(2, self.order + 1):
            self.logp_.append(LogTable(self.counts_.file_of(state[f"p.{k}"], f"p{k}"), W))
            self.bow_.append(LogTable(self.counts_.file_of(state[f"gamma.{k}"], f"gamma{k}"), W))

    def _window_items(self) -> int:
        return self.counts_.budget.window_items if self.on_disk else 1 << 20

    def _term_counts(self, suffixes: list) -> list:
        """The counts each order's terms use, index k (in memory: arrays; on disk: files above order 1)."""
        raise NotImplementedError

    def _order_terms(self, k: int, a, context: np.ndarray, n_contexts: int) -> tuple[np.ndarray, np.ndarray]:
        """(alpha, gamma) of order k for n-grams with counts ``a`` in contexts numbered 0..n_contexts-1."""
        raise NotImplementedError

    def _terms(self, suffixes: list) -> tuple[list, list]:
        counts = self._term_counts(suffixes)
        alpha, gamma = [None], [None]
        for k in range(1, self.order + 1):
            a, g = self._order_terms(k, counts[k], self._context_of(k), self.counts_.n_types(k - 1))
            alpha.append(a)
            gamma.append(g)
        return alpha, gamma

    def _tables(self, suffixes):
        if self.on_disk:
            return interpolated_tables(self.counts_, self._term_counts(suffixes), self._order_terms, self._progress())
        alpha, gamma = self._terms(suffixes)
        return interpolate(self.counts_, alpha, gamma, suffixes)

    def interpolation_terms(self) -> tuple[list, list]:
        """The fitted model's (alpha, gamma) per order, for inspection.

        ``alpha[k]`` is indexed by k-gram id (``alpha[1]`` by token id), ``gamma[k]`` by the id of
        the (k-1)-gram context (``gamma[1][0]``: the weight of the uniform distribution).
        """
        self._check_fitted()
        if self.on_disk:
            raise LmbenchError("interpolation_terms() needs the tables in memory; fit with storage='memory'")
        return self._terms(self.counts_.all_suffix_ids())


#: values of the ``storage`` parameter.
STORAGE_CHOICES = ("auto", "memory", "disk")


def check_storage(storage, memory) -> None:
    """Raise LmbenchError for a bad ``storage`` or ``memory`` parameter."""
    if storage not in STORAGE_CHOICES:
        raise LmbenchError(f"n-gram storage must be one of {', '.join(STORAGE_CHOICES)} (auto: on disk when the "
                           f"tables would not fit in 'memory'), got {storage!r}")
    parse_memory(memory)


class _Discounted(InterpolatedNGram):
    """Shared machinery of the discounting methods (Kneser-Ney, absolute discounting)."""

    fitted_keys = ("discounts_", "discounts_estimated_", "fallback_orders_")
    method_name = ""
    modified = False

    def _term_counts(self, suffixes):
        return self._count_arrays(suffixes)

    def _count_arrays(self, suffixes: list) -> list:
        """The counts each order discounts (raw or Kneser-Ney adjusted), index k."""
        raise NotImplementedError

    def _given_discounts(self):
        """The user's discount parameter (None: estimate)."""
        raise NotImplementedError

    def _choose(self, valid_ids, suffixes):
        given = parse_discounts(self._given_discounts(), self.order, self.modified, self.method_name)
        self.discounts_estimated_ = given is None
        self.fallback_orders_ = []
        if given is not None:
            self.discounts_ = given
            return
        counts = self._count_arrays(suffixes)
        out, reasons = np.zeros((self.order, 3)), []
        for k in range(1, self.order + 1):
            n = count_of_counts(counts[k], 4, self._window_items())
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
            orders = format_orders(self.fallback_orders_)
            one_line_warning(f"{self.method_name} discounts for {orders} cannot be estimated from counts of counts "
                             f"({reasons[0]}: small or artificial data); using fallback {fallback}")

    def _order_terms(self, k, a, context, n_contexts):
        return discounted_terms(a, context, n_contexts, self.discounts_[k - 1])

    def fitted_summary(self):
        d = self.discounts_
        per_order = ([[round(float(x), 6) for x in row] for row in d] if self.modified
                     else [round(float(row[0]), 6) for row in d])
        return {"discounts": per_order, "discounts_estimated": bool(self.discounts_estimated_),
                "fallback_orders": [int(k) for k in self.fallback_orders_]}


class KneserNey(_Discounted):
    """Interpolated Kneser-Ney smoothing, modified (three discounts per order) or with one discount.

    Kneser & Ney (1995) estimate lower orders from continuation counts; Chen & Goodman (1998,
    "An Empirical Study of Smoothing Techniques for Language Modeling", sections 3.5 and 4.1.6)
    interpolate all orders and, in the modified form, use three discounts per order, D1 for n-grams
    seen once, D2 twice, D3+ three times or more::

        P(w | h) = (a(h w) - D(a(h w))) / sum_v a(h v) + gamma(h) P(w | h'),
        gamma(h) = (D1 N1(h .) + D2 N2(h .) + D3+ N3+(h .)) / sum_v a(h v)

    Counts a follow KenLM's lmplz: raw counts at the highest order and for n-grams that begin with
    ``<s>`` (nothing can precede ``<s>``), continuation counts N1+(. g) (distinct left
    extensions) otherwise. The unigram level is interpolated with the uniform distribution over the
    V predictable tokens. Discounts are estimated per order from the counts of counts of a (Chen &
    Goodman eq. 26: Y = n1/(n1 + 2 n2), D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3;
    with one discount, D = Y). Where an estimate is impossible (some n_j = 0 or Dj outside (0, j),
    typical of small corpora), that order falls back to KenLM's ``--discount_fallback`` values
    D1 = 0.5, D2 = 1.0, D3+ = 1.5 (one discount: 0.75) with a warning, instead of failing as lmplz
    does (``BadDiscountException``).

    Differences from KenLM: V excludes ``<s>`` and has no extra ``<unk>`` of its own (KenLM's
    uniform level divides by the number of its unigrams minus ``<s>``, its own ``<unk>`` included,
    and gives that ``<unk>`` the mass gamma/V even when the corpus has its own unknown-word token);
    discounts are computed in float64 (KenLM: float32).

    Args:
        order: n-gram order.
        discounts: None (estimate per order), one number for every order, or a list of ``order``
            entries, each a number or (modified) a triple (D1, D2, D3+); Dj in (0, j] (a single
            number: in (0, 1]).
        modified: three discounts per order (True) or one (False, "kn1").
        memory: the memory budget of the tables, a size like "4G" (default 4G); see ``storage``.
        storage: "auto" (default: in memory unless the tables are estimated to need more than ``memory``,
            then on disk), "memory", or "disk" (sorted runs spilled to a temporary folder and merged, as
            KenLM's lmplz; same probabilities, bounded memory; see :mod:`lmbench.models.ngram.ondisk`).
    """

    method_name = "Kneser-Ney"
    needs_continuation = True

    def __init__(self, order: int = 3, discounts=None, modified: bool = True, memory=None, storage: str = "auto"):
        super().__init__(order)
        self.discounts = discounts
        self.modified = modified
        self.memory = memory
        self.storage = storage

    def check_params(self):
        super().check_params()
        if not isinstance(self.modified, bool):
            raise LmbenchError(f"Kneser-Ney 'modified' must be true or false, got {self.modified!r}")
        parse_discounts(self.discounts, self.order, self.modified, self.method_name)

    def _given_discounts(self):
        return self.discounts

    def _count_arrays(self, suffixes):
        if self.on_disk:
            return self.counts_.adjusted_counts()
        return kn_adjusted_counts(self.counts_, suffixes)


def kn_adjusted_counts(counts: NGramCounts, suffixes: list) -> list:
    """KenLM's adjusted counts per order (index k): raw at the top order and for n-grams starting
    with ``<s>``, continuation counts N1+(. g) below."""
    out = [None]
    for k in range(1, counts.order + 1):
        if k == counts.order:
            out.append(counts.counts[k])
        else:
            continuation = counts.continuation_counts(k, suffixes[k + 1])
            out.append(np.where(counts.starts_with_bos(k), counts.counts[k], continuation))
    return out


class AbsoluteDiscount(_Discounted):
    """Interpolated absolute discounting (Ney, Essen & Kneser 1994).

    One discount D per order subtracted from every raw count, the freed mass given to the lower
    order::

        P(w | h) = (c(h w) - D) / c(h) + D N1+(h .) / c(h) * P(w | h'),     P_0 = 1 / V

    D per order defaults to Ney, Essen & Kneser's estimate n1 / (n1 + 2 n2) from the counts of
    counts of that order (fallback 0.75 with a warning where n1 or n2 is 0). It is Kneser-Ney
    with one discount, without continuation counts.

    Args:
        order: n-gram order.
        discount: None (estimate per order), a number in (0, 1] for every order, or a list of
            ``order`` numbers.
        memory: the memory budget of the tables, a size like "4G" (default 4G); see ``storage``.
        storage: "auto" (default: in memory unless the tables are estimated to need more than ``memory``,
            then on disk), "memory", or "disk" (sorted runs spilled to a temporary folder and merged, as
            KenLM's lmplz; same probabilities, bounded memory; see :mod:`lmbench.models.ngram.ondisk`).
    """

    method_name = "absolute discounting"

    def __init__(self, order: int = 3, discount=None, memory=None, storage: str = "auto"):
        super().__init__(order)
        self.discount = discount
        self.memory = memory
        self.storage = storage

    def _given_discounts(self):
        return self.discount

    def check_params(self):
        super().check_params()
        parse_discounts(self.discount, self.order, False, self.method_name)

    def _count_arrays(self, suffixes):
        return self.counts_.counts

    def fitted_summary(self):
        return {"discount": [round(float(row[0]), 6) for row in self.discounts_],
                "discount_estimated": bool(self.discounts_estimated_),
                "fallback_orders": [int(k) for k in self.fallback_orders_]}


class WittenBell(InterpolatedNGram):
    """Interpolated Witten-Bell smoothing (Witten & Bell 1991; as in Chen & Goodman 1998, sec. 2.4).

    The lower order gets the weight of "a new token type" after h::

        P(w | h) = (c(h w) + N1+(h .) P(w | h')) / (c(h) + N1+(h .)),     P_0 = 1 / V

    with raw counts at every order. Its only parameters say where the tables are kept.

    Args:
        order: n-gram order.
        memory: the memory budget of the tables, a size like "4G" (default 4G); see ``storage``.
        storage: "auto" (default: in memory unless the tables are estimated to need more than ``memory``,
            then on disk), "memory", or "disk" (sorted runs spilled to a temporary folder and merged, as
            KenLM's lmplz; same probabilities, bounded memory; see :mod:`lmbench.models.ngram.ondisk`).
    """

    def __init__(self, order: int = 3, memory=None, storage: str = "auto"):
        super().__init__(order)
        self.memory = memory
        self.storage = storage

    def _term_counts(self, suffixes):
        return self.counts_.counts

    def _order_terms(self, k, counts, context, n_contexts):
        counts = np.asarray(counts, dtype=np.float64)
        total = np.bincount(context, weights=counts, minlength=n_contexts).astype(np.float64)
        # N1+(h .): the distinct continuations of each context (order 1: the tokens seen in training)
        types = np.array([(counts > 0).sum()]) if k == 1 else np.bincount(context, minlength=n_contexts)
        types = types.astype(np.float64)
        seen = total > 0
        denominator = np.where(seen, total + types, 1.0)
        return counts / denominator[context], np.where(seen, types / denominator, 1.0)
