"""The two n-gram model classes everything else is built on: counts in memory or on disk, and smoothing by strategy.

:class:`NGramModel` counts a training split (in memory, or in bounded memory on disk as KenLM's
lmplz does: :mod:`lmbench.models.ngram.ondisk`), scores splits in slices, and saves and loads its
state. :class:`SmoothedNGram` is the one smoothed model: a
:class:`~lmbench.models.ngram.smoothing.Smoothing` strategy's terms made into back-off tables
(:mod:`lmbench.models.ngram.tables`), interpolated or backed off. The named classes users know
(``KneserNey``, ``WittenBell``, ...) are thin subclasses with flat constructor parameters.
"""

from __future__ import annotations

import time

import numpy as np

from ...data.vocab import Vocabulary
from ...errors import LmbenchError, is_whole
from ..base import LanguageModel
from .counts import NGramCounts, NGramQuery, line_chunks
from .ondisk import Budget, OnDiskCounts, Progress, estimated_in_memory_bytes, parse_memory
from .ondisk.arrays import LogTable
from .ondisk.budget import format_bytes
from .ondisk.counts import DISK_FULL, temporary_folder_full
from .smoothing import Smoothing
from .strategies import strategy_named
from .tables import FORMS, backoff_logprob, build_tables

#: the highest n-gram order accepted. Every order is one table and one pass over the data, so an order far
#: beyond any line length only costs memory and time; longer contexts call for an unbounded-context model
#: (an infinity-gram over a suffix array), not for n-gram tables.
MAX_ORDER = 64
#: values of the ``storage`` parameter.
STORAGE_CHOICES = ("auto", "memory", "disk")


def check_order(order) -> None:
    """Raise LmbenchError unless ``order`` is a whole number in 1..MAX_ORDER."""
    if not is_whole(order) or order < 1:
        raise LmbenchError(f"n-gram order must be a whole number from 1 to {MAX_ORDER}, got {order!r}")
    if order > MAX_ORDER:
        raise LmbenchError(f"n-gram order must be at most {MAX_ORDER}, got {order}; longer contexts need an "
                           f"unbounded-context model (an infinity-gram over a suffix array), not n-gram tables")


def check_storage(storage, memory) -> None:
    """Raise LmbenchError for a bad ``storage`` or ``memory`` parameter."""
    if storage not in STORAGE_CHOICES:
        raise LmbenchError(f"n-gram storage must be one of {', '.join(STORAGE_CHOICES)} (auto: on disk when the "
                           f"tables would not fit in 'memory'), got {storage!r}")
    parse_memory(memory)


