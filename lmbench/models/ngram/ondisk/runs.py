"""External group-by: sorted runs of (key, count[, payload]) spilled to disk and merged window by window.

The sort-merge step of KenLM's pipeline (Heafield et al. 2013, "Scalable Modified Kneser-Ney Language
Model Estimation"), in numpy; see :class:`SortedRuns`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from .arrays import ArrayFile, write_array


class SortedRuns:
    """Runs of (sorted unique int64 keys, int64 counts, optional int64 payload) in ``folder``, and their merge.

    Each run is a chunk of the input, sorted and reduced in memory. :meth:`merged` cuts the key space
    at splitters sampled from every run, so that each window holds a bounded number of entries, sorts
    the runs' slices of a window together and sums the counts of equal keys; a payload (a value equal
    keys share, such as the id of an n-gram's suffix) is taken from the first occurrence.

    Args:
        folder: where run files go (removed by :meth:`remove`).
        name: prefix of the run files.
        window_items: the most entries a merge window holds in memory.
        payload: whether runs carry a payload column.
    """

    def __init__(self, folder: Path, name: str, window_items: int, payload: bool = False):
        self.folder, self.name, self.window_items, self.payload = Path(folder), name, window_items, payload
        self.runs: list[tuple[ArrayFile, ...]] = []
        #: run entries read so far by :meth:`merged` (for progress).
        self.consumed = 0

    @property
    def n_entries(self) -> int:
        return sum(run[0].size for run in self.runs)

    def add_sorted(self, keys: np.ndarray, counts: np.ndarray, payload: np.ndarray | None = None) -> None:
        """Spill one run; ``keys`` strictly increasing."""
        i = len(self.runs)
        files = [write_array(self.folder / f"{self.name}.{i}.keys", np.asarray(keys, np.int64)),
                 write_array(self.folder / f"{self.name}.{i}.counts", np.asarray(counts, np.int64))]
        if self.payload:
            files.append(write_array(self.folder / f"{self.name}.{i}.payload", np.asarray(payload, np.int64)))
        self.runs.append(tuple(files))

    def add(self, keys: np.ndarray, counts: np.ndarray | None = None) -> None:
        """Sort and reduce a chunk of keys (counts default to 1 each), then spill it as a run."""
        keys = np.asarray(keys, np.int64)
        if counts is None:
            uniq, summed = np.unique(keys, return_counts=True)
        else:
            uniq, summed = reduce_sorted(*_sorted_by_key(keys, np.asarray(counts, np.int64)))
        if uniq.size:
            self.add_sorted(uniq, summed)

    def merged(self) -> Iterator[tuple[np.ndarray, ...]]:
        """(keys, counts[, payload]) windows in increasing key order; keys unique across all windows.

        A window holds at most ``window_items`` entries when ``window_items >= 4 * len(runs)``.
        """
        self.consumed = 0
        if not self.runs:
            return
        if len(self.runs) == 1:
            for start in range(0, self.runs[0][0].size, self.window_items):
                window = tuple(f.read(start, start + self.window_items) for f in self.runs[0])
                self.consumed += window[0].size
                yield window
            return
        cursor = [0] * len(self.runs)
        for split in self._splitters() + [None]:
            pieces = []
            for r, run in enumerate(self.runs):
                stop = run[0].size if split is None else _searchsorted_file(run[0], split)
                if stop > cursor[r]:
                    pieces.append(tuple(f.read(cursor[r], stop) for f in run))
                    self.consumed += stop - cursor[r]
                cursor[r] = stop
            if pieces:
                yield merge_pieces(pieces)     # empties ``pieces``: its arrays are freed once concatenated

    def _splitters(self) -> list[int]:
        """Keys that cut the merge into windows of at most about ``window_items`` entries.

        ``below[j]``, the number of entries under candidate j estimated from the samples, is off by less
        than ``n_runs * stride`` (a quarter window), and consecutive candidates differ by at most that.
        """
        n_runs = len(self.runs)
        stride = max(1, self.window_items // (4 * n_runs))
        samples = [_strided(run[0], stride, self.window_items) for run in self.runs]
        candidates = np.unique(np.concatenate(samples))
        below = sum(np.searchsorted(s, candidates, "left") for s in samples) * stride
        room = max(1, self.window_items // 2)
        splitters, previous = [], -1
        while previous < candidates.size - 1:
            last = int(below[previous]) if previous >= 0 else 0
            j = max(int(np.searchsorted(below, last + room, "right")) - 1, previous + 1)
            splitters.append(int(candidates[j]))
            previous = j
        return splitters

    def remove(self) -> None:
        for run in self.runs:
            for f in run:
                f.remove()
        self.runs = []


def _sorted_by_key(keys: np.ndarray, *columns: np.ndarray) -> tuple[np.ndarray, ...]:
    order = np.argsort(keys, kind="stable")
    return (keys[order],) + tuple(c[order] for c in columns)


def reduce_sorted(keys: np.ndarray, counts: np.ndarray, payload: np.ndarray | None = None) -> tuple:
    """Unique keys of a sorted array with their summed counts (and the payload of each first occurrence)."""
    if keys.size == 0:
        return (keys, counts) if payload is None else (keys, counts, payload)
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    out = (keys[starts], np.add.reduceat(counts, starts))
    return out if payload is None else out + (payload[starts],)


def merge_pieces(pieces: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Merge sorted unique pieces (the list is emptied): one stable sort of their concatenation, counts summed."""
    n_pieces, n_columns = len(pieces), len(pieces[0])
    columns = [np.concatenate([p[c] for p in pieces]) for c in range(n_columns)]
    pieces.clear()
    if n_pieces > 1:
        columns = list(_sorted_by_key(*columns))
    return reduce_sorted(*columns)


def _strided(keys: ArrayFile, stride: int, window_items: int) -> np.ndarray:
    """keys[::stride], read window by window."""
    step = max(stride, (window_items // stride) * stride)
    parts = []
    for start in range(0, keys.size, step):
        view = keys.window(start, start + step)
        parts.append(np.array(view[::stride]))
        del view
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def _searchsorted_file(keys: ArrayFile, value: int) -> int:
    """np.searchsorted(keys, value) on a sorted file (one binary search; touches a few pages)."""
    view = keys.window(0, keys.size)
    pos = int(np.searchsorted(view, value))
    del view
    return pos
