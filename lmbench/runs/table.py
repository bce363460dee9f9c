"""The perplexity table: one row per (model, split), rewritten atomically after every model."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..files import atomic_write_text

COLUMNS = [
    "model", "split", "n_tokens", "nll_nats", "cross_entropy_nats", "bits_per_token", "bits_per_byte",
    "perplexity", "ppl_low", "ppl_high", "n_zero_prob", "n_nan", "vocab_size", "n_params", "fit_seconds",
    "eval_seconds", "comparable", "tuned_on_valid", "seed", "family", "train_tokens", "note", "data_sha256",
]

PRINT_COLUMNS = ["model", "split", "n_tokens", "perplexity", "ppl_95", "bits_per_token", "bits_per_byte",
                 "n_zero_prob", "n_params", "fit_seconds", "eval_seconds"]


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
        self._write()

    def replace(self, frame: pd.DataFrame) -> None:
        """Replace every row (e.g. with interval columns filled in) and rewrite the file."""
        self.rows = frame.to_dict("records")
        self._write()

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=COLUMNS)

    def _write(self) -> None:
        atomic_write_text(self.path, self.frame().to_csv(index=False))


def format_table(frame: pd.DataFrame) -> str:
    """Human-readable table of the main columns (``*`` marks valid rows used for tuning)."""
    shown = frame.copy()
    comparable = shown["comparable"].astype(bool)
    shown["perplexity"] = [_fmt_ppl(p, c) for p, c in zip(frame["perplexity"], comparable)]
    low = frame["ppl_low"] if "ppl_low" in frame else [math.nan] * len(frame)
    high = frame["ppl_high"] if "ppl_high" in frame else [math.nan] * len(frame)
    shown["ppl_95"] = [_fmt_interval(lo, hi) if c else "" for lo, hi, c in zip(low, high, comparable)]
    for col in ("bits_per_token", "bits_per_byte"):
        shown[col] = [_fmt_number(b) for b in frame[col]] if col in frame else ""
    for col in ("fit_seconds", "eval_seconds"):
        shown[col] = [f"{s:.2f}" for s in frame[col]]
    if "tuned_on_valid" in frame:
        shown["split"] = [f"{s}*" if bool(t) else s for s, t in zip(frame["split"], frame["tuned_on_valid"])]
    shown = shown[[c for c in PRINT_COLUMNS if c in shown]]
    shown = shown.rename(columns={"bits_per_token": "bits/token", "bits_per_byte": "bits/byte", "ppl_95": "95% CI",
                                  "fit_seconds": "fit_s", "eval_seconds": "eval_s"})
    text = shown.to_string(index=False)
    if "tuned_on_valid" in frame and frame["tuned_on_valid"].astype(bool).any():
        text += "\n* valid was used to fit this model (tuning or early stopping): that row is not held out"
    return text


def _fmt_ppl(ppl, comparable) -> str:
    if not comparable:
        return "n/a"
    if isinstance(ppl, float) and math.isnan(ppl):
        return "nan"
    return "inf" if ppl == math.inf else f"{ppl:.2f}"


def _fmt_interval(low, high) -> str:
    if not (isinstance(low, float) and isinstance(high, float)) or math.isnan(low) or math.isnan(high):
        return ""
    return f"[{_fmt_bound(low)}, {_fmt_bound(high)}]"


def _fmt_bound(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.2f}"


def _fmt_number(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else str(value)
