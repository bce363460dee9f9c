"""What a row costs: the peak memory of a fit (sampled resident memory) and the bytes a fitted model holds."""

from __future__ import annotations

import os
import resource
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

import numpy as np

#: seconds between two samples of the resident memory while a model is fitted.
SAMPLE_SECONDS = 0.02


def resident_bytes() -> int:
    """The process's resident memory now (Linux: /proc/self/statm; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class PeakMemory:
    """The largest resident memory seen while the block runs, above what the process held when it began."""

    def __init__(self, every: float = SAMPLE_SECONDS):
        self.every = every
        self.start_bytes = self.peak_bytes = 0
        self._stop = threading.Event()

    @property
    def increase_bytes(self) -> int:
        return max(0, self.peak_bytes - self.start_bytes)

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            self.peak_bytes = max(self.peak_bytes, resident_bytes())

    @contextmanager
    def watch(self) -> Iterator["PeakMemory"]:
        self.start_bytes = self.peak_bytes = resident_bytes()
        thread = threading.Thread(target=self._sample, name="lmbench-peak-memory", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.peak_bytes = max(self.peak_bytes, resident_bytes())


def model_bytes(model) -> int:
    """Bytes of the arrays and tensors a fitted model holds in memory (memory-mapped files not counted).

    Every fitted attribute (ending in ``_``) is walked: numpy arrays, torch modules' parameters and
    buffers, tensors, and lists, tuples and dicts of them; shared objects are counted once.
    """
    seen: set[int] = set()

    def size(value) -> int:
        if id(value) in seen:
            return 0
        seen.add(id(value))
        if isinstance(value, np.memmap):
            return 0
        if isinstance(value, np.ndarray):
            return int(value.nbytes) if value.base is None or id(value.base) not in seen else 0
        torch = sys.modules.get("torch")
        if torch is not None:
            if isinstance(value, torch.nn.Module):
                return sum(size(t) for t in [*value.parameters(), *value.buffers()])
            if isinstance(value, torch.Tensor):
                return int(value.numel() * value.element_size())
        if isinstance(value, (list, tuple)):
            return sum(size(v) for v in value)
        if isinstance(value, dict):
            return sum(size(v) for v in value.values())
        if hasattr(value, "__dict__") and type(value).__module__.startswith("lmbench."):
            return sum(size(v) for k, v in vars(value).items())
        return 0

    return sum(size(v) for k, v in vars(model).items() if k.endswith("_") and not k.startswith("_"))