class NGramModel(LanguageModel):
    """Base of the n-gram models: count, estimate, build tables; score from them.

    ``fit`` counts the training split (:class:`NGramCounts`, or :class:`OnDiskCounts` with
    ``storage="disk"``, or ``"auto"`` when :func:`~lmbench.models.ngram.ondisk.estimated_in_memory_bytes`
    exceeds ``memory``), then calls ``_estimate(valid_ids)`` (hyperparameters) and ``_build()``
    (tables). Subclasses implement ``_logprob(query)``; both storages give bit-for-bit equal scores.

    Args:
        order: n, the number of tokens in the longest n-gram (1 = unigram; at most :data:`MAX_ORDER`).
        memory: the memory budget of an on-disk fit, a size like "4G" (default 4G); see ``storage``.
        storage: "auto" (default: in memory unless the tables are estimated to need more than
            ``memory``), "memory", or "disk" (sorted runs spilled to a temporary folder and merged, as
            KenLM's lmplz; same probabilities, bounded memory).
    """

    family = "n-gram"
    #: where an on-disk fit makes its temporary folder (None: TMPDIR); set by the caller, e.g. under a
    #: run's output folder. Not a hyperparameter: it changes no probability.
    scratch_dir: str | None = None
    #: whether counting must give N1+(. g) (Kneser-Ney's continuation counts).
    needs_continuation: bool = False
    #: whether every context's distribution sums to one (so the model can be written as ARPA).
    normalized: bool = True

    def __init__(self, order: int = 2, memory=None, storage: str = "auto"):
        self.order = order
        self.memory = memory
        self.storage = storage

    def check_params(self) -> None:
        check_order(self.order)
        check_storage(self.storage, self.memory)

    # ------------------------------------------------------------ fitting

    def fit(self, train_ids, valid_ids=None, *, vocab: Vocabulary) -> "NGramModel":
        self.check_params()
        self.vocab_ = vocab
        start = time.perf_counter()
        on_disk = self._fit_on_disk(len(train_ids))
        try:
            if on_disk:
                self.counts_ = OnDiskCounts.build(train_ids, self.order, len(vocab), vocab.eos_id,
                                                  budget=self._budget(), continuation=self.needs_continuation,
                                                  progress=self._progress(), parent=self.scratch_dir)
            else:
                self.counts_ = NGramCounts.from_ids(train_ids, self.order, len(vocab), vocab.eos_id)
            self._estimate(valid_ids)
            self._build()
        except OSError as exc:
            if not on_disk or exc.errno not in DISK_FULL:
                raise
            if isinstance(getattr(self, "counts_", None), OnDiskCounts):
                self.counts_.remove()
                del self.counts_
            hint = "; or raise --memory (memory=) so that the counts fit in memory" if self.storage == "auto" else ""
            raise temporary_folder_full(self.scratch_dir, exc, "counting n-grams on disk", hint) from None
        self.counts_.drop_fit_files()
        seconds, progress = time.perf_counter() - start, self._progress()
        if on_disk and seconds >= progress.min_seconds:
            progress.emit(f"fitted on disk in {seconds:.1f}s ({len(train_ids) / seconds / 1e6:.2f}M tokens/s): "
                          f"{self.n_params:,} n-grams, {format_bytes(self.counts_.disk_bytes())} "
                          f"in {self.counts_.folder}")
        return self

    def _fit_on_disk(self, n_tokens: int) -> bool:
        if self.storage == "auto":
            return estimated_in_memory_bytes(n_tokens, self.order) > parse_memory(self.memory)
        return self.storage == "disk"

    def _budget(self) -> Budget:
        return Budget(parse_memory(self.memory))

    def _progress(self) -> Progress:
        return Progress(self.label)

    def _estimate(self, valid_ids) -> None:
        """Choose the hyperparameters once counts exist (tuning on valid if the method does)."""

    def _build(self) -> None:
        """Build what scoring needs from the counts and the hyperparameters (deterministic)."""

    @property
    def on_disk(self) -> bool:
        """Whether the fitted tables are files (an on-disk fit) rather than arrays."""
        return isinstance(getattr(self, "counts_", None), OnDiskCounts)

    # ------------------------------------------------------------ scoring

    #: log weight of backing off from a context never seen in training (0 for normalized models).
    unseen_context_bow: float = 0.0

    def _logprob(self, query: NGramQuery) -> np.ndarray:
        """Natural-log probability of each query token given its context (default: the back-off walk
        over ``logp_`` and ``bow_``, see :func:`~lmbench.models.ngram.tables.backoff_logprob`)."""
        return backoff_logprob(query, self.logp_, self.bow_, self.unseen_context_bow)

    def queries(self, ids):
        """The queries of a split's tokens: one, or on disk one per slice of whole lines (bounded memory)."""
        eos, chunk = self.vocab_.eos_id, self.counts_.scoring_chunk_tokens()
        if chunk is None or len(ids) <= chunk:
            yield self.counts_.query_split(ids, eos)
            return
        for start, stop in line_chunks(ids, eos, chunk):      # lines are independent
            yield self.counts_.query_split(ids[start:stop], eos)

    def logprobs(self, ids) -> np.ndarray:
        parts = [self._logprob(query) for query in self.queries(ids)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def next_logprobs(self, history) -> np.ndarray:
        return self._logprob(self.counts_.query_next(history, self.vocab_.eos_id))

    def top_counts(self, query: NGramQuery) -> tuple[np.ndarray, np.ndarray]:
        """c(h w) and c(h) at the highest usable order of each query, as floats (0 where unseen)."""
        c = self.counts_
        gram, context = np.zeros(query.tokens.size), np.zeros(query.tokens.size)
        for k in range(1, self.order + 1):
            rows = np.flatnonzero(query.max_order == k)
            gram[rows] = c.take(c.counts[k], query.grams[k][rows])
            context[rows] = c.take(c.context_totals(k), query.contexts[k][rows])
        return gram, context

    @property
    def n_params(self) -> int:
        return self.counts_.n_entries()

    # ------------------------------------------------------------ persistence

    def fitted_state(self) -> dict:
        """Fitted hyperparameters saved with the counts (plain values and arrays)."""
        return {}

    def load_fitted(self, state: dict) -> None:
        """Restore what :meth:`fitted_state` saved."""

    def state_dict(self) -> dict:
        """Counts and fitted values; for an on-disk fit also its tables, so a loaded model scores from the file."""
        state = {**self.counts_.state_dict(), **self.fitted_state()}
        if self.on_disk:
            state["on_disk_"] = True
            state.update(self._table_state())
        return state

    def load_state_dict(self, state: dict) -> None:
        """Rebuild the tables in memory, or for a checkpoint of an on-disk fit read them in place (bounded memory)."""
        self.check_params()  # a checkpoint's parameters are input like any other
        self.load_fitted(state)
        if not state.get("on_disk_", "p.2" in state):
            self.counts_ = NGramCounts.from_state(state, self.order, len(self.vocab_))
            self._build()
            return
        try:
            self.counts_ = OnDiskCounts.from_state(state, self.order, len(self.vocab_), self._budget(),
                                                   parent=self.scratch_dir)
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            raise temporary_folder_full(self.scratch_dir, exc, "loading n-gram tables on disk") from None
        self._load_tables(state)

    def _table_state(self) -> dict:
        """The tables of an on-disk fit for its checkpoint: log p of the unigrams, p and the weights above."""
        if not hasattr(self, "logp_"):
            return {}
        state = {"logp.1": self.logp_[1]}
        for k in range(2, self.order + 1):
            state[f"p.{k}"] = self.logp_[k].values
            if isinstance(self.bow_[k], LogTable):
                state[f"gamma.{k}"] = self.bow_[k].values
        return state

    def _load_tables(self, state: dict) -> None:
        """The tables of an on-disk checkpoint, read where they lie (their files: the checkpoint's own)."""
        if "logp.1" not in state:
            return
        c = self.counts_
        self.logp_ = [None, np.asarray(state["logp.1"], dtype=np.float64)]
        self.bow_ = [None, None]
        for k in range(2, self.order + 1):
            self.logp_.append(c.table(c.file_of(state[f"p.{k}"], f"p{k}")))
            self.bow_.append(c.table(c.file_of(state[f"gamma.{k}"], f"gamma{k}")) if f"gamma.{k}" in state else None)


class SmoothedNGram(NGramModel):
    """An n-gram model smoothed by a strategy's per-order terms, in interpolated or back-off form.

    Interpolated (Chen & Goodman 1998, eq. 12), down to a uniform order 0 over the V predictable tokens::

        P(w | h) = alpha(h w) + gamma(h) P(w | h'),        P_0(w) = 1 / V

    Back-off: P(w | h) = alpha(h w) for an n-gram seen in training, else b(h) P(w | h') with
    b(h) = (1 - sum_w alpha(h w)) / (1 - sum_w P(w | h')) over the w seen after h, and the same
    unigram level. alpha and gamma come from a :class:`~lmbench.models.ngram.smoothing.Smoothing`
    (``smoothing``: its registered name, ``params``: its arguments); a context never seen in training
    has gamma 1 (b 1). See :mod:`lmbench.models.ngram.tables`.

    Args:
        order: n-gram order.
        smoothing: the name of a registered strategy ("kn", "abs", "wb", "interp", "katz", or one of yours).
        params: the strategy's keyword arguments (a dict, or None).
        form: "interpolated" or "backoff".
        memory, storage: where the tables are kept (see :class:`NGramModel`).
    """

    def __init__(self, order: int = 3, smoothing: str = "wb", params: dict | None = None,
                 form: str = "interpolated", memory=None, storage: str = "auto"):
        super().__init__(order, memory, storage)
        self.smoothing = smoothing
        self.params = params
        self.form = form

    def make_smoothing(self) -> Smoothing:
        """A new strategy with this model's hyperparameters (named subclasses build theirs from their parameters)."""
        if not isinstance(self.smoothing, str):
            raise LmbenchError(f"smoothing must be the name of a smoothing strategy, got {self.smoothing!r}")
        if self.params is not None and not isinstance(self.params, dict):
            raise LmbenchError(f"smoothing params must be a table of the strategy's arguments, got {self.params!r}")
        cls = strategy_named(self.smoothing)
        try:
            return cls(**(self.params or {}))
        except TypeError as exc:
            raise LmbenchError(f"bad params for smoothing {self.smoothing!r}: {exc}") from None

    def check_params(self):
        super().check_params()
        smoothing = self.make_smoothing()
        if self.form not in FORMS or self.form not in smoothing.forms:
            raise LmbenchError(f"n-gram form must be one of {', '.join(smoothing.forms)}, got {self.form!r}")
        smoothing.check(self.order)

    @property
    def needs_continuation(self) -> bool:
        return self.make_smoothing().continuation

    def _estimate(self, valid_ids):
        self.smoothing_ = self.make_smoothing()
        self.smoothing_.estimate(self.counts_, valid_ids, self.vocab_.eos_id)

    def _build(self):
        self.logp_, self.bow_ = build_tables(self.counts_, self.smoothing_, self.form, self._progress())

    def __getattr__(self, name):
        """The strategy's fitted hyperparameters read as the model's (``model.discounts_``)."""
        smoothing = self.__dict__.get("smoothing_")
        if smoothing is not None and name in smoothing.fitted_keys:
            return getattr(smoothing, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def fitted_state(self):
        return {key: getattr(self.smoothing_, key) for key in self.smoothing_.fitted_keys}

    def load_fitted(self, state):
        self.smoothing_ = self.make_smoothing()
        for key in self.smoothing_.fitted_keys:
            setattr(self.smoothing_, key, state[key])

    def fitted_summary(self):
        return self.smoothing_.fitted_summary()

    def valid_use(self) -> str:
        return self.smoothing_.valid_use()

    def interpolation_terms(self) -> tuple[list, list]:
        """The fitted model's (alpha, gamma) per order, for inspection (tables in memory only).

        ``alpha[k]`` is indexed by k-gram id (``alpha[1]`` by token id), ``gamma[k]`` by the id of
        the (k-1)-gram context (``gamma[1][0]``: the weight of the uniform distribution).
        """
        self._check_fitted()
        if self.on_disk:
            raise LmbenchError("interpolation_terms() needs the tables in memory; fit with storage='memory'")
        c, alpha, gamma = self.counts_, [None], [None]
        for k in range(1, self.order + 1):
            n = c.n_types(k)
            a, g = self.smoothing_.terms(k, self.smoothing_.order_counts(c, k, 0, n), c.window_contexts(k, 0, n, 0),
                                         c.n_types(k - 1))
            alpha.append(a)
            gamma.append(g)
        return alpha, gamma
