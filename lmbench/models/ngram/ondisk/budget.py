"""The memory budget of an on-disk fit, how it sizes chunks and windows, and progress lines."""

from __future__ import annotations

import math
import re
import sys
import time
from dataclasses import dataclass

from ....errors import LmbenchError

#: the default budget for n-gram tables (what ``--memory`` sets); as KenLM's ``lmplz -S``.
DEFAULT_MEMORY = "4G"
#: the smallest budget accepted (tests use tiny budgets to force many spills).
MIN_MEMORY_BYTES = 4096
_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SIZE = re.compile(r"^\s*(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>[KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)

#: bytes of working memory per training token while counting a chunk (the padded chunk, keys, suffix
#: ids, the sort permutation, sorted keys, inverse: about 8 int64 arrays at the peak, with slack).
BYTES_PER_CHUNK_TOKEN = 112
#: bytes per item of a merge or statistics window (keys, counts, sort permutation, gathered values).
BYTES_PER_WINDOW_ITEM = 96
#: chunks and windows past these sizes buy no speed (smaller sorts stay in cache, and merging runs is cheap),
#: so a large budget is an upper bound, not a target.
MAX_CHUNK_TOKENS = 1 << 23
MAX_WINDOW_ITEMS = 1 << 22
#: estimated peak bytes per training token and order of the in-memory path (np.unique over every
#: order's keys, the walk's per-position ids, the tables), from measured peaks (docs/benchmarks.md).
IN_MEMORY_BYTES_PER_TOKEN_ORDER = 32


def parse_memory(value) -> int:
    """Bytes of a memory budget: a number of bytes or a size like ``"4G"``, ``"512M"``, ``"1.5GB"``.

    Units are binary (K = 1024). Raises LmbenchError for anything else or below 4 KiB.
    """
    if value is None:
        value = DEFAULT_MEMORY
    if isinstance(value, bool):
        raise LmbenchError(f"memory budget must be a size like 4G or 512M, got {value!r}")
    if isinstance(value, (int, float)) and math.isfinite(value):
        size = int(value)
    else:
        match = _SIZE.match(str(value)) if isinstance(value, str) else None
        if match is None:
            raise LmbenchError(f"memory budget must be a size like 4G, 512M or a number of bytes, got {value!r}")
        size = int(float(match["number"]) * _UNITS[match["unit"].upper()])
    if size < MIN_MEMORY_BYTES:
        raise LmbenchError(f"memory budget must be at least {MIN_MEMORY_BYTES} bytes (e.g. 4G), got {value!r}")
    return size


def format_bytes(n: float) -> str:
    """``1.5G`` style size."""
    for unit in ("", "K", "M", "G"):
        if abs(n) < 1024:
            return f"{n:.0f}{unit}" if unit == "" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}T"


@dataclass(frozen=True)
class Budget:
    """Chunk and window sizes that keep an on-disk fit within ``memory_bytes`` of working memory.

    ``chunk_tokens``: training tokens counted per sorted run; ``window_items``: entries per merge,
    statistics or lookup window. Both have small floors so that a tiny budget still makes progress
    (a line longer than a chunk is counted whole), and caps (:data:`MAX_CHUNK_TOKENS`,
    :data:`MAX_WINDOW_ITEMS`) past which more memory buys no speed.
    """

    memory_bytes: int

    @property
    def chunk_tokens(self) -> int:
        return int(min(MAX_CHUNK_TOKENS, max(64, self.memory_bytes // BYTES_PER_CHUNK_TOKEN)))

    @property
    def window_items(self) -> int:
        return int(min(MAX_WINDOW_ITEMS, max(64, self.memory_bytes // BYTES_PER_WINDOW_ITEM)))


def estimated_in_memory_bytes(n_tokens: int, order: int) -> int:
    """Rough peak memory of fitting ``order``-gram tables in memory on ``n_tokens`` training tokens."""
    return int(n_tokens) * int(order) * IN_MEMORY_BYTES_PER_TOKEN_ORDER


class Progress:
    """One line on stderr per finished step of a long fit, with its throughput.

    Steps shorter than ``min_seconds`` print nothing, so small fits stay silent; a step that reports
    its advance (``step.advance(n)``) also prints a line every ``interval_seconds`` while it runs.
    """

    def __init__(self, label: str = "", enabled: bool = True, min_seconds: float = 1.0, stream=None,
                 interval_seconds: float = 15.0):
        self.prefix = f"[{label}] " if label else ""
        self.enabled = enabled
        self.min_seconds = min_seconds
        self.interval_seconds = interval_seconds
        self.stream = stream
        self.lines: list[str] = []

    def step(self, what: str, items: int, unit: str = "tokens"):
        """A context manager timing one step over ``items`` units."""
        return _Step(self, what, items, unit)

    def emit(self, line: str) -> None:
        self.lines.append(line)
        if self.enabled:
            print(self.prefix + line, file=self.stream or sys.stderr, flush=True)


class _Step:
    def __init__(self, progress: Progress, what: str, items: int, unit: str):
        self.progress, self.what, self.items, self.unit = progress, what, items, unit
        self.done = 0

    def __enter__(self):
        self.start = self.last = time.perf_counter()
        return self

    def advance(self, n: int) -> None:
        """Count ``n`` more units done; print where the step stands if the interval has passed."""
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.progress.interval_seconds:
            self.last = now
            rate = self.done / (now - self.start)
            self.progress.emit(f"{self.what}: {_count(self.done)}/{_count(self.items)} {self.unit} "
                               f"({100 * self.done / max(self.items, 1):.0f}%), {_count(rate)} {self.unit}/s")

    def __exit__(self, *exc):
        seconds = time.perf_counter() - self.start
        if exc[0] is None and seconds >= self.progress.min_seconds:
            rate = self.items / seconds if seconds > 0 else float("inf")
            self.progress.emit(f"{self.what}: {_count(self.items)} {self.unit} in {seconds:.1f}s "
                               f"({_count(rate)} {self.unit}/s)")
        return False


def _count(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e4:
        return f"{n / 1e3:.0f}k"
    return f"{n:.0f}"
