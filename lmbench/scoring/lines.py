"""Lines of a split: their boundaries in the flat id array and per-line sums of per-token values.

A split is a flat id array in which every line ends with the end-of-line id, so lines are
recoverable from the ids alone. They are represented by ``offsets`` (L+1,) int64 with
``offsets[0] == 0`` and ``offsets[-1] == N``: line ``i`` is ``ids[offsets[i]:offsets[i + 1]]``.
"""

from __future__ import annotations

import numpy as np

from ..errors import LmbenchError


class InvalidScoresError(LmbenchError, ValueError):
    """Scores or line boundaries that cannot be analysed (NaN scores, mismatched shapes, bad offsets)."""


def check_offsets(offsets: np.ndarray, n_tokens: int) -> np.ndarray:
    """Validate line offsets for ``n_tokens`` tokens; return them as int64 (L+1,)."""
    offsets = np.asarray(offsets)
    if offsets.ndim != 1 or offsets.size == 0 or not np.issubdtype(offsets.dtype, np.integer):
        raise InvalidScoresError(f"line offsets must be a non-empty flat int array (L+1,), got {offsets.dtype} "
                                 f"shape {offsets.shape}; build them with line_offsets(ids, eos_id)")
    if offsets[0] != 0 or offsets[-1] != n_tokens or (np.diff(offsets) < 0).any():
        raise InvalidScoresError(f"line offsets must rise from 0 to the number of tokens ({n_tokens}); "
                                 f"build them with line_offsets(ids, eos_id) from the same split")
    return offsets.astype(np.int64)


def line_sums(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum per-token values within each line (vectorized ``np.add.reduceat``).

    Infinities are summed as floats: a line holding ``-inf`` sums to ``-inf`` (``inf`` and ``-inf``
    in one line give NaN). An empty line sums to 0.

    Args:
        values: per-token values (N,) or one row per model (M, N).
        offsets: line offsets (L+1,) from :func:`line_offsets`.

    Returns:
        Per-line sums, float64 (L,) or (M, L).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim not in (1, 2):
        raise InvalidScoresError(f"values must be (N,) or (M, N), got shape {values.shape}")
    offsets = check_offsets(offsets, values.shape[-1])
    starts, lengths = offsets[:-1], np.diff(offsets)  # (L,), (L,)
    sums = np.zeros(values.shape[:-1] + (starts.size,), dtype=np.float64)  # (L,) or (M, L)
    nonempty = lengths > 0
    if nonempty.any():
        # reduceat sums from each start to the next start given; empty lines are left out so every
        # start is < N and each segment ends where the next non-empty line begins.
        sums[..., nonempty] = np.add.reduceat(values, starts[nonempty], axis=-1)
    return sums
