"""Data-size sweeps: test perplexity against training tokens, and where a network overtakes the n-grams.

Every point of a sweep is scored on the same valid and test tokens with one vocabulary built from
the whole training split: only the amount of training text changes (the first lines of train), so N
is identical in every row and the points are comparable. A smaller training prefix therefore has
more out-of-training tokens that are still in the vocabulary: they are what the n-gram smoothing
and the networks must cope with as data shrinks.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

SWEEP_COLUMNS = ["model", "family", "fraction", "train_tokens", "split", "n_tokens", "perplexity", "ppl_low",
                 "ppl_high", "bits_per_token", "bits_per_byte", "status", "reason"]


def sweep_table(table: pd.DataFrame, base_of: dict, fraction_of: dict, failed: dict | None = None) -> pd.DataFrame:
    """The run's rows re-labelled by model and fraction (one row per model, fraction and split).

    Args:
        table: the run's rows.
        base_of, fraction_of: label -> model name, training fraction.
        failed: label -> (family, train_tokens, why) of the points that could not be fitted (e.g. a
            training prefix shorter than one batch): a row each, status "infeasible", with the reason.
    """
    frame = table.assign(fraction=table["model"].map(fraction_of), model=table["model"].map(base_of),
                         status="done", reason="")
    rows = [{"model": base_of[label], "family": family, "fraction": fraction_of[label], "train_tokens": tokens,
             "split": split, "status": "infeasible", "reason": why}
            for label, (family, tokens, why) in (failed or {}).items() if label in base_of for split in ("valid", "test")]
    if rows:
        frame = pd.concat([frame, pd.DataFrame(rows)], ignore_index=True)
    frame = frame.reindex(columns=SWEEP_COLUMNS)
    return frame.sort_values(["model", "fraction", "split"], kind="stable").reset_index(drop=True)


def crossovers(sweep: pd.DataFrame, split: str = "test") -> list[dict]:
    """For every neural model, where its perplexity falls below the best n-gram's at the same data size.

    Returns:
        One dict per neural model: model, best n-gram at each size, and ``overtakes_at_tokens``: the
        training size (log-linear interpolation between the two sweep points around the sign change
        of the perplexity gap) from which the network is better at every larger size; None if it is
        never better at the largest size, 0 if it is better at every size.
    """
    part = sweep[(sweep["split"] == split) & np.isfinite(sweep["perplexity"].astype(float))]
    ngrams = part[part["family"] == "n-gram"]
    if ngrams.empty:
        return []
    best = ngrams.loc[ngrams.groupby("fraction")["perplexity"].idxmin(), ["fraction", "model", "perplexity"]]
    best = best.set_index("fraction")
    found = []
    for model, rows in part[part["family"] == "neural"].groupby("model", sort=False):
        rows = rows[rows["fraction"].isin(best.index)].sort_values("fraction")
        gap = rows["perplexity"].to_numpy() - best.loc[rows["fraction"], "perplexity"].to_numpy()
        tokens = rows["train_tokens"].to_numpy(dtype=float)
        found.append({"model": model, "overtakes_at_tokens": _crossing(tokens, gap),
                      "best_ngram": dict(zip(best.index, best["model"]))})
    return found


def _crossing(tokens: np.ndarray, gap: np.ndarray) -> float | None:
    """Smallest size from which ``gap`` < 0 at every larger point (interpolated in log tokens)."""
    if gap.size == 0 or gap[-1] >= 0:
        return None
    losing = np.flatnonzero(gap >= 0)
    if losing.size == 0:
        return 0.0
    i = losing[-1]  # last point where the network is not better; it is better from i + 1 on
    x0, x1 = math.log(tokens[i]), math.log(tokens[i + 1])
    t = gap[i] / (gap[i] - gap[i + 1])
    return float(math.exp(x0 + t * (x1 - x0)))


def describe_crossovers(found: list[dict]) -> list[str]:
    """One sentence per neural model of a sweep."""
    lines = []
    for item in found:
        at = item["overtakes_at_tokens"]
        if at is None:
            lines.append(f"{item['model']} does not beat the best n-gram at the largest training size")
        elif at == 0:
            lines.append(f"{item['model']} beats the best n-gram at every training size of the sweep")
        else:
            lines.append(f"{item['model']} overtakes the best n-gram from about {at:,.0f} training tokens "
                         f"(log-linear interpolation between sweep points) and stays ahead")
    return lines
