"""Reproducibility: the one place where random seeds are set before a model is fitted.

Importing this module imports no torch (an n-gram-only run never loads it): torch is seeded only if it
is already imported, which every neural model class does when it is looked up.
"""

from __future__ import annotations

import random
import sys

import numpy as np

from ..errors import check_seed


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
