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

#: scores[(model, split)] -> :class:`lmbench.scoring.splits.SplitScores`, or float64 log-probabilities (N,) of the
#: run's tokens.
Scores = dict
LN2 = math.log(2.0)


@dataclass(frozen=True)
class Targets:
    """What every model of a run scored on one split: ids, line boundaries and the bytes of each line."""

    ids: np.ndarray
    line_offsets: np.ndarray
    line_bytes: np.ndarray | None = None

    @property
    def tokens_by_line(self) -> np.ndarray:
        return np.diff(self.line_offsets)


def _logprobs(scores) -> np.ndarray:
    return scores.logprobs if hasattr(scores, "logprobs") else scores


def _unit(model: str, scores) -> str:
    """What a model's units are: the run's tokens ("run"), or its own (one unit group per model)."""
    if getattr(scores, "own_tokens", False):
        return f"own:{model}"
    return getattr(scores, "unit", "run")


def _offsets(scores, target: Targets) -> np.ndarray:
    offsets = getattr(scores, "line_offsets", None)
    return target.line_offsets if offsets is None else offsets


def bootstrappable(table: pd.DataFrame, scores: Scores, split: str) -> list[str]:
    """Models of ``split`` whose scores exist and are probabilities without NaN."""
    rows = table[(table["split"] == split) & table["comparable"].astype(bool)]
    return [m for m, nan in zip(rows["model"], rows["n_nan"]) if (m, split) in scores and not nan]


def intervals_and_pairs(table: pd.DataFrame, scores: Scores, targets: dict[str, Targets], n_resamples: int,
                        seed: int = 0, level: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Paired bootstrap over lines for every split: ``ppl_low``/``ppl_high`` filled in, and all pairs.

    Models over the same units (the run's tokens) are compared by perplexity; a pair with a model over
    its own tokens (a pretrained LM), or from a run of other tokens, by bits per byte: on the same
    resampled lines, the ratio of total NLL (``metric`` says which). Every model is resampled on the
    same lines (one seed), so all comparisons are paired.

    Returns:
        (the table with interval columns, the pairwise comparison table of every split).
    """
    table = table.copy()
    table["ppl_low"], table["ppl_high"] = math.nan, math.nan
    pairs = []
    for split in sorted({s for _, s in scores}, key=["valid", "test"].index):
        target = targets.get(split)
        models = bootstrappable(table, scores, split)
        if not models or n_resamples <= 0:
            continue
        groups: dict[str, list[str]] = {}
        for m in models:
            groups.setdefault(_unit(m, scores[(m, split)]), []).append(m)
        results = {}
        for unit, members in groups.items():
            offsets = [_offsets(scores[(m, split)], target) for m in members]
            nll_by_line = np.stack([-line_sums(_logprobs(scores[(m, split)]), o)
                                    for m, o in zip(members, offsets)])  # (M, L)
            result = bootstrap_perplexity(nll_by_line, np.diff(offsets[0]), n_resamples, seed, level)
            results[unit] = (members, nll_by_line, result)
            bounds = result.intervals()
            for model, low, high in zip(members, bounds["ppl_low"], bounds["ppl_high"]):
                where = (table["model"] == model) & (table["split"] == split)
                table.loc[where, ["ppl_low", "ppl_high"]] = low, high
            if len(members) > 1:
                pairs.append(result.pairwise(members).assign(split=split, metric="perplexity"))
        if len(results) > 1:
            pairs.append(_bytes_pairs(results, target, n_resamples, seed, level).assign(split=split))
    compare = pd.concat(pairs, ignore_index=True) if pairs else pd.DataFrame(columns=COMPARE_COLUMNS)
    compare = _with_bits_per_byte(compare, table)
    return table, compare.reindex(columns=COMPARE_COLUMNS)


def _bytes_pairs(results: dict, target: Targets, n_resamples: int, seed: int, level: float) -> pd.DataFrame:
    """Pairs of models over different units, compared by bits per byte (ratio of resampled total NLL)."""
    from .bootstrap import nll_total_pairs

    members = [m for unit_members, _, _ in results.values() for m in unit_members]
    nll = np.concatenate([nll for _, nll, _ in results.values()])  # (M, L)
    unit_of = [unit for unit, (unit_members, _, _) in results.items() for _ in unit_members]
    frame = nll_total_pairs(nll, members, n_resamples, seed, level)
    across = [unit_of[members.index(a)] != unit_of[members.index(b)] for a, b in zip(frame["model_a"], frame["model_b"])]
    return frame[across].assign(metric="bits_per_byte")


def _with_bits_per_byte(compare: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Every pair's bits per byte (from the table) and their ratio; the metric column filled in."""
    if not len(compare):
        return compare
    bpb = {(m, s): b for m, s, b in zip(table["model"], table["split"], table["bits_per_byte"])}
    compare = compare.copy()
    compare["bpb_a"] = [bpb.get((m, s), math.nan) for m, s in zip(compare["model_a"], compare["split"])]
    compare["bpb_b"] = [bpb.get((m, s), math.nan) for m, s in zip(compare["model_b"], compare["split"])]
    with np.errstate(divide="ignore", invalid="ignore"):
        compare["bpb_ratio"] = compare["bpb_a"].to_numpy(dtype=float) / compare["bpb_b"].to_numpy(dtype=float)
    return compare


COMPARE_COLUMNS = ["split", "model_a", "model_b", "ppl_a", "ppl_b", "ppl_ratio", "ratio_low", "ratio_high",
                   "p_a_better", "p_b_better", "n_resamples", "n_ratio_undefined", "metric", "bpb_a", "bpb_b",
                   "bpb_ratio"]


def buckets(table: pd.DataFrame, scores: Scores, targets: dict[str, Targets], train_counts: np.ndarray,
            unk_id: int) -> pd.DataFrame:
    """Perplexity by training frequency of the target token, every comparable model over the run's tokens."""
    frames = []
    for split, target in targets.items():
        models = [m for m in bootstrappable(table, scores, split) if _unit(m, scores[(m, split)]) == "run"]
        if models:
            frame = bucket_table({m: _logprobs(scores[(m, split)]) for m in models}, target.ids, train_counts, unk_id)
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
