"""The perplexity table: one row per (model, split), rewritten atomically after every model."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .textio import atomic_write_text

COLUMNS = [
    "model", "split", "n_tokens", "nll_nats", "cross_entropy_nats", "bits_per_token", "perplexity",
    "n_zero_prob", "vocab_size", "n_params", "fit_seconds", "eval_seconds", "comparable", "note",
    "data_sha256",
]

PRINT_COLUMNS = ["model", "split", "n_tokens", "perplexity", "bits_per_token", "n_zero_prob", "n_params",
                 "fit_seconds", "eval_seconds"]


class ResultsTable:
    """Rows of a run, persisted to CSV after each model so a crash keeps finished results.

    Args:
        path: the CSV file to (re)write.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows: list[dict] = []

    def add(self, rows: list[dict]) -> None:
        """Append one model's rows and rewrite the file atomically."""
        self.rows.extend(rows)
        atomic_write_text(self.path, self.frame().to_csv(index=False))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=COLUMNS)


def format_table(frame: pd.DataFrame) -> str:
    """Human-readable table of the main columns."""
    shown = frame[PRINT_COLUMNS].copy()
    shown["perplexity"] = [_fmt_ppl(p, c) for p, c in zip(frame["perplexity"], frame["comparable"])]
    shown["bits_per_token"] = [f"{b:.4f}" if isinstance(b, float) and math.isfinite(b) else str(b)
                               for b in frame["bits_per_token"]]
    for col in ("fit_seconds", "eval_seconds"):
        shown[col] = [f"{s:.2f}" for s in frame[col]]
    shown = shown.rename(columns={"bits_per_token": "bits/token", "fit_seconds": "fit_s", "eval_seconds": "eval_s"})
    return shown.to_string(index=False)


def _fmt_ppl(ppl, comparable) -> str:
    if not comparable:
        return "n/a"
    return "inf" if ppl == math.inf else f"{ppl:.2f}"
