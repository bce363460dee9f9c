"""One-dimensional arrays in raw files, read through short-lived windows so memory stays bounded.

A file is never mapped whole for long: every read maps (``np.memmap``) or copies one window of at most
``window_items`` entries and lets it go, so the pages it touched stop counting towards the process's
resident memory. Sparse reads (a few indices spread over a large file) touch only their pages;
dense reads stream the file in order.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: every SAMPLE_EVERY-th key of a sorted file is kept in memory to find the window a query falls in.
SAMPLE_EVERY = 512


class ArrayFile:
    """A read-only 1-D array stored as raw bytes in ``path`` (from byte ``base`` on).

    An array inside another file (a stored ``.npy`` member of a checkpoint, see :meth:`borrowed`)
    is read through a file handle opened once, so it stays the file that was loaded even if that
    path is later replaced; :meth:`remove` never deletes such a file.
    """

    def __init__(self, path: Path, dtype, size: int | None = None, base: int = 0, handle=None):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.base = int(base)
        self.handle = handle
        self.size = int(size if size is not None else (os.path.getsize(self.path) - self.base) // self.dtype.itemsize)

    @classmethod
    def borrowed(cls, array: np.memmap) -> "ArrayFile":
        """The file region a 1-D memory map covers (e.g. a checkpoint's array), as an ArrayFile."""
        return cls(Path(array.filename), array.dtype, array.size, array.offset, open(array.filename, "rb"))

    def window(self, start: int, stop: int) -> np.ndarray:
        """Entries ``start:stop``, mapped (no copy); drop the result to release its pages."""
        start, stop = max(0, int(start)), min(self.size, int(stop))
        if stop <= start:
            return np.empty(0, self.dtype)
        return np.memmap(self.handle or self.path, dtype=self.dtype, mode="r",
                         offset=self.base + start * self.dtype.itemsize, shape=(stop - start,))

    def read(self, start: int, stop: int) -> np.ndarray:
        """Entries ``start:stop`` copied into memory."""
        start, stop = max(0, int(start)), min(self.size, int(stop))
        if stop <= start:
            return np.empty(0, self.dtype)
        if self.handle is not None:
            return np.array(self.window(start, stop))
        return np.fromfile(self.path, dtype=self.dtype, count=stop - start,
                           offset=self.base + start * self.dtype.itemsize)

    def windows(self, window_items: int):
        """(start, entries copied into memory) for consecutive windows covering the file."""
        for start in range(0, self.size, window_items):
            yield start, self.read(start, start + window_items)

    def take(self, index: np.ndarray, window_items: int) -> np.ndarray:
        """``self[index]`` for any int64 indices (each in range), reading at most one window at a time."""
        index = np.asarray(index, dtype=np.int64)
        if index.size == 0:
            return np.empty(0, self.dtype)
        order = None
        if index.size > 1 and bool((index[1:] < index[:-1]).any()):
            order = np.argsort(index, kind="stable")
            index = index[order]
        out = np.empty(index.size, self.dtype)
        i = 0
        while i < index.size:
            lo = int(index[i])
            j = int(np.searchsorted(index, lo + window_items, "left"))
            view = self.window(lo, int(index[j - 1]) + 1)
            out[i:j] = view[index[i:j] - lo]
            del view
            i = j
        if order is None:
            return out
        result = np.empty_like(out)
        result[order] = out
        return result

    def remove(self) -> None:
        """Delete the file (a borrowed region of another file is only let go)."""
        if self.handle is not None:
            self.handle.close()
        elif self.base == 0:
            self.path.unlink(missing_ok=True)


class ArrayWriter:
    """Append arrays to a raw file; :meth:`close` returns the :class:`ArrayFile` (sorted keys: :class:`SortedKeys`)."""

    def __init__(self, path: Path, dtype, sorted_keys: bool = False):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.sorted_keys = sorted_keys
        self.size = 0
        self.samples: list[np.ndarray] = []
        self.file = open(self.path, "wb")

    def append(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=self.dtype)
        if self.sorted_keys and values.size:
            self.samples.append(values[(-self.size) % SAMPLE_EVERY::SAMPLE_EVERY].copy())
        # through the Python file, not ndarray.tofile: numpy's own buffered writes can lose a small write on a
        # full disk without an error and report a large one without its errno, so ENOSPC would go unseen
        self.file.write(values.data)
        self.size += values.size

    def close(self) -> ArrayFile:
        self.file.close()
        if self.sorted_keys:
            sample = np.concatenate(self.samples) if self.samples else np.empty(0, self.dtype)
            return SortedKeys(self.path, self.dtype, self.size, sample)
        return ArrayFile(self.path, self.dtype, self.size)


class LogTable:
    """The natural logs of a file of probabilities or weights, read at given indices (as the scoring walk reads a table)."""

    def __init__(self, values: ArrayFile, window_items: int):
        self.values, self.window_items = values, window_items

    @property
    def size(self) -> int:
        return self.values.size

    def take(self, index: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.values.take(index, self.window_items).astype(np.float64, copy=False))


def write_array(path: Path, values: np.ndarray, sorted_keys: bool = False) -> ArrayFile:
    """An :class:`ArrayFile` holding ``values``."""
    writer = ArrayWriter(path, values.dtype, sorted_keys)
    writer.append(values)
    return writer.close()


class SortedKeys(ArrayFile):
    """A file of strictly increasing int64 keys, searched by binary search in bounded windows.

    ``sample`` (every :data:`SAMPLE_EVERY`-th key, in memory) tells which block of the file each query
    falls in; queries are then searched block-window by block-window.
    """

    def __init__(self, path: Path, dtype, size: int, sample: np.ndarray, base: int = 0, handle=None):
        super().__init__(path, dtype, size, base, handle)
        self.sample = sample

    @classmethod
    def of(cls, keys: ArrayFile, window_items: int) -> "SortedKeys":
        """Sorted keys over an existing file, its sample taken in one streaming pass."""
        sample = [values[(-start) % SAMPLE_EVERY::SAMPLE_EVERY].copy() for start, values in keys.windows(window_items)]
        return cls(keys.path, keys.dtype, keys.size, np.concatenate(sample) if sample else np.empty(0, keys.dtype),
                   keys.base, keys.handle)

    def positions(self, queries: np.ndarray, window_items: int) -> tuple[np.ndarray, np.ndarray]:
        """(``np.searchsorted(keys, queries)``, whether each query is a key), in the queries' order."""
        queries = np.asarray(queries, dtype=np.int64)
        order = None
        if queries.size > 1 and bool((queries[1:] < queries[:-1]).any()):
            order = np.argsort(queries, kind="stable")
            queries = queries[order]
        pos, found = self._positions_sorted(queries, window_items)
        if order is None:
            return pos, found
        out_pos, out_found = np.empty_like(pos), np.empty_like(found)
        out_pos[order], out_found[order] = pos, found
        return out_pos, out_found

    def _positions_sorted(self, queries: np.ndarray, window_items: int) -> tuple[np.ndarray, np.ndarray]:
        pos = np.zeros(queries.size, dtype=np.int64)
        found = np.zeros(queries.size, dtype=bool)
        if self.size == 0 or queries.size == 0:
            return pos, found
        block = np.maximum(np.searchsorted(self.sample, queries, "right") - 1, 0)   # answer in [b*S, (b+1)*S]
        blocks_per_window = max(1, window_items // SAMPLE_EVERY)
        i = 0
        while i < queries.size:
            first = int(block[i])
            j = int(np.searchsorted(block, first + blocks_per_window, "left"))
            lo = first * SAMPLE_EVERY
            view = self.window(lo, (int(block[j - 1]) + 1) * SAMPLE_EVERY)
            local = np.searchsorted(view, queries[i:j])
            pos[i:j] = lo + local
            inside = local < view.size
            found[i:j][inside] = view[local[inside]] == queries[i:j][inside]
            del view
            i = j
        return pos, found

    def lookup(self, queries: np.ndarray, window_items: int) -> np.ndarray:
        """Position of each query among the keys; -1 where it is not a key."""
        pos, found = self.positions(queries, window_items)
        return np.where(found, pos, -1)
