"""N-gram counts built in bounded memory: sorted runs spilled to disk, merged and numbered order by order.

The tables are :class:`~lmbench.models.ngram.counts.NGramCounts`'s entry for entry (the same sorted
keys, ids, counts and suffixes) in raw files of a temporary folder. KenLM's lmplz pipeline
(Heafield et al. 2013), in numpy: see :meth:`OnDiskCounts.build` for the passes.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np

from ....errors import LmbenchError
from ..counts import NGramCounts, line_chunks, pad_lines, safe_log, take
from .arrays import ArrayFile, ArrayWriter, LogTable, SortedKeys, write_array
from .budget import Budget, Progress
from .runs import SortedRuns


class OnDiskCounts(NGramCounts):
    """:class:`NGramCounts` whose tables of order >= 2 are files (see the module docstring).

    ``keys[k]`` is a :class:`SortedKeys`, ``counts[k]`` an :class:`ArrayFile`; order 1 stays in memory.
    The storage methods of :class:`NGramCounts` (windows, reads, gathers, writers) work on files here,
    in windows of at most ``budget.window_items`` entries. The folder is removed when the object is
    garbage-collected.
    """

    def __init__(self, order: int, vocab_size: int, budget: Budget, parent: str | None = None):
        super().__init__(order, vocab_size)
        self.budget = budget
        self.folder = Path(tempfile.mkdtemp(prefix="lmbench-ngram-", dir=parent))
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self.folder), True)
        self._suffix: list = [None] * (order + 1)
        self._continuation: list = [None] * (order + 1)

    # ------------------------------------------------------------ building

    @classmethod
    def build(cls, ids: np.ndarray, order: int, vocab_size: int, eos_id: int, *, budget: Budget,
              continuation: bool = False, progress: Progress | None = None,
              parent: str | None = None) -> "OnDiskCounts":
        """Count all 1..order-grams of a split in bounded memory.

        For each order k = 2..n: (1) the split is cut into chunks of whole lines; each chunk's keys
        ``prefix_id * base + token`` (from the ids of order k-1 at each position) are sorted, reduced to
        (key, count, suffix id) and spilled as one sorted run; (2) the runs are merged window by window
        into the key, count and suffix-id files of order k (with ``continuation``, the suffix ids also
        feed runs whose merge gives N1+(. g)); (3) for k < n every chunk's keys are looked up in the
        merged file, giving the id of the k-gram at each position, which order k + 1 reads. Working
        memory: a chunk of training tokens and a window of entries (:class:`Budget`).

        Args:
            ids: the training split (N,), lines ended by ``eos_id``.
            order: the highest order.
            vocab_size: V (``bos_id = V``).
            eos_id: the end-of-line id.
            budget: the memory budget.
            continuation: also compute N1+(. g) for every g of orders 1..order-1.
            progress: where to report long steps.
            parent: folder for the temporary folder (default: TMPDIR).
        """
        self = cls(order, vocab_size, budget, parent)
        try:
            progress = progress or Progress(enabled=False)
            ids = np.asarray(ids)
            chunks = list(line_chunks(ids, eos_id, budget.chunk_tokens))
            self.counts[1] = np.zeros(self.base, dtype=np.int64)
            for start, stop in chunks:
                self.counts[1] += np.bincount(ids[start:stop], minlength=self.base)
            self.keys[1] = np.arange(self.base, dtype=np.int64)
            positions = None   # ids of order k-1 at every padded position of every chunk
            for k in range(2, order + 1):
                positions = self._count_order(k, ids, eos_id, chunks, positions, continuation, progress)
        except BaseException:   # a full disk, an interrupt: what was spilled goes now, not at garbage collection
            self.remove()
            raise
        return self

    def _count_order(self, k, ids, eos_id, chunks, positions, continuation, progress) -> ArrayFile | None:
        W = self.budget.window_items
        runs = SortedRuns(self.folder, f"runs{k}", W, payload=True)
        inverses = []
        with progress.step(f"counting {k}-grams in {len(chunks)} sorted run(s)", ids.size) as step:
            offset = 0
            for start, stop in chunks:
                keys, suffix, size = self._chunk_keys(k, ids[start:stop], eos_id, positions, offset)
                offset += size
                uniq, counts, first, inverse = sorted_unique(keys, want_inverse=k < self.order)
                del keys
                runs.add_sorted(uniq, counts, suffix[first])
                del uniq, counts, first, suffix
                step.advance(stop - start)
                if inverse is not None:
                    inverses.append(_spill(self.folder / f"inverse{k}.{len(inverses)}", inverse))
        if positions is not None:
            positions.remove()
        self._merge(k, runs, continuation, progress)
        numbered = self._number(k, ids, eos_id, chunks, runs, inverses, progress) if k < self.order else None
        runs.remove()
        return numbered

    def _chunk_keys(self, k, chunk, eos_id, positions, offset) -> tuple[np.ndarray, np.ndarray, int]:
        """(key of every k-gram of a chunk, id of its (k-1)-gram suffix, padded size of the chunk)."""
        padded, depth = pad_lines(chunk, eos_id, self.bos_id)
        size = padded.size
        at = np.flatnonzero(depth >= k - 1)
        del depth
        previous = padded if positions is None else positions.read(offset, offset + size)
        keys = previous[at - 1]
        keys *= self.base
        keys += padded[at]
        suffix = previous[at]                    # the (k-1)-gram ending at the same position
        return keys, suffix, size

    def _merge(self, k, runs: SortedRuns, continuation: bool, progress: Progress) -> None:
        W = self.budget.window_items
        key_out = ArrayWriter(self.folder / f"keys{k}", np.int64, sorted_keys=True)
        count_out = ArrayWriter(self.folder / f"counts{k}", np.int64)
        suffix_out = ArrayWriter(self.folder / f"suffix{k}", np.int64)
        cont_runs = SortedRuns(self.folder, f"cont{k - 1}", W) if continuation and k > 2 else None
        cont_unigram = np.zeros(self.base, dtype=np.int64)
        with progress.step(f"merging {len(runs.runs)} run(s) of {k}-grams", runs.n_entries, "entries") as step:
            for keys, counts, suffix in runs.merged():
                key_out.append(keys)
                count_out.append(counts)
                suffix_out.append(suffix)
                if continuation and k == 2:
                    cont_unigram += np.bincount(suffix, minlength=self.base)
                elif cont_runs is not None:
                    cont_runs.add_sorted(*np.unique(suffix, return_counts=True))
                step.advance(runs.consumed - step.done)
        self.keys[k], self.counts[k], self._suffix[k] = key_out.close(), count_out.close(), suffix_out.close()
        if continuation:
            self._continuation[k - 1] = cont_unigram if k == 2 else self._densify(k - 1, cont_runs)

    def _densify(self, k: int, runs: SortedRuns) -> ArrayFile:
        """A dense file over the k-gram ids from sorted (id, count) runs (zero where absent)."""
        out = ArrayWriter(self.folder / f"continuation{k}", np.int64)
        filled = 0
        for ids, counts in runs.merged():
            _append_zeros(out, int(ids[0]) - filled, self.budget.window_items)
            dense = np.zeros(int(ids[-1]) + 1 - int(ids[0]), dtype=np.int64)
            dense[ids - ids[0]] = counts
            out.append(dense)
            filled = int(ids[-1]) + 1
        _append_zeros(out, self.keys[k].size - filled, self.budget.window_items)
        runs.remove()
        return out.close()

    def _number(self, k, ids, eos_id, chunks, runs, inverses, progress) -> ArrayFile:
        """The id of the k-gram ending at every padded position of every chunk (-1: none)."""
        W = self.budget.window_items
        out = ArrayWriter(self.folder / f"positions{k}", np.int64)
        with progress.step(f"numbering {k}-grams", ids.size) as step:
            for (start, stop), run, inverse in zip(chunks, runs.runs, inverses):
                padded, depth = pad_lines(ids[start:stop], eos_id, self.bos_id)
                numbered = np.full(padded.size, -1, dtype=np.int64)
                global_ids = self.keys[k].lookup(run[0].read(0, run[0].size), W)
                numbered[np.flatnonzero(depth >= k - 1)] = global_ids[inverse.read(0, inverse.size)]
                out.append(numbered)
                inverse.remove()
                step.advance(stop - start)
        return out.close()

    # ------------------------------------------------------------ structure and storage

    def suffix_ids(self, k: int) -> ArrayFile:
        return self._suffix[k]

    def continuation(self, k: int):
        if self._continuation[k] is None:
            raise ValueError(f"continuation counts of {k}-grams were not counted (build with continuation=True)")
        return self._continuation[k]

    def lookup(self, k: int, prefix: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        query = np.asarray(prefix, dtype=np.int64) * self.base + np.asarray(tokens, dtype=np.int64)
        return self.keys[k].lookup(query.reshape(-1), self.budget.window_items).reshape(np.shape(query))

    def search(self, k: int, key: int) -> int:
        return int(self.keys[k].positions(np.array([key]), self.budget.window_items)[0][0])

    def context_windows(self, k: int):
        """(x0, x1, c0, c1): k-gram ids x0:x1 are exactly those whose context id is in c0:c1.

        The windows cover every k-gram and every (k-1)-gram context (contexts without continuations
        included) in order, each with at most ``window_items`` k-grams unless one context has more.
        """
        keys, W = self.keys[k], self.budget.window_items
        n, n_contexts = keys.size, self.n_types(k - 1)
        x0 = c0 = 0
        while c0 < n_contexts:
            if x0 + W >= n:
                x1, c1 = n, n_contexts
            else:
                c1 = max(int(keys.read(x0 + W, x0 + W + 1)[0]) // self.base, c0 + 1)
                x1 = self.search(k, c1 * self.base)
            yield x0, x1, c0, c1
            x0, c0 = x1, c1

    def item_windows(self, k: int):
        n, W = self.n_types(k), self.budget.window_items
        for x0 in range(0, n, W):
            yield x0, min(x0 + W, n)

    def read(self, values, start: int, stop: int) -> np.ndarray:
        return values[start:stop] if isinstance(values, np.ndarray) else values.read(start, stop)

    def gather(self, values, index: np.ndarray) -> np.ndarray:
        return values[index] if isinstance(values, np.ndarray) else values.take(index, self.budget.window_items)

    def take(self, values, index: np.ndarray, fill=0) -> np.ndarray:
        if isinstance(values, np.ndarray):
            return take(values, index, fill)
        out = np.full(index.shape, fill, dtype=values.dtype)
        seen = index >= 0
        out[seen] = values.take(index[seen], self.budget.window_items)
        return out

    def writer(self, name: str, dtype=np.float64) -> ArrayWriter:
        return ArrayWriter(self.folder / name, dtype)

    def table(self, values):
        return safe_log(values) if isinstance(values, np.ndarray) else LogTable(values, self.budget.window_items)

    def scoring_chunk_tokens(self) -> int:
        return self.budget.chunk_tokens

    # ------------------------------------------------------------ persistence

    @classmethod
    def from_state(cls, state: dict, order: int, vocab_size: int, budget: Budget,
                   parent: str | None = None) -> "OnDiskCounts":
        """The counts of a checkpoint (:meth:`state_dict`), scored in bounded memory.

        Arrays memory-mapped from the checkpoint are read where they lie (:meth:`file_of`); nothing
        is loaded whole.
        """
        self = cls(order, vocab_size, budget, parent)
        self.keys[1] = np.arange(self.base, dtype=np.int64)
        self.counts[1] = np.asarray(state["counts.1"], dtype=np.int64)
        for k in range(2, order + 1):
            self.keys[k] = SortedKeys.of(self.file_of(state[f"keys.{k}"], f"keys{k}"), budget.window_items)
            self.counts[k] = self.file_of(state[f"counts.{k}"], f"counts{k}")
        self.check_tables()
        return self

    def file_of(self, array: np.ndarray, name: str) -> ArrayFile:
        """An :class:`ArrayFile` of a checkpoint's 1-D array: the file region of a memory map, else a copy in the folder."""
        if isinstance(array, np.memmap) and array.ndim == 1 and array.flags.c_contiguous:
            return ArrayFile.borrowed(array)
        return write_array(self.folder / name, np.ascontiguousarray(array))

    def drop_fit_files(self) -> None:
        """Delete what only fitting needs (suffix ids, continuation counts); scoring keeps the rest."""
        for files in (self._suffix, self._continuation):
            for f in files:
                if isinstance(f, ArrayFile):
                    f.remove()
        self._suffix = [None] * (self.order + 1)
        self._continuation = [None] * (self.order + 1)

    def disk_bytes(self) -> int:
        """Bytes of the files in the folder now."""
        return sum(f.stat().st_size for f in self.folder.iterdir() if f.is_file())

    def remove(self) -> None:
        """Delete the folder now."""
        self._cleanup()


