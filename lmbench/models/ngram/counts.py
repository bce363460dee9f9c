"""Vectorized n-gram counting and lookup over integer-encoded text.

Context resets at every line: one ``<s>`` (``bos_id``) is put before each line and no n-gram
crosses a line boundary, as KenLM and SRILM do. The first word of a line is predicted from the
context ``<s>``, its second word from ``<s> w1``, and so on up to the model order.

k-grams are numbered order by order. A unigram's id is its token id (``bos_id`` included, as a
context). A k-gram's key is ``prefix_id * base + last_token``, where ``prefix_id`` is the id of its
first k-1 tokens and ``base = bos_id + 1``; its id is the position of its key in the sorted array
``keys[k]``. Sorting by key puts every k-gram that shares a context next to each other::

    keys[2]:  <the cat> <the dog> | <a cat> <a man> ...      ids 0 1 | 2 3 ...
              context "the"         context "a"

so per-context sums are segment sums, and lookups are binary searches. Nothing loops over tokens
in Python; each order costs one sort (fit) or one ``searchsorted`` (scoring).
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
    counted or scored independently: no n-gram crosses a line. A line longer than ``chunk_tokens``
    makes its slice longer.
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


def searchsorted_in_order(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """``np.searchsorted(haystack, needles)``, several times faster for many unordered needles.

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
    """What a smoothing method needs to score M (context, token) pairs.

    For each order k (index 0 unused): ``grams[k]`` is the id of the k-gram that ends in the
    token, ``contexts[k]`` the id of its (k-1)-token context (``contexts[1]`` is the empty context,
    id 0); -1 where unseen in training. ``max_order`` is the highest order usable for each pair
    (lower near the start of a line).
    """

    tokens: np.ndarray
    max_order: np.ndarray
    grams: list
    contexts: list


class NGramCounts:
    """Counts of every k-gram, k = 1..order, of a training split.

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

    # ------------------------------------------------------------ building

    @classmethod
    def from_ids(cls, ids: np.ndarray, order: int, vocab_size: int, eos_id: int) -> "NGramCounts":
        """Count all 1..order-grams of a split in one sort per order."""
        self = cls(order, vocab_size)
        padded, depth = pad_lines(ids, eos_id, self.bos_id)
        self.counts[1] = np.bincount(padded[depth > 0], minlength=self.base).astype(np.int64)
        self.keys[1] = np.arange(self.base, dtype=np.int64)
        self._walk(padded, depth, self._number_and_count)
        self._derive()
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

    def _derive(self) -> None:
        """Per-context totals: context_total[k][h] = sum over w of c(h w); index = (k-1)-gram id."""
        self.context_total = [None, np.array([self.counts[1].sum()], dtype=np.int64)]
        for k in range(2, self.order + 1):
            self.context_total.append(
                np.bincount(self.prefix(k), weights=self.counts[k], minlength=self.n_types(k - 1)).astype(np.int64))

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

    def scoring_chunk_tokens(self) -> int | None:
        """Tokens scored per slice of a split (None: the whole split at once)."""
        return None

    def n_types(self, k: int) -> int:
        """Number of k-gram ids (for k = 1: every token id and ``<s>``; for k = 0: the empty context)."""
        return 1 if k == 0 else self.keys[k].size

    def n_entries(self) -> int:
        """Stored n-gram entries with a non-zero count, all orders."""
        return int((self.counts[1] > 0).sum()) + sum(self.keys[k].size for k in range(2, self.order + 1))

    def all_suffix_ids(self) -> list:
        """Id of the (k-1)-gram suffix (first token dropped) of every k-gram, for k = 2..order.

        The suffix of a seen k-gram is always a seen (k-1)-gram (the same occurrence, one token
        shorter), so no id is -1; a bigram's suffix is its last token. Index 0 and 1: None.
        """
        out = [None, None]
        for k in range(2, self.order + 1):
            if k == 2:
                out.append(self.last_token(2))
            else:
                out.append(self.lookup(k - 1, out[k - 1][self.prefix(k)], self.last_token(k)))
        return out

    def continuation_counts(self, k: int, suffixes: np.ndarray) -> np.ndarray:
        """N1+(. g): how many distinct tokens precede every k-gram g in the (k+1)-grams, k < order.

        Args:
            k: the order of g (1 <= k < order).
            suffixes: ``all_suffix_ids()[k + 1]``.

        Returns:
            int64 array over k-gram ids (for k = 1: over every token id and ``<s>``).
        """
        return np.bincount(suffixes, minlength=self.n_types(k)).astype(np.int64)

    def distinct_continuations(self, k: int) -> np.ndarray:
        """N1+(h .): how many distinct tokens follow every (k-1)-gram context h at order k.

        Indexed by (k-1)-gram id (for k = 1: one entry, the empty context, counting the distinct
        tokens seen in training).
        """
        if k == 1:
            return np.array([int((self.counts[1] > 0).sum())], dtype=np.int64)
        return np.bincount(self.prefix(k), minlength=self.n_types(k - 1)).astype(np.int64)

    def starts_with_bos(self, k: int) -> np.ndarray:
        """Boolean mask over k-gram ids: does the k-gram begin with ``<s>``?"""
        return self.first_token(k) == self.bos_id

    @staticmethod
    def count_of_counts(counts: np.ndarray, max_count: int) -> np.ndarray:
        """n_r = how many entries have count exactly r, for r = 0..max_count (index r)."""
        counts = np.asarray(counts, dtype=np.int64)
        small = counts[(counts >= 0) & (counts <= max_count)]
        return np.bincount(small, minlength=max_count + 1).astype(np.int64)

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

    def top_order(self, query: NGramQuery, per_order: list) -> np.ndarray:
        """Pick, for each query, the value of ``per_order[k]`` at its highest usable order."""
        out = np.array(per_order[1], dtype=np.float64, copy=True)
        for k in range(2, self.order + 1):
            use = query.max_order == k
            out[use] = per_order[k][use]
        return out

    # ------------------------------------------------------------ persistence

    def state_dict(self) -> dict:
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
        self._derive()
        return self
