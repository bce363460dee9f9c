"""The files a run directory holds, named in one place (the README's "What a run writes" lists the same)."""

from __future__ import annotations

from pathlib import Path

CONFIG = "config.json"
RESULTS_JSON = "results.json"
PERPLEXITY_CSV = "perplexity.csv"
COMPARE_CSV = "compare.csv"
BUCKETS_CSV = "buckets.csv"
SEEDS_CSV = "seeds.csv"
SWEEP_CSV = "sweep.csv"
REPORT_MD = "report.md"
PERPLEXITY_PNG = "perplexity.png"
CURVES_PNG = "curves.png"
BUCKETS_PNG = "buckets.png"
SWEEP_PNG = "sweep.png"
COST_PNG = "cost.png"
SCORES_DIR = "scores"
TARGETS_NPZ = "targets.npz"
MODELS_DIR = "models"
CURVES_DIR = "curves"
LOCK = ".lmbench.lock"

ZIPF_CSV = "zipf.csv"
ZIPF_RANKS_CSV = "zipf_ranks.csv"
ZIPF_PNG = "zipf.png"

#: the tables and figures of a run, in the order a listing names them.
TABLES = (PERPLEXITY_CSV, RESULTS_JSON, COMPARE_CSV, BUCKETS_CSV, SEEDS_CSV, SWEEP_CSV, REPORT_MD)
FIGURES = (PERPLEXITY_PNG, SWEEP_PNG, BUCKETS_PNG, CURVES_PNG, COST_PNG)
#: what a run writes at its top level (with the folders of per-model files, the whole of what it owns).
TOP_LEVEL = TABLES + FIGURES + (CONFIG,)
FOLDERS = (SCORES_DIR, MODELS_DIR, CURVES_DIR)


def scores_file(stem: str) -> str:
    """A model's per-token scores, relative to the run directory."""
    return f"{SCORES_DIR}/{stem}.npz"


def checkpoint_file(stem: str) -> str:
    """A model's checkpoint, relative to the run directory."""
    return f"{MODELS_DIR}/{stem}.pt"


def curve_file(stem: str) -> str:
    """A model's learning curve, relative to the run directory."""
    return f"{CURVES_DIR}/{stem}.csv"


def written(out: Path) -> list[str]:
    """The tables, figures and config that exist in a run directory, in listing order."""
    return [name for name in TOP_LEVEL if (Path(out) / name).exists()]