#: errno values of a full temporary folder (no space left, or the disk quota exceeded).
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def temporary_folder_full(parent: str | None, exc: OSError, doing: str, hint: str = "") -> LmbenchError:
    """The one-line error of a temporary folder that filled up while ``doing`` (``exc.errno`` in :data:`DISK_FULL`)."""
    folder = parent or tempfile.gettempdir()
    return LmbenchError(f"the temporary folder {folder} is full ({exc.strerror or exc}) while {doing}; free space "
                        f"there or point TMPDIR at a folder with room (TMPDIR=/path/with/room lmbench ...){hint}")


def sorted_unique(keys: np.ndarray, want_inverse: bool) -> tuple:
    """(unique keys, counts, index of a first occurrence of each, inverse or None), as np.unique."""
    order = np.argsort(keys)
    ordered = keys[order]
    new = np.empty(ordered.size, dtype=bool)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    uniq = ordered[starts]
    del ordered
    counts = np.diff(np.append(starts, keys.size))
    inverse = None
    if want_inverse:
        inverse = np.empty(keys.size, dtype=np.int64)
        rank = np.cumsum(new)
        rank -= 1
        inverse[order] = rank
    return uniq, counts, order[starts], inverse


def _spill(path: Path, values: np.ndarray) -> ArrayFile:
    out = ArrayWriter(path, values.dtype)
    out.append(values)
    return out.close()


def _append_zeros(out: ArrayWriter, n: int, window_items: int) -> None:
    while n > 0:
        step = min(n, window_items)
        out.append(np.zeros(step, dtype=np.int64))
        n -= step


__all__ = ["DISK_FULL", "OnDiskCounts", "SortedKeys", "sorted_unique", "temporary_folder_full"]
