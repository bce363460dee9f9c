"""From per-token scores to the tables a paper needs: intervals, pairwise comparisons, buckets, seeds.

Everything here reads the same inputs, whichever model family produced them: a results table
(one row per model and split, as in perplexity.csv) and each model's per-token log-probabilities on
the shared targets. Nothing is refitted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .buckets import bucket_table
from .bootstrap import bootstrap_perplexity
from ..scoring.lines import line_sums

#: scores[(model, split)] -> float64 log-probabilities (N,)
Scores = dict


@dataclass(frozen=True)
class Targets:
    """What every model of a run scored on one split: ids and line boundaries."""

    ids: np.ndarray
    line_offsets: np.ndarray

    @property
    def tokens_by_line(self) -> np.ndarray:
        return np.diff(self.line_offsets)


def bootstrappable(table: pd.DataFrame, scores: Scores, split: str) -> list[str]:
    """Models of ``split`` whose scores exist and are probabilities without NaN."""
    rows = table[(table["split"] == split) & table["comparable"].astype(bool)]
    return [m for m, nan in zip(rows["model"], rows["n_nan"]) if (m, split) in scores and not nan]


def intervals_and_pairs(table: pd.DataFrame, scores: Scores, targets: dict[str, Targets], n_resamples: int,
                        seed: int = 0, level: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Paired bootstrap over lines for every split: ``ppl_low``/``ppl_high`` filled in, and all pairs.

    Returns:
        (the table with interval columns, the pairwise comparison table of every split).
    """
    table = table.copy()
    table["ppl_low"], table["ppl_high"] = math.nan, math.nan
    pairs = []
    for split, target in targets.items():
        models = bootstrappable(table, scores, split)
        if not models or n_resamples <= 0:
            continue
        nll_by_line = np.stack([-line_sums(scores[(m, split)], target.line_offsets) for m in models])  # (M, L)
        result = bootstrap_perplexity(nll_by_line, target.tokens_by_line, n_resamples, seed, level)
        bounds = result.intervals()
        for model, low, high in zip(models, bounds["ppl_low"], bounds["ppl_high"]):
            where = (table["model"] == model) & (table["split"] == split)
            table.loc[where, ["ppl_low", "ppl_high"]] = low, high
        if len(models) > 1:
            pairs.append(result.pairwise(models).assign(split=split))
    compare = pd.concat(pairs, ignore_index=True) if pairs else pd.DataFrame(columns=COMPARE_COLUMNS)
    return table, compare[[c for c in COMPARE_COLUMNS if c in compare.columns]]


COMPARE_COLUMNS = ["split", "model_a", "model_b", "ppl_a", "ppl_b", "ppl_ratio", "ratio_low", "ratio_high",
                   "p_a_better", "p_b_better", "n_resamples", "n_ratio_undefined"]


def buckets(table: pd.DataFrame, scores: Scores, targets: dict[str, Targets], train_counts: np.ndarray,
            unk_id: int) -> pd.DataFrame:
    """Perplexity by training frequency of the target token, every comparable model and split."""
    frames = []
    for split, target in targets.items():
        models = bootstrappable(table, scores, split)
        if models:
            frame = bucket_table({m: scores[(m, split)] for m in models}, target.ids, train_counts, unk_id)
            frames.append(frame.assign(split=split))
    if not frames:
        return pd.DataFrame(columns=BUCKET_COLUMNS)
    return pd.concat(frames, ignore_index=True)[BUCKET_COLUMNS]


BUCKET_COLUMNS = ["model", "split", "bucket", "n_tokens", "nll_nats", "perplexity", "n_zero_prob", "share_nll"]


def seed_summary(table: pd.DataFrame, groups: dict[str, list[str]]) -> pd.DataFrame:
    """Mean and spread across seeds of every model fitted with several seeds.

    Args:
        table: the results table.
        groups: base label -> the labels of its per-seed fits (e.g. lstm -> [lstm@seed0, lstm@seed1]).

    Returns:
        One row per (model, split): n_seeds, ppl_mean, ppl_std (sample standard deviation, ddof 1),
        ppl_min, ppl_max, and the same for bits per token.
    """
    rows = []
    for base, labels in groups.items():
        for split, part in table[table["model"].isin(labels)].groupby("split", sort=False):
            ppl, bits = part["perplexity"].astype(float), part["bits_per_token"].astype(float)
            rows.append({"model": base, "split": split, "n_seeds": len(part),
                         "seeds": ",".join(str(s) for s in part["seed"]),
                         "ppl_mean": ppl.mean(), "ppl_std": ppl.std(ddof=1), "ppl_min": ppl.min(),
                         "ppl_max": ppl.max(), "bits_per_token_mean": bits.mean(),
                         "bits_per_token_std": bits.std(ddof=1)})
    return pd.DataFrame(rows)
