"""Reproducibility: the one place where random seeds are set and deterministic kernels are chosen.

Importing this module imports no torch (an n-gram-only run never loads it): torch is used only if
it is already imported, which every neural model class does when it is looked up.
"""

from __future__ import annotations

import os
import random
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

import numpy as np

from ...errors import LmbenchError

if TYPE_CHECKING:
    import torch

#: seeds are what every generator seeded here accepts: NumPy's legacy seeding takes 0 .. 2**32 - 1.
MAX_SEED = 2**32 - 1

#: cuBLAS workspace setting that makes its matrix products deterministic (PyTorch "Reproducibility" notes).
CUBLAS_WORKSPACE_CONFIG = ":4096:8"


def check_seed(seed) -> int:
    """Return ``seed`` as an int, or raise LmbenchError unless it is a whole number in 0 .. 2**32 - 1."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise LmbenchError(f"seed must be a whole number in 0..{MAX_SEED}, got {seed!r}; pick one in that range")
    return int(seed)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and, if it is imported, PyTorch (CPU and every CUDA device) so a run is repeatable.

    torch is seeded only when some module has imported it already (looking up a neural model class
    does, and the runner looks every model up before seeding); import the model classes first when
    seeding by hand.

    Raises:
        LmbenchError: ``seed`` is not a whole number in 0 .. 2**32 - 1.
    """
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch_module = sys.modules.get("torch")
    if torch_module is not None:
        torch_module.manual_seed(seed)  # seeds the CUDA generators too


@contextmanager
def deterministic_kernels(device: torch.device) -> Iterator[None]:
    """Within the block, CUDA work on ``device`` uses deterministic kernels; CPU work is left as it is.

    On a CUDA device this sets, for the duration of the block only (the previous values are restored
    on exit, also after an exception):

    * ``torch.use_deterministic_algorithms(True, warn_only=True)``: deterministic implementations
      where torch has one; an op that has only a nondeterministic CUDA kernel warns instead of failing;
    * ``torch.backends.cudnn.deterministic = True`` and ``torch.backends.cudnn.benchmark = False``
      (no run-time algorithm search, whose choice can differ between runs);
    * the environment variable ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` if it is not set already, which
      cuBLAS needs for reproducible products (and nn.LSTM on CUDA >= 10.2). It is removed again on
      exit if it was not set before; cuBLAS reads it when it first creates its workspace, so set it
      in the environment yourself if CUDA matrix products run before the first lmbench fit.

    CPU kernels are deterministic already for the ops lmbench uses, so on a CPU (or MPS) device
    nothing is changed (and nothing slows down).
    """
    if device.type != "cuda":
        yield
        return
    import torch

    cudnn = torch.backends.cudnn
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             cudnn.deterministic, cudnn.benchmark)
    set_env = "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    if set_env:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE_CONFIG
    torch.use_deterministic_algorithms(True, warn_only=True)
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        cudnn.deterministic, cudnn.benchmark = saved[2], saved[3]
        if set_env:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
