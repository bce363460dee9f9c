"""Per-token scores on disk: the raw material of every analysis.

A run stores, under ``DIR/scores/``:

* ``targets.npz``: what was scored, once for all models: ``<split>_ids`` (int32, N) and
  ``<split>_line_offsets`` (int64, L+1; line i is tokens offsets[i]:offsets[i+1]) for every
  held-out split, and ``train_counts`` (int64, V: training count of every vocabulary id, for
  frequency buckets);
* ``<model>.npz``: one float64 array per held-out split: the natural-log probability of every
  target token (``-inf`` for probability zero), in split order.

float64 is stored as is, so ``-logprobs.sum()`` reproduces the ``nll_nats`` column bit for bit.
Files are plain ``.npz`` (read with ``allow_pickle=False``) and written atomically.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LmbenchError
from ..files import atomic_write_bytes



@dataclass(frozen=True)
class TokenScores:
    """One model's scores on one split, with the targets they score.

    Attributes:
        logprobs: float64 (N,), natural-log probability of each target token.
        ids: int32 (N,), the target token ids (identical for every model of a run).
        line_offsets: int64 (L+1,), line boundaries into both arrays.
    """

    logprobs: np.ndarray
    ids: np.ndarray
    line_offsets: np.ndarray

    @property
    def n_tokens(self) -> int:
        return int(self.logprobs.size)

    @property
    def nll_nats(self) -> float:
        return float(-self.logprobs.sum())

    def line_nll_nats(self) -> np.ndarray:
        """Negative log-likelihood of every line (L,)."""
        from .lines import line_sums

        return -line_sums(self.logprobs, self.line_offsets)


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays as an uncompressed .npz, atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Read every array of an .npz written by :func:`save_npz` (no pickles)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise LmbenchError(f"score file not found: {path}; was the run made with --no-save-scores?") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise LmbenchError(f"cannot read score file {path} ({type(exc).__name__}: {exc}); it is damaged or not an "
                           f"lmbench file: re-run the run that wrote it") from None


def save_targets(path: Path, splits: dict[str, np.ndarray], offsets: dict[str, np.ndarray],
                 train_counts: np.ndarray, line_bytes: dict[str, np.ndarray] | None = None) -> None:
    """Write the shared targets file (see the module docstring)."""
    arrays = {"train_counts": np.asarray(train_counts, dtype=np.int64)}
    for split, ids in splits.items():
        arrays[f"{split}_ids"] = np.asarray(ids, dtype=np.int32)
        arrays[f"{split}_line_offsets"] = np.asarray(offsets[split], dtype=np.int64)
        if line_bytes is not None and split in line_bytes:
            arrays[f"{split}_line_bytes"] = np.asarray(line_bytes[split], dtype=np.int64)
    save_npz(path, arrays)


def save_model_scores(path: Path, logprobs: dict[str, np.ndarray], own_offsets: dict | None = None) -> None:
    """Write one model's per-split log-probabilities (and, for a model's own tokens, their line offsets)."""
    arrays = {split: np.asarray(lp, dtype=np.float64) for split, lp in logprobs.items()}
    for split, offsets in (own_offsets or {}).items():
        arrays[f"{split}_line_offsets"] = np.asarray(offsets, dtype=np.int64)
    save_npz(path, arrays)


def read_scores(targets_path: Path, scores_path: Path, split: str) -> TokenScores:
    """A model's :class:`TokenScores` on ``split`` from its scores file and the run's targets file."""
    targets = load_npz(targets_path)
    stored = load_npz(scores_path)
    if split not in stored or f"{split}_ids" not in targets:
        raise LmbenchError(f"no scores for split {split!r} in {scores_path}; "
                           f"stored splits: {', '.join(sorted(stored))}")
    own = f"{split}_line_offsets"
    if own in stored:  # a model's own tokens: their line offsets are the model's, no run ids belong to them
        return TokenScores(stored[split], np.zeros(0, np.int32), stored[own])
    scores = TokenScores(stored[split], targets[f"{split}_ids"], targets[f"{split}_line_offsets"])
    if scores.logprobs.shape != scores.ids.shape:
        raise LmbenchError(f"{scores_path} holds {scores.logprobs.size} scores for {split}, "
                           f"but the run scored {scores.ids.size} tokens; the files do not belong together")
    return scores
