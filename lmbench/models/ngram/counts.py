"""N-gram counts of a split in memory, and the storage interface the smoothing code reads them through.

One ``<s>`` precedes every line and no n-gram crosses a line, as in KenLM and SRILM. The same tables
on disk (:class:`~lmbench.models.ngram.ondisk.OnDiskCounts`) answer the same storage methods (windows
of whole contexts, reads, gathers, writers), so that one code serves both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def pad_lines(ids: np.ndarray, eos_id: int, bos_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Put ``<s>`` before every line of a split.

    Args:
        ids: a split (N,), lines ended by ``eos_id`` (a last line without one is a line too).
        eos_id: the end-of-line id.
        bos_id: the id to insert.

    Returns:
        (padded (N + lines,), depth) where ``depth[i]`` is how many tokens of the same line,
        ``<s>`` included, precede ``padded[i]`` (0 exactly at the ``<s>`` positions).
    """
    ids = np.asarray(ids)
    ends = np.flatnonzero(ids == eos_id)
    if ids.size and (ends.size == 0 or ends[-1] != ids.size - 1):
        ends = np.append(ends, ids.size - 1)
    lengths = np.diff(ends, prepend=-1) + 1                 # tokens of each line plus its <s>
    bos_at = np.cumsum(lengths) - lengths                   # padded position of each line's <s>
    padded = np.full(ids.size + ends.size, bos_id, dtype=np.int64)
    is_token = np.ones(padded.size, dtype=bool)
    is_token[bos_at] = False
    padded[is_token] = ids
    del is_token
    depth = np.arange(padded.size)
    depth -= np.repeat(bos_at, lengths)
    return padded, depth


def line_chunks(ids: np.ndarray, eos_id: int, chunk_tokens: int):
    """(start, stop) of consecutive slices of a split, each ending at a line end (or the split's end).

    Each slice holds about ``chunk_tokens`` tokens and at least one whole line, so slices can be
    counted or scored independently. A line longer than ``chunk_tokens`` makes its slice longer.
    """
    n, start = len(ids), 0
    while start < n:
        stop = min(start + chunk_tokens, n)
        while stop < n and ids[stop - 1] != eos_id:     # extend to the end of the line
            ends = np.flatnonzero(ids[stop:stop + chunk_tokens] == eos_id)
            stop = stop + int(ends[0]) + 1 if ends.size else min(stop + chunk_tokens, n)
        yield start, stop
        start = stop


def take(values: np.ndarray, index: np.ndarray, fill=0) -> np.ndarray:
    """``values[index]`` where ``index >= 0``, ``fill`` where it is -1 (unseen)."""
    if values.size == 0:
        return np.full(index.shape, fill, dtype=values.dtype)
    return np.where(index >= 0, values[np.maximum(index, 0)], fill)


def safe_log(p: np.ndarray) -> np.ndarray:
    """log(p) with log(0) = -inf and no warning."""
    with np.errstate(divide="ignore"):
        return np.log(p)


def count_of_counts(counts: np.ndarray, max_count: int) -> np.ndarray:
    """n_r = how many entries have count exactly r, for r = 0..max_count (index r)."""
    counts = np.asarray(counts, dtype=np.int64)
    small = counts[(counts >= 0) & (counts <= max_count)]
    return np.bincount(small, minlength=max_count + 1).astype(np.int64)


