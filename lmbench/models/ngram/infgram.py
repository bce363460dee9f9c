"""The infinity-gram: n-gram estimates at the longest matching context, over a suffix array.

Liu, Min, Zettlemoyer, Choi & Hajishirzi (2024), "Infini-gram: Scaling Unbounded n-gram Language
Models to a Trillion Tokens"; raw, or smoothed by Witten-Bell interpolation over every matched
context length. The index is a suffix array built by prefix doubling (Manber & Myers 1993).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...data.vocab import Vocabulary
from ...errors import LmbenchError, is_whole
from ..base import LanguageModel
from .counts import pad_lines, safe_log

#: values of ``InfiniGram(smoothing=...)``: the raw estimate of Liu et al., or Witten-Bell interpolation.
SMOOTHINGS = ("none", "wb")


# ---------------------------------------------------------------- suffix array


def suffix_array(tokens: np.ndarray, depth: int | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Suffix array by prefix doubling (Manber & Myers 1993), vectorized: one sort per doubling.

    Args:
        tokens: int array (n,), any values >= 0.
        depth: sort suffixes by their first ``depth`` tokens only (ties keep position order);
            None: completely. Sorting stops early anyway once all prefixes differ.

    Returns:
        (sa (n,) int64, ranks) where ``ranks[h][i]`` is the rank of the first 2**h tokens of suffix i
        (equal ranks: equal prefixes; a suffix shorter than 2**h ranks below its extensions).
    """
    tokens = np.asarray(tokens)
    n = tokens.size
    _, rank = np.unique(tokens, return_inverse=True)
    rank = rank.reshape(-1).astype(np.int64)
    ranks = [rank.astype(np.int32)]
    width = 1
    while n and (depth is None or width < depth) and rank.max() < n - 1:
        second = np.zeros(n, dtype=np.int64)
        second[: n - width] = rank[width:] + 1                 # 0: past the end, below every token
        _, rank = np.unique(rank * (n + 1) + second, return_inverse=True)
        rank = rank.reshape(-1).astype(np.int64)
        ranks.append(rank.astype(np.int32))
        width *= 2
    return np.argsort(rank, kind="stable"), ranks


def adjacent_lcp(sa: np.ndarray, ranks: list[np.ndarray]) -> np.ndarray:
    """Longest common prefix of each pair of adjacent suffixes, by binary lifting over the doubling ranks.

    Returns:
        int64 (n - 1,): entry j is lcp(sa[j], sa[j + 1]), exact below 2**len(ranks) - 1 (capped there).
    """
    n = sa.size
    first, second = sa[:-1].astype(np.int64), sa[1:].astype(np.int64)
    lcp = np.zeros(max(n - 1, 0), dtype=np.int64)
    for h in reversed(range(len(ranks))):
        a, b = first + lcp, second + lcp
        inside = np.flatnonzero((a < n) & (b < n))
        same = ranks[h][a[inside]] == ranks[h][b[inside]]
        lcp[inside[same]] += 1 << h
    return lcp


