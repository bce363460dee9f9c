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
    # what the tokens are ("run": the run's; else the model's own tokenizer), how a fit ended, what a row costs
    "token_unit", "stopped_by", "epochs_completed", "tokens_trained", "model_bytes", "saved_bytes",
    "fit_peak_bytes", "score_tokens_per_s",
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
    """Human-readable table of the main columns, with its footnotes.

    ``valid*``: the valid row of a model that used valid while fitting; ``model^``: a fit cut short
    (by the time budget); ``(own)``: figures over the model's own tokens, not the run's (compare such
    rows by bits per byte). The 95% CI column is left out when the run has no intervals.
    """
    shown = frame.copy()
    comparable = shown["comparable"].astype(bool)
    own = _column(frame, "token_unit", "run").astype(str) != "run"
    cut = _column(frame, "stopped_by", "").astype(str) == "time_budget"
    shown["perplexity"] = [_fmt_ppl(p, c) + (" (own)" if o else "") for p, c, o in zip(frame["perplexity"], comparable, own)]
    shown["n_tokens"] = [f"{n} (own)" if o else str(n) for n, o in zip(frame["n_tokens"], own)]
    low = _column(frame, "ppl_low", math.nan)
    high = _column(frame, "ppl_high", math.nan)
    shown["ppl_95"] = [_fmt_interval(lo, hi) if c else "" for lo, hi, c in zip(low, high, comparable)]
    for col in ("bits_per_token", "bits_per_byte"):
        shown[col] = [_fmt_number(b) for b in frame[col]] if col in frame else ""
    for col in ("fit_seconds", "eval_seconds"):
        shown[col] = [f"{s:.2f}" for s in frame[col]]
    if "tuned_on_valid" in frame:
        shown["split"] = [f"{s}*" if bool(t) else s for s, t in zip(frame["split"], frame["tuned_on_valid"])]
    shown["model"] = [f"{m}^" if c else m for m, c in zip(frame["model"], cut)]
    columns = [c for c in PRINT_COLUMNS if c in shown]
    if not any(shown["ppl_95"]):
        columns.remove("ppl_95")
    shown = shown[columns].rename(columns={"bits_per_token": "bits/token", "bits_per_byte": "bits/byte",
                                           "ppl_95": "95% CI", "fit_seconds": "fit_s", "eval_seconds": "eval_s"})
    text = shown.to_string(index=False)
    if "tuned_on_valid" in frame and frame["tuned_on_valid"].astype(bool).any():
        text += "\n* valid was used to fit this model (tuning or early stopping): that row is not held out"
    for model in dict.fromkeys(frame["model"][cut]):
        row = frame[frame["model"] == model].iloc[0]
        text += f"\n^ {model}: training cut short by the time budget ({_cut_text(row)}): not a finished fit"
    if own.any():
        text += ("\n(own): over the model's own tokens, not the run's: its perplexity is not comparable with the "
                 "others; compare bits/byte")
    return text


def _column(frame: pd.DataFrame, name: str, default) -> pd.Series:
    return frame[name].astype(object).where(frame[name].notna(), default) if name in frame else pd.Series([default] * len(frame), index=frame.index)


def _cut_text(row) -> str:
    parts = []
    if _present(row.get("epochs_completed")):
        parts.append(f"{int(row['epochs_completed'])} complete epoch(s)")
    if _present(row.get("tokens_trained")):
        parts.append(f"{int(row['tokens_trained']):,} tokens trained")
    return ", ".join(parts) or "see stopped_by in perplexity.csv"


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value != ""


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
