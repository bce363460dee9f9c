"""Resuming a run: the models of an earlier run in the same directory that can be kept as they are.

A model is kept when the earlier run finished it with the same lmbench version, the same data (every
split's sha256, the tokenizer, the vocabulary), the same class and resolved parameters, seed and
training fraction, when what it is built from was kept too, and when its files are the ones the
earlier run wrote (sha256 recorded in its config.json). Everything else is fitted again, so the
resumed run's results are those of a fresh run.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ..version import __version__
from ..files import sha256_of
from . import files

#: what of a model's description in config.json must be equal for it to be kept.
SAME = ("class", "model", "seed", "fraction", "requires", "params")


class Earlier:
    """The earlier run in ``target`` (nothing, if there is none or it is of other data or another version)."""

    def __init__(self, target: Path, dataset):
        self.target = Path(target)
        self.config = _read_json(self.target / files.CONFIG)
        self.kept: set[str] = set()
        if not self._same_data(dataset):
            self.config = None
        self.table = _read_table(self.target / files.PERPLEXITY_CSV) if self.config else None

    def _same_data(self, dataset) -> bool:
        if not self.config or self.config.get("lmbench_version") != __version__:
            return False
        data = self.config.get("data") or {}
        now = json.loads(json.dumps(dataset.summary(), default=str))
        return all(data.get(key) == now.get(key) for key in ("tokenizer", "vocab_size", "splits"))

    def reuse(self, job, info: dict, stem: str, out: Path):
        """(rows, model or None, scores, curve) of the earlier fit of ``job``, its files copied into ``out``; None to refit."""
        from ..models.checkpoint import load_model

        if self.config is None or self.table is None:
            return None
        earlier = (self.config.get("models") or {}).get(job.label)
        current = json.loads(json.dumps(info, default=str))
        if not earlier or earlier.get("status") != "done" or any(earlier.get(k) != current.get(k) for k in SAME):
            return None
        if not set(job.requires) <= self.kept:
            return None
        rows = self.table[self.table["model"] == job.label]
        if sorted(rows["split"]) != ["test", "valid"] or not self._files_intact(earlier):
            return None
        model = None
        if earlier.get("checkpoint"):
            model = load_model(self.target / earlier["checkpoint"])
            model.label = job.label
        scores = self._scores(earlier)
        if scores is None:
            return None
        for key in ("scores", "checkpoint", "curve"):
            if earlier.get(key):
                _copy(self.target / earlier[key], out / earlier[key])
        curve = pd.read_csv(out / earlier["curve"]) if earlier.get("curve") else None
        info.update({k: v for k, v in earlier.items() if k not in info or k in ("status", "fitted", "n_params",
                                                                                   "environment", "valid_use",
                                                                                   "scores_sha256",
                                                                                   "checkpoint_sha256", "extras")})
        info["kept_from_earlier_run"] = True
        self.kept.add(job.label)
        ordered = [rows[rows["split"] == s].iloc[0].to_dict() for s in ("valid", "test")]
        return [_plain_row(r) for r in ordered], model, scores, curve

    def _files_intact(self, earlier: dict) -> bool:
        for key in ("scores", "checkpoint"):
            if earlier.get(key):
                path = self.target / earlier[key]
                if not path.is_file() or sha256_of(path) != earlier.get(f"{key}_sha256"):
                    return False
        return bool(earlier.get("scores"))

    def _scores(self, earlier: dict):
        from ..scoring.splits import SplitScores
        from ..scoring.tokens import load_npz

        stored = load_npz(self.target / earlier["scores"])
        targets = load_npz(self.target / files.SCORES_DIR / files.TARGETS_NPZ)
        out = {}
        for split in ("valid", "test"):
            if split not in stored:
                return None
            own = f"{split}_line_offsets"
            offsets = stored[own] if own in stored else targets[own]
            out[split] = SplitScores(stored[split], offsets, own_tokens=own in stored)
        return out


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_table(path: Path):
    try:
        return pd.read_csv(path, keep_default_na=False, na_values=["", "nan", "NaN"])
    except (OSError, ValueError):
        return None


def _plain_row(row: dict) -> dict:
    """A row read back from CSV with Python values (NaN notes back to "")."""
    out = {}
    for key, value in row.items():
        if isinstance(value, np.generic):
            value = value.item()
        if key == "note" and isinstance(value, float) and np.isnan(value):
            value = ""
        out[key] = value
    return out


def _copy(source: Path, dest: Path) -> None:
    """A hard link where the file system allows it (instant, no space), else a copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)