@dataclass
class SuffixIndex:
    """A token stream, its suffix array and its rows grouped by longest common prefix (12 bytes per token).

    The suffix array comes from prefix doubling with numpy sorts (:func:`suffix_array`), sorted only
    as deep as a query can match; the longest common prefix of adjacent suffixes from the doubling
    ranks by binary lifting (:func:`adjacent_lcp`). The rows of a string form an interval: its count
    is the interval's length, and N1+(s .) two binary searches in :meth:`boundary_rows`.
    ``stream`` ends with a sentinel id (larger than every other) that occurs nowhere else.
    ``boundary_rows(d)`` lists, in increasing order, the rows j >= 1 whose suffix shares exactly d
    tokens with the suffix of row j - 1: inside the interval of a d-token string they are the rows
    where the next token changes.

    Args:
        stream: (n,) int32.
        sa: (n,) int32, suffixes sorted by their first ``sorted_depth`` tokens.
        lcp_rows: (n - 1,) int32, rows 1..n-1 ordered by (min(lcp, top), row).
        lcp_offsets: (top + 2,) int64, where each lcp value's rows start in ``lcp_rows``.
        sorted_depth: how many leading tokens the order is exact for (n: completely sorted).
    """

    stream: np.ndarray
    sa: np.ndarray
    lcp_rows: np.ndarray
    lcp_offsets: np.ndarray
    sorted_depth: int

    ARRAYS = ("stream", "sa", "lcp_rows", "lcp_offsets")

    @classmethod
    def build(cls, stream: np.ndarray, depth: int | None) -> "SuffixIndex":
        """Index a stream, sorting suffixes by their first ``depth`` tokens (None: completely)."""
        stream = np.asarray(stream, dtype=np.int32)
        n = stream.size
        sa, ranks = suffix_array(stream, depth)
        complete = ranks[-1].max() == n - 1
        sorted_depth = n if complete else 1 << (len(ranks) - 1)
        lcp = adjacent_lcp(sa, ranks)
        top = min(sorted_depth, int(lcp.max()) + 1 if lcp.size else 0)
        clipped = np.minimum(lcp, top)
        lcp_rows = (np.argsort(clipped, kind="stable") + 1).astype(np.int32)
        offsets = np.concatenate(([0], np.cumsum(np.bincount(clipped, minlength=top + 1)))).astype(np.int64)
        return cls(stream, sa.astype(np.int32), lcp_rows, offsets, int(sorted_depth))

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in self.ARRAYS)

    def state_dict(self) -> dict:
        return {**{name: getattr(self, name) for name in self.ARRAYS}, "sorted_depth": self.sorted_depth}

    @classmethod
    def from_state(cls, state: dict, sentinel: int) -> "SuffixIndex":
        """Rebuild from :meth:`state_dict`; ValueError for arrays that cannot be a valid index."""
        arrays = {name: np.asarray(state[name]) for name in cls.ARRAYS}
        stream, sa, rows, offsets = (arrays[name] for name in cls.ARRAYS)
        n = stream.size
        if any(a.ndim != 1 or a.dtype.kind not in "iu" for a in arrays.values()):
            raise ValueError("suffix index arrays must be 1-D integer arrays")
        if n == 0 or stream[-1] != sentinel or (stream[:-1] >= sentinel).any() or (stream < 0).any():
            raise ValueError(f"the indexed stream must hold ids below {sentinel} and end with the sentinel {sentinel}")
        if sa.size != n or not _is_permutation(sa, 0, n) or (np.diff(stream[sa]) < 0).any():
            raise ValueError("the suffix array is not a sorted permutation of the stream's positions")
        if rows.size != n - 1 or not _is_permutation(rows, 1, n):
            raise ValueError("the lcp rows are not a permutation of rows 1..n-1")
        if offsets.size < 2 or offsets[0] != 0 or offsets[-1] != n - 1 or (np.diff(offsets) < 0).any():
            raise ValueError("the lcp offsets do not partition the lcp rows")
        depth = state["sorted_depth"]
        if not is_whole(depth) or depth < 1:
            raise ValueError(f"sorted_depth must be a whole number >= 1, got {depth!r}")
        return cls(stream.astype(np.int32), sa.astype(np.int32), rows.astype(np.int32),
                   offsets.astype(np.int64), int(depth))

    # ------------------------------------------------------------ interval operations

    def token_at(self, rows: np.ndarray, depth: int) -> np.ndarray:
        """The token ``depth`` places into the suffix of each row (rows whose suffix is long enough)."""
        n = self.stream.size
        return self.stream[np.minimum(self.sa[np.minimum(rows, n - 1)].astype(np.int64) + depth, n - 1)]

    def narrow(self, lo: np.ndarray, hi: np.ndarray, depth: int, token: np.ndarray):
        """Rows of each [lo, hi) whose token at offset ``depth`` is ``token``: (new_lo, new_hi).

        The rows of [lo, hi) must share their first ``depth`` tokens (then they are ordered by the
        next one, as long as depth < sorted_depth). One vectorized binary search for both bounds.
        """
        m = lo.size
        left, right = np.concatenate([lo, lo]), np.concatenate([hi, hi])
        wanted = np.concatenate([token, token + 1]).astype(np.int64)
        steps = int((hi - lo).max()).bit_length() if m else 0
        for _ in range(steps):
            active = left < right
            mid = (left + right) >> 1
            below = active & (self.token_at(mid, depth) < wanted)
            left = np.where(below, mid + 1, left)
            right = np.where(active & ~below, mid, right)
        return left[:m], left[m:]

    def dangling(self, lo: np.ndarray, hi: np.ndarray, depth: int) -> np.ndarray:
        """Does the interval hold the suffix followed by the sentinel (a context with no next token)?

        The sentinel is the largest id, so that suffix is the interval's last row.
        """
        return (hi > lo) & (self.token_at(hi - 1, depth) == self.stream[-1])

    def boundary_rows(self, depth: int) -> np.ndarray:
        """Rows whose suffix shares exactly ``depth`` tokens with the previous row's (depth < sorted_depth)."""
        if depth + 1 >= self.lcp_offsets.size:
            return self.lcp_rows[:0]
        return self.lcp_rows[self.lcp_offsets[depth]: self.lcp_offsets[depth + 1]]

    def n_next(self, lo: np.ndarray, hi: np.ndarray, depth: int) -> np.ndarray:
        """How many distinct tokens (the sentinel included) follow the ``depth``-token string of each interval."""
        rows = self.boundary_rows(depth)
        return np.searchsorted(rows, hi) - np.searchsorted(rows, lo + 1) + (hi > lo)

    def children(self, lo: np.ndarray, hi: np.ndarray, depth: int):
        """Every token that follows the ``depth``-token string of each non-empty interval, with its count.

        Returns:
            (owner, token, count), int64 arrays over (interval, next token) pairs, ordered by owner
            (index into lo) then token; the sentinel is left out.
        """
        rows = self.boundary_rows(depth)
        first, last = np.searchsorted(rows, lo + 1), np.searchsorted(rows, hi)
        per = last - first + 1                                             # children of each interval
        owner = np.repeat(np.arange(lo.size), per)
        rank = np.arange(owner.size) - np.repeat(np.cumsum(per) - per, per)  # 0 for each interval's first child
        starts = lo[owner].astype(np.int64)
        later = rank > 0
        starts[later] = rows[first[owner[later]] + rank[later] - 1]
        ends = np.empty_like(starts)
        ends[:-1] = starts[1:]
        ends[np.cumsum(per) - 1] = hi
        token = self.token_at(starts, depth).astype(np.int64)
        keep = token != self.stream[-1]
        return owner[keep], token[keep], (ends - starts)[keep]