def searchsorted_in_order(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """``np.searchsorted(haystack, needles)``, faster for many unordered needles.

    Searching needles in increasing order lets each binary search start where the previous one
    ended, so it stays in cache; sorting the needles first costs less than the misses it saves.
    """
    if needles.size < 4096:
        return np.searchsorted(haystack, needles)
    order = np.argsort(needles)
    pos = np.empty(needles.size, dtype=np.intp)
    pos[order] = np.searchsorted(haystack, needles[order])
    return pos


@dataclass
class NGramQuery:
    """What a model needs to score M (context, token) pairs.

    For each order k (index 0 unused): ``grams[k]`` is the id of the k-gram that ends in the
    token, ``contexts[k]`` the id of its (k-1)-token context (``contexts[1]`` is the empty context,
    id 0); -1 where unseen in training. ``max_order`` is the highest order usable for each pair
    (lower near the start of a line).
    """

    tokens: np.ndarray
    max_order: np.ndarray
    grams: list
    contexts: list


class MemoryWriter:
    """Collects the windows of a table in memory (the in-memory twin of :class:`~lmbench.models.ngram.ondisk.arrays.ArrayWriter`)."""

    def __init__(self, dtype=np.float64):
        self.dtype = np.dtype(dtype)
        self.parts: list[np.ndarray] = []

    def append(self, values: np.ndarray) -> None:
        self.parts.append(values)

    def close(self) -> np.ndarray:
        if len(self.parts) == 1:
            return self.parts[0]
        return np.concatenate(self.parts) if self.parts else np.zeros(0, self.dtype)


class NGramCounts:
    """Counts of every k-gram, k = 1..order, of a training split, as arrays.

    A unigram's id is its token id (``bos_id`` included, as a context); a k-gram's key is
    ``prefix_id * base + last_token`` (``base = bos_id + 1``) and its id the position of its key in
    the sorted array ``keys[k]``, so the k-grams of one context are next to each other (per-context
    sums are segment sums, lookups binary searches)::

        keys[2]:  <the cat> <the dog> | <a cat> <a man> ...      ids 0 1 | 2 3 ...
                  context "the"         context "a"

    ``counts[k]`` are their counts. Derived tables (:meth:`suffix_ids`, :meth:`continuation`,
    :meth:`context_totals`) are computed when first asked for.

    Args:
        order: the highest n-gram order.
        vocab_size: V; token ids are 0..V-1 and ``bos_id = V``.
    """

    def __init__(self, order: int, vocab_size: int):
        self.order = order
        self.vocab_size = vocab_size
        self.bos_id = vocab_size
        self.base = vocab_size + 1
        self.keys: list = [None] * (order + 1)
        self.counts: list = [None] * (order + 1)
        self._derived: dict = {}

    # ------------------------------------------------------------ building

    @classmethod
    def from_ids(cls, ids: np.ndarray, order: int, vocab_size: int, eos_id: int) -> "NGramCounts":
        """Count all 1..order-grams of a split in one sort per order."""
        self = cls(order, vocab_size)
        padded, depth = pad_lines(ids, eos_id, self.bos_id)
        self.counts[1] = np.bincount(padded[depth > 0], minlength=self.base).astype(np.int64)
        self.keys[1] = np.arange(self.base, dtype=np.int64)
        self._walk(padded, depth, self._number_and_count)
        return self

    def _number_and_count(self, k: int, keys: np.ndarray) -> np.ndarray | None:
        if k == self.order:  # nothing extends the top order: its ids are not needed, only its counts
            uniq, counts = np.unique(keys, return_counts=True)
            inverse = None
        else:
            uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        self.keys[k], self.counts[k] = uniq, counts.astype(np.int64)
        return inverse

    def _walk(self, padded: np.ndarray, depth: np.ndarray, number) -> list:
        """Id of the k-gram ending at every position, for k = 1..order (-1: none or unseen).

        ``number(k, keys)`` turns the keys of all k-grams present into ids (fit: ``np.unique``;
        scoring: a lookup in the fitted keys); returning None ends the walk at order k.
        """
        ids = [None, padded]
        for k in range(2, self.order + 1):
            at = np.flatnonzero(depth >= k - 1)               # positions where a k-gram ends
            prefix = ids[k - 1][at - 1]                        # id of its first k-1 tokens
            seen = prefix >= 0
            numbered = number(k, prefix[seen] * self.base + padded[at[seen]])
            if numbered is None:
                break
            out = np.full(padded.size, -1, dtype=np.int64)
            out[at[seen]] = numbered
            ids.append(out)
        return ids

    # ------------------------------------------------------------ structure

    def prefix(self, k: int) -> np.ndarray:
        """Context id of every k-gram (k >= 2)."""
        return self.keys[k] // self.base

    def last_token(self, k: int) -> np.ndarray:
        """Last token of every k-gram."""
        return self.keys[k] % self.base

    def tokens_of(self, k: int, ids: np.ndarray) -> np.ndarray:
        """Token ids (len(ids), k) of the given k-grams, by following prefixes down to unigrams."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.empty((ids.size, k), dtype=np.int64)
        for j in range(k, 1, -1):
            out[:, j - 1] = self.keys[j][ids] % self.base
            ids = self.keys[j][ids] // self.base
        out[:, 0] = ids
        return out

    def first_token(self, k: int) -> np.ndarray:
        """First token of every k-gram."""
        first = self.keys[1]
        for j in range(2, k + 1):
            first = first[self.prefix(j)]
        return first

    def n_types(self, k: int) -> int:
        """Number of k-gram ids (for k = 1: every token id and ``<s>``; for k = 0: the empty context)."""
        return 1 if k == 0 else self.keys[k].size

    def n_entries(self) -> int:
        """Stored n-gram entries with a non-zero count, all orders."""
        return int((self.counts[1] > 0).sum()) + sum(self.keys[k].size for k in range(2, self.order + 1))

    # ------------------------------------------------------------ derived tables (computed once, when asked for)

    def suffix_ids(self, k: int):
        """Id of the (k-1)-gram suffix (first token dropped) of every k-gram, k >= 2.

        The suffix of a seen k-gram is a seen (k-1)-gram (the same occurrence, one token shorter),
        so no id is -1; a bigram's suffix is its last token.
        """
        key = ("suffix", k)
        if key not in self._derived:
            last = self.last_token(k)
            self._derived[key] = last if k == 2 else self.lookup(k - 1, self.suffix_ids(k - 1)[self.prefix(k)], last)
        return self._derived[key]

    def continuation(self, k: int):
        """N1+(. g): how many distinct tokens precede every k-gram g in the (k+1)-grams (1 <= k < order)."""
        key = ("continuation", k)
        if key not in self._derived:
            self._derived[key] = np.bincount(self.suffix_ids(k + 1), minlength=self.n_types(k)).astype(np.int64)
        return self._derived[key]

    def context_totals(self, k: int):
        """c(h) = sum over w of c(h w) for every (k-1)-gram context h of order k (k = 1: one entry, N)."""
        key = ("totals", k)
        if key not in self._derived:
            if k == 1:
                self._derived[key] = np.array([self.counts[1].sum()], dtype=np.int64)
            else:
                out = self.writer(f"totals{k}", np.int64)
                for x0, x1, c0, c1 in self.context_windows(k):
                    context = self.window_contexts(k, x0, x1, c0)
                    out.append(np.bincount(context, weights=self.read(self.counts[k], x0, x1),
                                           minlength=c1 - c0).astype(np.int64))
                self._derived[key] = out.close()
        return self._derived[key]

    def bos_start(self, k: int) -> int:
        """The first id of the k-grams that begin with ``<s>``: they come last (``<s>`` is the largest id)."""
        if k == 1:
            return self.bos_id
        key = ("bos_start", k)
        if key not in self._derived:
            self._derived[key] = self.search(k, self.bos_start(k - 1) * self.base)
        return self._derived[key]

    def drop_fit_files(self) -> None:
        """Let go of what only fitting needs (suffix ids, continuation counts); scoring keeps the rest."""
        self._derived = {key: value for key, value in self._derived.items() if key[0] in ("totals", "bos_start")}

    # ------------------------------------------------------------ storage: windows, reads, gathers, writers

    def context_windows(self, k: int):
        """(x0, x1, c0, c1): k-gram ids x0:x1 are exactly those whose context id is in c0:c1 (k >= 2).

        In memory one window holds the whole order; on disk (:class:`OnDiskCounts`) windows are bounded.
        """
        yield 0, self.n_types(k), 0, self.n_types(k - 1)

    def item_windows(self, k: int):
        """(x0, x1) of consecutive windows of k-gram ids covering order k (for streaming statistics)."""
        yield 0, self.n_types(k)

    def window_contexts(self, k: int, x0: int, x1: int, c0: int) -> np.ndarray:
        """The context of every k-gram x0:x1, numbered from context c0 (k = 1: all 0, the empty context)."""
        if k == 1:
            return np.zeros(x1 - x0, dtype=np.int64)
        context = self.read(self.keys[k], x0, x1) // self.base
        if c0:
            context -= c0
        return context

    def read(self, values, start: int, stop: int) -> np.ndarray:
        """Entries start:stop of a table of this storage."""
        return values[start:stop]

    def gather(self, values, index: np.ndarray) -> np.ndarray:
        """``values[index]`` (every index >= 0) of a table of this storage."""
        return values[index]

    def take(self, values, index: np.ndarray, fill=0) -> np.ndarray:
        """``values[index]`` where ``index >= 0``, ``fill`` where it is -1."""
        return take(values, index, fill)

    def search(self, k: int, key: int) -> int:
        """``np.searchsorted(keys[k], key)``."""
        return int(np.searchsorted(self.keys[k], key))

    def writer(self, name: str, dtype=np.float64) -> MemoryWriter:
        """Where a table is written window by window (in memory: a list of arrays; on disk: a file)."""
        return MemoryWriter(dtype)

    def table(self, values):
        """A table of probabilities or weights as the scoring walk reads it: its natural logs."""
        return safe_log(values)

    def scoring_chunk_tokens(self) -> int | None:
        """Tokens scored per slice of a split (None: the whole split at once)."""
        return None

    # ------------------------------------------------------------ lookup

    def lookup(self, k: int, prefix: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Ids of the k-grams (prefix id, token); -1 where unseen. k >= 2, prefix ids >= 0."""
        keys = self.keys[k]
        if keys.size == 0:
            return np.full(np.shape(tokens), -1, dtype=np.int64)
        query = np.asarray(prefix, dtype=np.int64) * self.base + np.asarray(tokens, dtype=np.int64)
        pos = np.minimum(searchsorted_in_order(keys, query), keys.size - 1)
        return np.where(keys[pos] == query, pos, -1)

    def _lookup_ids(self, k: int, keys: np.ndarray) -> np.ndarray:
        return self.lookup(k, keys // self.base, keys % self.base)

    def context_id(self, tokens) -> int:
        """Id of a (k-1)-token context given as token ids; -1 if never seen in training."""
        node = int(tokens[0])
        for k, token in enumerate(tokens[1:], start=2):
            node = int(self.lookup(k, np.array([node]), np.array([token]))[0])
            if node < 0:
                return -1
        return node

    # ------------------------------------------------------------ queries

    def query_split(self, ids: np.ndarray, eos_id: int) -> NGramQuery:
        """Query for every token of a split, each with its in-line context."""
        padded, depth = pad_lines(ids, eos_id, self.bos_id)
        walk = self._walk(padded, depth, self._lookup_ids)
        target = np.flatnonzero(depth > 0)
        grams = [None, padded[target]] + [walk[k][target] for k in range(2, self.order + 1)]
        contexts = [None, np.zeros(target.size, np.int64)] + [walk[k - 1][target - 1] for k in range(2, self.order + 1)]
        max_order = np.minimum(self.order, depth[target] + 1)
        return NGramQuery(padded[target], max_order, grams, contexts)

    def query_next(self, history: np.ndarray, eos_id: int) -> NGramQuery:
        """Query for every vocabulary token as the continuation of ``history``."""
        history = np.asarray(history, dtype=np.int64)
        line = history[np.flatnonzero(history == eos_id)[-1] + 1:] if (history == eos_id).any() else history
        if line.size < self.order - 1:
            line = np.concatenate(([self.bos_id], line))
        context = line[max(0, line.size - (self.order - 1)):] if self.order > 1 else line[:0]
        tokens = np.arange(self.vocab_size, dtype=np.int64)
        grams, contexts = [None, tokens], [None, np.zeros(self.vocab_size, np.int64)]
        for k in range(2, context.size + 2):
            ctx = self.context_id(context[context.size - (k - 1):])
            contexts.append(np.full(self.vocab_size, ctx, dtype=np.int64))
            grams.append(self.lookup(k, contexts[k], tokens) if ctx >= 0 else np.full(self.vocab_size, -1, np.int64))
        for _ in range(context.size + 2, self.order + 1):
            grams.append(np.full(self.vocab_size, -1, np.int64))
            contexts.append(np.full(self.vocab_size, -1, np.int64))
        return NGramQuery(tokens, np.full(self.vocab_size, context.size + 1), grams, contexts)

    # ------------------------------------------------------------ persistence

    def state_dict(self) -> dict:
        """Counts and keys by order (on disk: the files themselves, which saving streams window by window)."""
        state = {"counts.1": self.counts[1]}
        for k in range(2, self.order + 1):
            state[f"keys.{k}"], state[f"counts.{k}"] = self.keys[k], self.counts[k]
        return state

    @classmethod
    def from_state(cls, state: dict, order: int, vocab_size: int) -> "NGramCounts":
        self = cls(order, vocab_size)
        self.keys[1] = np.arange(self.base, dtype=np.int64)
        self.counts[1] = np.asarray(state["counts.1"])
        for k in range(2, order + 1):
            self.keys[k], self.counts[k] = np.asarray(state[f"keys.{k}"]), np.asarray(state[f"counts.{k}"])
        self.check_tables()
        return self

    def check_tables(self) -> None:
        """Raise ValueError unless the tables read from a checkpoint are tables this class could have built.

        Order 1: one non-negative count per token id and ``<s>``. Every higher order: strictly
        increasing keys (lookups are binary searches), each the key of a stored (k-1)-gram followed
        by a predictable token, and as many positive counts. Checked window by window, before
        anything is derived from them (a key past the tables would size an allocation by it).
        """
        counts1 = np.asarray(self.counts[1])
        if counts1.ndim != 1 or counts1.size != self.base or counts1.dtype.kind not in "iu" or (counts1 < 0).any():
            raise ValueError(f"the unigram counts must be {self.base} non-negative integers")
        for k in range(2, self.order + 1):
            keys, counts = self.keys[k], self.counts[k]
            if keys.size != counts.size or np.dtype(keys.dtype).kind not in "iu" or np.dtype(counts.dtype).kind not in "iu":
                raise ValueError(f"the {k}-gram keys and counts must be integer arrays of one length")
            limit = self.n_types(k - 1) * self.base
            previous = -1
            for x0, x1 in self.item_windows(k):
                window, window_counts = self.read(keys, x0, x1), self.read(counts, x0, x1)
                if window.size == 0:
                    continue
                if window[0] <= previous or (window.size > 1 and (np.diff(window) <= 0).any()):
                    raise ValueError(f"the {k}-gram keys are not strictly increasing (the checkpoint was altered)")
                if window[0] < 0 or window[-1] >= limit or ((window % self.base) >= self.vocab_size).any():
                    raise ValueError(f"a {k}-gram key names no stored {k - 1}-gram or no predictable token")
                if (window_counts < 1).any():
                    raise ValueError(f"the {k}-gram counts must be positive")
                previous = int(window[-1])
