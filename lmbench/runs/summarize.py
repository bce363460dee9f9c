"""After the models: a run's analysis tables from its per-token scores, then its tables, figures and report on disk.

:func:`analyse` is pure (tables in, tables out); :func:`write_analysis` writes what it found, each
file atomically, with the names of :mod:`lmbench.runs.files`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis import summary
from ..analysis.sweep import crossovers, describe_crossovers, sweep_table
from ..files import atomic_write_json, atomic_write_text
from . import files
from .results_json import results_document


@dataclass
class Analysis:
    """What the per-token scores of a run say: the table with intervals and the tables derived from it."""

    table: pd.DataFrame
    compare: pd.DataFrame
    buckets: pd.DataFrame
    seeds: pd.DataFrame
    sweep: pd.DataFrame = field(default_factory=pd.DataFrame)
    sweep_notes: list = field(default_factory=list)


def analyse(table: pd.DataFrame, scores: dict, targets: dict, train_counts: np.ndarray, unk_id: int, *,
            bootstrap: int, seed: int, seed_groups: dict, sweep_of: dict | None = None,
            failed: dict | None = None) -> Analysis:
    """Intervals, pairwise comparisons, frequency buckets, seed summaries and the sweep of a run.

    Args:
        table: perplexity.csv's rows.
        scores: (model, split) -> per-token log-probabilities.
        targets: split -> :class:`lmbench.analysis.summary.Targets`.
        train_counts: training count of every vocabulary id.
        unk_id: the vocabulary's ``<unk>``.
        bootstrap: resamples (0: no intervals, no comparisons).
        seed: the bootstrap's seed.
        seed_groups: model -> the labels of its per-seed fits (where there are several).
        sweep_of: for a data-size sweep, label -> (model, fraction); None otherwise.
        failed: label -> (family, train_tokens, why) of the fits that failed (a sweep lists them).
    """
    table, compare = summary.intervals_and_pairs(table, scores, targets, bootstrap, seed)
    buckets = summary.buckets(table, scores, targets, train_counts, unk_id)
    seeds = summary.seed_summary(table, seed_groups)
    found = Analysis(table, compare, buckets, seeds)
    if sweep_of:
        found.sweep = sweep_table(table, {k: v[0] for k, v in sweep_of.items()}, {k: v[1] for k, v in sweep_of.items()},
                                  failed)
        found.sweep_notes = describe_crossovers(crossovers(found.sweep))
    return found


def write_analysis(out: Path, found: Analysis, name: str, curves: dict, config: dict) -> None:
    """The analysis tables, the figures and report.md of a run directory."""
    from ..report.markdown import write_report
    from ..report.plots import (COST_COLUMNS, buckets_plot, cost_plot, cost_points, curves_plot, own_tokens,
                                perplexity_plot, sweep_plot)

    tables = {files.COMPARE_CSV: found.compare, files.BUCKETS_CSV: found.buckets, files.SEEDS_CSV: found.seeds,
              files.SWEEP_CSV: found.sweep}
    for filename, table in tables.items():
        if len(table):
            atomic_write_text(out / filename, table.to_csv(index=False))
    if len(found.sweep):
        sweep_plot(found.sweep, out / files.SWEEP_PNG, f"{name}: test perplexity by training size")
    frame = found.table
    perplexity_plot(frame, out / files.PERPLEXITY_PNG, f"{name}: held-out perplexity (95% bootstrap intervals)")
    if len(found.buckets):
        buckets_plot(found.buckets, out / files.BUCKETS_PNG, f"{name}: perplexity by training frequency of the target")
    if curves:
        run_tokens = set(frame.loc[~own_tokens(frame), "model"])  # a pretrained LM's perplexity is over its own tokens
        references = {m: p for m, p in reference_lines(frame, curves).items() if m in run_tokens}
        curves_plot(curves, out / files.CURVES_PNG, f"{name}: learning curves", references=references)
    if all(c in frame for c in COST_COLUMNS) and len(cost_points(frame)):
        cost_plot(frame, out / files.COST_PNG, f"{name}: test bits per byte against cost")
    figures = [f for f in files.FIGURES if (out / f).exists()]
    write_report(out / files.REPORT_MD, config, frame, found.compare, found.buckets, found.seeds, figures,
                 found.sweep)
    atomic_write_json(out / files.RESULTS_JSON, results_document(config, frame, found.compare))


def reference_lines(frame: pd.DataFrame, curves: dict) -> dict:
    """Valid perplexity of the run's models without learning curves (n-grams), for the curves plot.

    Only models over the run's tokens: a pretrained LM's perplexity is over its own tokens.
    """
    valid = frame[(frame["split"] == "valid") & frame["comparable"].astype(bool)]
    if "token_unit" in valid:
        valid = valid[valid["token_unit"].fillna("run").astype(str) == "run"]
    return {m: p for m, p in zip(valid["model"], valid["perplexity"]) if m not in curves}
