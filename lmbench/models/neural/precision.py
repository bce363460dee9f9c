"""Numerical precision of neural training steps, and the IEEE float32 in which every score is computed.

``precision`` applies to the training steps only: "float32"; "tf32" (CUDA float32 products and cuDNN
kernels on TF32 tensor cores, float32 elsewhere); "bfloat16" (forward and loss under bfloat16
autocast, mixed-precision training as in Micikevicius et al. 2018, with no loss scaling since
bfloat16 keeps float32's exponent range; weights, gradients and optimizer state stay float32).
Validation and scoring always run in float32 (:func:`float32_scoring`), so only the weights differ.
On a CPU, bfloat16 LSTM kernels come from oneDNN and need AVX-512 BF16 or AMX (:func:`cpu_has_bfloat16_lstm`).
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Iterator

import torch

PRECISIONS = ("float32", "tf32", "bfloat16")


def training_autocast(precision: str, device: torch.device):
    """The context for a training step's forward pass and loss: bfloat16 autocast, or nothing."""
    if precision != "bfloat16":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def cpu_has_bfloat16_lstm() -> bool:
    """Whether this CPU can run an LSTM under bfloat16 autocast (oneDNN's kernels need AVX-512 BF16 or AMX).

    Without them PyTorch fails inside the first training step ("could not create a primitive
    descriptor for the LSTM forward propagation primitive"); models check this before training.
    """
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


@contextmanager
def training_matmuls(precision: str, device: torch.device) -> Iterator[None]:
    """Within the block, CUDA float32 matrix products and cuDNN kernels may use TF32 ("tf32", "bfloat16").

    The previous settings are restored on exit (also after an exception). Nothing changes on other
    devices or for "float32".
    """
    with _cuda_tf32(device, allowed=precision in ("tf32", "bfloat16")):
        yield


@contextmanager
def float32_scoring(device: torch.device) -> Iterator[None]:
    """Within the block, CUDA matrix products and cuDNN kernels compute in IEEE float32 (TF32 off).

    PyTorch lets cuDNN use TF32 by default; scoring turns that off so reported figures are float32's.
    """
    with _cuda_tf32(device, allowed=False):
        yield


@contextmanager
def _cuda_tf32(device: torch.device, allowed: bool) -> Iterator[None]:
    if device.type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    saved = (torch.get_float32_matmul_precision(), cudnn.allow_tf32)
    torch.set_float32_matmul_precision("high" if allowed else "highest")
    cudnn.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(saved[0])
        cudnn.allow_tf32 = saved[1]
