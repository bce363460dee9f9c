"""Numerical precision of neural training steps, and the full float32 in which every score is computed.

``precision`` (a model parameter; ``--precision`` on the command line) applies to the training
steps only:

* ``"float32"`` (default): IEEE float32 throughout.
* ``"tf32"``: on CUDA, float32 matrix products and cuDNN kernels (convolutions, nn.LSTM/GRU/RNN) may
  use TF32 tensor cores (10-bit mantissa inputs, float32 accumulation; NVIDIA Ampere and later).
  Elsewhere it is float32.
* ``"bfloat16"``: mixed precision, the forward pass and loss under ``torch.autocast`` with
  bfloat16 (Micikevicius et al. 2018, "Mixed Precision Training"; bfloat16 keeps float32's
  exponent range, so no loss scaling is needed), plus TF32 for what autocast leaves in float32 on
  CUDA. Weights, gradients and optimizer state stay float32. CPUs run it too (slowly unless they
  have bfloat16 instructions); it is meant for GPUs.

Validation and scoring always run in IEEE float32 (:func:`float32_scoring`: TF32 off for matrix
products and cuDNN, no autocast), so a reported perplexity never carries TF32 or bfloat16 rounding:
only the weights differ, as between two seeds.
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