def _is_permutation(values: np.ndarray, start: int, stop: int) -> bool:
    """Is ``values`` a permutation of start..stop-1?"""
    if values.size != stop - start or (values.size and (values.min() < start or values.max() >= stop)):
        return False
    return bool((np.bincount(values - start, minlength=stop - start) == 1).all())


def witten_bell(count, lower, context_count, n_types):
    """One level of the Witten-Bell recursion: (c(s w) + N1+(s .) P_lower(w)) / (c(s) + N1+(s .)).

    Every code path (scoring, next-token distributions, argmax) goes through this one expression, so
    they agree bit for bit.
    """
    return (count + n_types * lower) / (context_count + n_types)


# ---------------------------------------------------------------- chains


@dataclass
class Step:
    """What one chain step knows about the targets whose context suffix has ``depth`` tokens.

    Arrays are over those targets: ``target`` is the position in the padded query, [lo, hi) the
    suffix-array interval of the context suffix s, ``context_count`` c(s), ``dangling`` whether the
    interval holds the one occurrence of s with no token after it, ``count`` c(s w).
    """

    depth: int
    target: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    context_count: np.ndarray
    dangling: np.ndarray
    count: np.ndarray


class InfiniGram(LanguageModel):
    """∞-gram language model (Liu et al. 2024), raw or Witten-Bell smoothed.

    The raw estimate of a token w after a context h is c(s w) / c(s) at s, the longest suffix of h
    with c(s) > 0 (zero for a continuation never seen after s: infinite perplexity). ``smoothing="wb"``
    interpolates every matched suffix length with Witten-Bell weights (Witten & Bell 1991; Chen &
    Goodman 1998, sec. 2.4), down to uniform, a distribution over the V predictable tokens::

        P_k(w) = (c(s_k w) + N1+(s_k .) P_{k-1}(w)) / (c(s_k) + N1+(s_k .)),    P_{-1}(w) = 1 / V

    for the k-token suffixes s_k of h, k = 0 .. |s| (``Ngram-wb`` with unbounded n). By default a
    context starts at its line's ``<s>``, as in the n-gram models; ``cross_lines=True`` lets it run
    back over line ends (Liu et al. index one document stream). Every token of a split is scored.

    Args:
        smoothing: "none": the raw ∞-gram, c(s w) / c(s) at the longest context suffix s seen in
            training (zero for an unseen continuation); "wb": Witten-Bell interpolation over every
            matched suffix length, a distribution with no zeros.
        max_context: the longest context suffix used, in tokens (``<s>`` counts as one); None:
            unbounded (within the line, unless ``cross_lines``). 0 gives the unigram model.
        cross_lines: let contexts run back across line ends (the whole split is one stream);
            False: the n-gram models' convention, a context starts at its line's ``<s>``.
    """

    family = "n-gram"

    def __init__(self, smoothing: str = "wb", max_context: int | None = None, cross_lines: bool = False):
        self.smoothing = smoothing
        self.max_context = max_context
        self.cross_lines = cross_lines

    def check_params(self) -> None:
        if self.smoothing not in SMOOTHINGS:
            raise LmbenchError(f"infinity-gram smoothing must be one of {', '.join(SMOOTHINGS)} "
                               f"(none: raw estimate, wb: Witten-Bell), got {self.smoothing!r}")
        if self.max_context is not None and not (is_whole(self.max_context) and self.max_context >= 0):
            raise LmbenchError(f"infinity-gram max_context must be a whole number >= 0 or null (unbounded), "
                               f"got {self.max_context!r}")
        if not isinstance(self.cross_lines, (bool, np.bool_)):
            raise LmbenchError(f"infinity-gram cross_lines must be true or false, got {self.cross_lines!r}")

    # ------------------------------------------------------------ fitting

    def fit(self, train_ids, valid_ids=None, *, vocab: Vocabulary) -> "InfiniGram":
        self.check_params()
        ids = _checked_ids(train_ids, len(vocab), "training split")
        padded, depth = pad_lines(ids, vocab.eos_id, vocab.bos_id)
        stream = np.append(padded, vocab.bos_id + 1)             # sentinel: bos_id + 1, the largest id
        self.index_ = SuffixIndex.build(stream, self._sort_depth(int(depth.max()) + 1))
        self.vocab_ = vocab
        self._derive()
        return self

    def _sort_depth(self, longest_line: int) -> int | None:
        """How many leading tokens the suffixes must be sorted by (None: completely).

        Chains narrow at offsets below min(longest match, max_context + 1). Within lines, a string
        without a line end occurs only inside one padded training line: shorter than the longest.
        """
        cap = None if self.max_context is None else self.max_context + 1
        if self.cross_lines:
            return cap
        return longest_line if cap is None else min(longest_line, cap)

    def _derive(self) -> None:
        """Unigram counts and the suffix-array interval of every single token."""
        V = len(self.vocab_)
        per_id = np.bincount(self.index_.stream, minlength=V + 2)
        self.token_rows_ = np.concatenate(([0], np.cumsum(per_id))).astype(np.int64)
        self.unigram_counts_ = per_id[:V].astype(np.int64)
        self.n_train_tokens_ = int(self.unigram_counts_.sum())
        self.n_train_types_ = int((self.unigram_counts_ > 0).sum())

    # ------------------------------------------------------------ chains

    def _steps(self, q: np.ndarray):
        """Advance a chain from every start position of a padded query ``q``; yield one :class:`Step` per depth.

        The chain started at p holds, at step k, the suffix-array interval of q[p .. p+k-1], the
        k-token context of target p + k: it gives c(s_k) and N1+(s_k .), and narrowing it by the
        target (a vectorized binary search) gives c(s_k w) and the next step. All chains advance
        together, in increasing k, the order the Witten-Bell recursion needs.
        """
        idx, eos, bos = self.index_, self.vocab_.eos_id, self.vocab_.bos_id
        cap = np.inf if self.max_context is None else self.max_context
        starts = np.arange(q.size - 1)
        if not self.cross_lines:
            starts = starts[q[:-1] != eos]                      # a context holds no line end
        lo, hi = self.token_rows_[q[starts]], self.token_rows_[q[starts] + 1]
        depth = 1
        while starts.size and depth <= cap:
            dangling = idx.dangling(lo, hi, depth)
            occurs = hi - lo - dangling
            alive = occurs > 0
            starts, lo, hi, dangling, occurs = starts[alive], lo[alive], hi[alive], dangling[alive], occurs[alive]
            target = starts + depth
            token = q[target]
            new_lo, new_hi = idx.narrow(lo, hi, depth, token)
            scored = token != bos                               # <s> (cross_lines) is context, never a target
            yield Step(depth, target[scored], lo[scored], hi[scored], occurs[scored], dangling[scored],
                       (new_hi - new_lo)[scored])
            more = (target + 1 < q.size) & (new_hi > new_lo)
            if not self.cross_lines:
                more &= token != eos
            # a longer string could only match past the sorted depth if it were longer than every
            # training line (or max_context): it has no occurrence, so stopping here loses nothing
            if depth + 1 >= idx.sorted_depth:
                break
            starts, lo, hi = starts[more], new_lo[more], new_hi[more]
            depth += 1

    def _padded(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """(padded query, positions of its targets: every token of ``ids``)."""
        ids = _checked_ids(ids, len(self.vocab_), "split")
        padded, depth = pad_lines(ids, self.vocab_.eos_id, self.vocab_.bos_id)
        return padded, np.flatnonzero(depth > 0)

    # ------------------------------------------------------------ scoring

    def logprobs(self, ids) -> np.ndarray:
        q, targets = self._padded(ids)
        counts = self.unigram_counts_[np.minimum(q, len(self.vocab_) - 1)]
        if self.smoothing == "wb":
            prob = self._level0(counts, np.full(q.size, 1.0 / len(self.vocab_)))
            for step in self._steps(q):
                n_types = self.index_.n_next(step.lo, step.hi, step.depth) - step.dangling
                prob[step.target] = witten_bell(step.count, prob[step.target], step.context_count, n_types)
        else:
            numerator, denominator = counts.astype(np.float64), np.full(q.size, float(self.n_train_tokens_))
            for step in self._steps(q):                         # deeper steps overwrite: the longest match wins
                numerator[step.target], denominator[step.target] = step.count, step.context_count
            prob = numerator / denominator
        return safe_log(prob[targets])

    def _level0(self, counts, uniform):
        return witten_bell(counts, uniform, self.n_train_tokens_, self.n_train_types_)

    def _context(self, history) -> np.ndarray:
        """The padded context a next token would have after ``history`` (``max_context`` applied)."""
        history = _checked_ids(history, len(self.vocab_), "history")
        eos, bos = self.vocab_.eos_id, self.vocab_.bos_id
        if self.cross_lines:
            context, _ = pad_lines(history, eos, bos)
            if not history.size or history[-1] == eos:
                context = np.append(context, bos)               # the next token starts a line
        else:
            ends = np.flatnonzero(history == eos)
            context = np.concatenate(([bos], history[ends[-1] + 1:] if ends.size else history))
        if self.max_context is not None:
            context = context[context.size - min(context.size, self.max_context):]
        return context

    def _levels(self, context: np.ndarray) -> list[Step]:
        """The matched suffixes of one context, shortest first (one Step of one target each)."""
        q = np.append(context, 0)                               # a placeholder target after the context
        levels = []
        for step in self._steps(q):
            last = step.target == q.size - 1
            if last.any():
                levels.append(Step(step.depth, *(getattr(step, f)[last] for f in
                                                 ("target", "lo", "hi", "context_count", "dangling", "count"))))
        return levels

    def next_logprobs(self, history) -> np.ndarray:
        V = len(self.vocab_)
        levels = self._levels(self._context(history))
        if self.smoothing == "wb":
            prob = self._level0(self.unigram_counts_, np.full(V, 1.0 / V))
            for level in levels:
                dense, n_types = self._dense_children(level, V)
                prob = witten_bell(dense, prob, level.context_count[0], n_types)
        elif levels:
            dense, _ = self._dense_children(levels[-1], V)
            prob = dense / levels[-1].context_count[0]
        else:
            prob = self.unigram_counts_ / self.n_train_tokens_
        return safe_log(prob)

    def _dense_children(self, level: Step, V: int) -> tuple[np.ndarray, int]:
        """c(s w) for every w (V,) and N1+(s .) of a one-context level."""
        _, token, count = self.index_.children(level.lo, level.hi, level.depth)
        dense = np.zeros(V)
        dense[token] = count
        return dense, token.size

    # ------------------------------------------------------------ match statistics

    def split_extras(self, ids) -> dict:
        """:meth:`match_stats` of a scored split (the runner records it per split)."""
        return self.match_stats(ids)

    def match_stats(self, ids) -> dict:
        """How far contexts match and how often the most probable token is the right one, on a split.

        Returns:
            ``n_tokens``; ``mean_match_length``: mean over targets of the longest context suffix (in
            tokens, ``<s>`` counted) seen in training, Liu et al.'s effective n minus one;
            ``match_length_histogram``: list, entry k = how many targets matched exactly k tokens;
            ``accuracy``: fraction of targets that are the argmax of this model's next-token
            distribution (ties go to the lower id, as np.argmax).
        """
        self._check_fitted()
        q, targets = self._padded(ids)
        length = np.zeros(q.size, dtype=np.int64)
        steps = _recording(self._steps(q), length)
        guess = self._argmax_wb(q, steps) if self.smoothing == "wb" else self._argmax_raw(q, steps)
        matched = length[targets]
        return {"n_tokens": int(targets.size),
                "mean_match_length": float(matched.mean()) if targets.size else 0.0,
                "match_length_histogram": np.bincount(matched).tolist(),
                "accuracy": float((guess[targets] == q[targets]).mean()) if targets.size else 0.0}

    def _argmax_raw(self, q: np.ndarray, steps) -> np.ndarray:
        """Per position: the most frequent continuation of its longest matched suffix (lowest id on ties)."""
        depth, lo, hi = (np.zeros(q.size, dtype=np.int64) for _ in range(3))
        for step in steps:                                      # deeper steps overwrite: keep the longest match
            depth[step.target], lo[step.target], hi[step.target] = step.depth, step.lo, step.hi
        guess = np.full(q.size, int(np.argmax(self.unigram_counts_)), dtype=np.int64)
        matched = np.flatnonzero(depth > 0)
        matched = matched[np.argsort(depth[matched], kind="stable")]
        for at in np.split(matched, np.flatnonzero(np.diff(depth[matched])) + 1):
            if at.size:
                first_lo, first, node = np.unique(lo[at], return_index=True, return_inverse=True)
                owner, token, count = self.index_.children(first_lo, hi[at][first], int(depth[at[0]]))
                best_token, _ = _best_per_owner(owner, token, count.astype(np.float64), first_lo.size)
                guess[at] = best_token[node]
        return guess

    def _argmax_wb(self, q: np.ndarray, steps) -> np.ndarray:
        """Per position: the argmax of the Witten-Bell distribution at its context, exactly.

        The distribution depends only on the longest matched suffix s_L. Level by level, the argmax
        of P_k is either a token seen after s_k or the argmax of P_{k-1} (every other token gets
        N1+ P_{k-1}(w) / (c + N1+), at most what the lower argmax gets), and the tokens seen after
        s_k are among those seen after s_{k-1}: so each level only evaluates the continuations of
        its distinct contexts, reusing the previous level's values.
        """
        V = len(self.vocab_)
        prob0 = self._level0(self.unigram_counts_, np.full(V, 1.0 / V))
        best_token, best_prob = np.array([int(np.argmax(prob0))]), np.array([prob0.max()])
        guess = np.full(q.size, best_token[0], dtype=np.int64)
        node_of = np.zeros(q.size, dtype=np.int64)              # each position's context node at the last level
        keys, values = None, prob0                              # level k-1's P at (node, token)
        for step in steps:
            lo, first, node = np.unique(step.lo, return_index=True, return_inverse=True)
            parent = node_of[step.target[first]]
            context_count = step.context_count[first]
            n_types = self.index_.n_next(lo, step.hi[first], step.depth) - step.dangling[first]
            owner, token, count = self.index_.children(lo, step.hi[first], step.depth)
            if keys is None:
                lower = values[token]
            else:
                lower = values[np.searchsorted(keys, parent[owner] * V + token)]
            prob = witten_bell(count, lower, context_count[owner], n_types[owner])
            fallback = witten_bell(0, best_prob[parent], context_count, n_types)
            best_token, best_prob = _best_per_owner(np.concatenate([owner, np.arange(lo.size)]),
                                                    np.concatenate([token, best_token[parent]]),
                                                    np.concatenate([prob, fallback]), lo.size)
            keys, values = owner * V + token, prob                # sorted: by owner, then token
            node_of[step.target] = node
            guess[step.target] = best_token[node]
        return guess

    # ------------------------------------------------------------ bookkeeping

    @property
    def n_params(self) -> int:
        """Entries of the suffix array: one per training token, ``<s>`` and the sentinel."""
        return int(self.index_.sa.size)

    @property
    def index_nbytes(self) -> int:
        """Bytes held by the index (stream, suffix array, lcp grouping)."""
        return self.index_.nbytes

    def state_dict(self) -> dict:
        return self.index_.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.check_params()  # a checkpoint's parameters are input like any other
        self.index_ = SuffixIndex.from_state(state, self.vocab_.bos_id + 1)
        self._derive()


def _recording(steps, length: np.ndarray):
    """Pass chain steps through, writing each target's depth into ``length`` (the last, deepest, wins)."""
    for step in steps:
        length[step.target] = step.depth
        yield step


def _best_per_owner(owner: np.ndarray, token: np.ndarray, score: np.ndarray, n_owners: int):
    """For each owner 0..n_owners-1: the token of highest score, the lowest token on ties, and that score."""
    order = np.lexsort((token, -score, owner))
    first = order[np.searchsorted(owner[order], np.arange(n_owners))]
    return token[first], score[first]


def _checked_ids(ids, V: int, what: str) -> np.ndarray:
    """ids as int64 (N,); one-line error for ids outside 0..V-1."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
        raise LmbenchError(f"the {what} must be a 1-D array of token ids, got shape {ids.shape} of {ids.dtype}")
    ids = ids.astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= V):
        raise LmbenchError(f"the {what} holds token ids outside 0..{V - 1} (the vocabulary's); encode it with "
                           f"the vocabulary the model was fitted with")
    return ids
