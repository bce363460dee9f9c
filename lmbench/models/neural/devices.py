"""The machine a fit runs on: the device a ``device`` name selects, what config.json records about it, the
CPU's name, and deterministic CUDA kernels. torch is imported only by the functions that need it."""

from __future__ import annotations

import os
import platform
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from ...errors import LmbenchError, unknown_name_error

if TYPE_CHECKING:
    import torch

#: what ``device`` can name.
DEVICES = ("auto", "cpu", "cuda", "mps")

#: cuBLAS workspace setting that makes its matrix products deterministic (PyTorch "Reproducibility" notes).
CUBLAS_WORKSPACE_CONFIG = ":4096:8"


def select_device(name: str = "auto") -> torch.device:
    """The torch device for a ``device`` value.

    Args:
        name: "auto" (CUDA if available, else Apple MPS, else CPU), "cpu", "cuda" or "mps".

    Returns:
        The device; asking for an accelerator that is not available raises LmbenchError. In a
        data-parallel fit on CUDA, the GPU of this process's ``LOCAL_RANK``.
    """
    import torch

    from .distributed import current_world

    if name not in DEVICES:
        raise unknown_name_error("device", str(name), DEVICES)
    backend = getattr(torch.backends, "mps", None)
    cuda, mps = torch.cuda.is_available(), bool(backend is not None and backend.is_available())
    if name == "auto":
        name = "cuda" if cuda else "mps" if mps else "cpu"
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise LmbenchError(f"--device {name} was asked for but is not available here; use --device cpu or auto")
    if name == "cuda" and current_world().distributed:
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(name)


def describe_device(device: torch.device) -> dict:
    """Where a model runs, for config.json: device, CPU (and GPU) model, torch's version and CPU threads."""
    import torch

    from .distributed import current_world

    env = {"device": str(device), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
           "cpu": cpu_model()}
    world = current_world()
    if world.distributed:
        env.update(world_size=world.size, backend=world.backend)
    if device.type == "cuda":
        env.update(cuda_device=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(),
                   cuda_deterministic=True)  # fits and scoring run under deterministic_kernels
    return env


def cpu_model() -> str:
    """The CPU's model name (``model name`` in /proc/cpuinfo on Linux, else what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as lines:
            for line in lines:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


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
