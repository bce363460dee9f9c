"""Comparing several runs: one table, merged only where the runs scored identical targets.

Two runs are comparable when their valid and test splits have the same fingerprints (sha256 of the
token ids, recorded in config.json): same text, same tokenization, same vocabulary. Such runs are
merged into one group and compared with the paired bootstrap, exactly as models of one run are.
Runs over different data are refused unless explicitly allowed; then each set of identical data is
its own group, and only tokenization-independent columns (bits per byte, on the same text) can be
read across groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import LmbenchError
from .result import RunResult, load_run
from ..analysis.summary import Targets, intervals_and_pairs

HELD_OUT = ("valid", "test")
DEFAULTS = {"n_nan": 0, "tuned_on_valid": False, "bits_per_byte": np.nan, "seed": 0}


@dataclass
class ComparedRuns:
    """The merged table (with ``run`` and ``group`` columns) and the pairwise comparisons per group."""

    table: pd.DataFrame
    compare: pd.DataFrame
    n_groups: int

    def format(self) -> str:
        """The table and the comparisons of every group, as ``lmbench compare`` prints them."""
        from .table import format_table

        parts = []
        for group, part in self.table.groupby("group", sort=True):
            if self.n_groups > 1:
                parts.append(f"group {group} (identical data; compare across groups by bits/byte only, "
                             f"on the same text):")
            parts.append(format_table(part.reset_index(drop=True)))
            pairs = self.compare[self.compare["group"] == group]
            if len(pairs):
                shown = pairs[["split", "model_a", "model_b", "ppl_ratio", "ratio_low", "ratio_high", "p_a_better"]]
                parts.append("\n" + shown.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
            parts.append("")
        return "\n".join(parts)


def write_compared(out, merged: ComparedRuns) -> Path:
    """Write the merged perplexity.csv and compare.csv into ``out``, a new or empty directory (claimed as a run's)."""
    from ..files import atomic_write_text
    from . import files
    from .config import check_path
    from .rundir import OutputDir

    folder = OutputDir(check_path("out", out))
    path = folder.claim()
    try:
        atomic_write_text(path / files.PERPLEXITY_CSV, merged.table.to_csv(index=False))
        atomic_write_text(path / files.COMPARE_CSV, merged.compare.to_csv(index=False))
    finally:
        folder.finish(True)
    return path


def fingerprint(run: RunResult) -> tuple:
    prints = run.split_fingerprints
    return tuple(prints.get(split) for split in HELD_OUT)


def text_fingerprint(run: RunResult) -> tuple | None:
    """sha256 of the normalized text of the held-out splits (None for runs of lmbench 0.2, which did not record it)."""
    splits = run.config["data"].get("splits", {})
    found = tuple(splits.get(split, {}).get("text_sha256") for split in HELD_OUT)
    return found if all(found) else None


def group_key(run: RunResult) -> tuple:
    """Runs over the same text share a group (their models compare by bits per byte across tokenizations)."""
    text = text_fingerprint(run)
    return ("text",) + text if text else ("ids",) + fingerprint(run)


def group_runs(runs: list[RunResult], allow_different_data: bool) -> list[list[RunResult]]:
    """Runs grouped by identical held-out text; different text is an error unless allowed."""
    groups: dict[tuple, list[RunResult]] = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    if len(groups) > 1 and not allow_different_data:
        first, other = runs[0], next(r for r in runs if group_key(r) != group_key(runs[0]))
        split = next(s for s, a, b in zip(HELD_OUT, fingerprint(first), fingerprint(other)) if a != b)
        raise LmbenchError(f"{first.out_dir} and {other.out_dir} scored different {split} data (fingerprints "
                           f"{str(fingerprint(first)[HELD_OUT.index(split)])[:12]} vs "
                           f"{str(fingerprint(other)[HELD_OUT.index(split)])[:12]}: other text, tokenizer or "
                           f"vocabulary); pass allow_different_data=True (--allow-different-data) to list them in separate groups")
    return list(groups.values())


def run_names(runs: list[RunResult]) -> dict[Path, str]:
    """A short distinct name per run: its directory name, made unique if needed."""
    names, seen = {}, {}
    for run in runs:
        base = run.out_dir.resolve().name
        seen[base] = seen.get(base, 0) + 1
        names[run.out_dir] = base if seen[base] == 1 else f"{base}#{seen[base]}"
    return names


def labelled_rows(runs: list[RunResult], names: dict) -> pd.DataFrame:
    """Every run's rows; a model label is prefixed by its run's name where two runs share it."""
    frames = []
    for run in runs:
        frame = run.table.copy()
        for column, value in DEFAULTS.items():
            if column not in frame:
                frame[column] = value
        frames.append(frame.assign(run=names[run.out_dir], source_model=frame["model"]))
    table = pd.concat(frames, ignore_index=True)
    counts = table.drop_duplicates(["run", "source_model"])["source_model"].value_counts()
    shared = table["source_model"].map(counts) > 1
    table["model"] = np.where(shared, table["run"] + "/" + table["source_model"], table["source_model"])
    return table


@dataclass(frozen=True)
class UnitScores:
    """A saved model's scores with what its units are: the tokens of its run (one unit per tokenization), or its own."""

    logprobs: np.ndarray
    line_offsets: np.ndarray
    unit: str


def group_scores(runs: list[RunResult], table: pd.DataFrame, names: dict) -> tuple[dict, dict]:
    """Per-token scores of every model that saved them, and the shared targets of the group.

    Models of runs with the same token ids share the unit "run"; runs over the same text with other
    tokens get a unit each, so that pairs across them are compared by bits per byte.
    """
    scores, targets = {}, {}
    units = {}
    for run in runs:
        unit = units.setdefault(fingerprint(run), "run" if not units else f"run:{names[run.out_dir]}")
        for _, row in table[table["run"] == names[run.out_dir]].drop_duplicates("model").iterrows():
            info = run.config["models"].get(row["source_model"], {})
            if not info.get("scores"):
                continue
            own = str(row.get("token_unit", "run")) not in ("run", "nan")
            for split in HELD_OUT:
                saved = run.scores(row["source_model"], split)
                scores[(row["model"], split)] = UnitScores(saved.logprobs, saved.line_offsets,
                                                           f"own:{row['model']}" if own else unit)
                if not own:
                    targets.setdefault(split, Targets(saved.ids, saved.line_offsets))
    return scores, targets


def compare_runs(paths: list, *, allow_different_data: bool = False, n_resamples: int = 1000,
                 seed: int = 0) -> ComparedRuns:
    """One table of several runs, with paired bootstrap comparisons inside each group of identical data.

    Args:
        paths: run directories.
        allow_different_data: put runs over different data in separate groups instead of refusing.
        n_resamples: bootstrap resamples (0: none).
        seed: bootstrap seed.
    """
    if not paths:
        raise LmbenchError("give at least one run directory, e.g. lmbench compare results/a results/b")
    runs = [load_run(p) for p in paths]
    names = run_names(runs)
    tables, pairs = [], []
    for number, group in enumerate(group_runs(runs, allow_different_data), start=1):
        table = labelled_rows(group, names)
        scores, targets = group_scores(group, table, names)
        table, compare = intervals_and_pairs(table, scores, targets, n_resamples, seed)
        tables.append(table.assign(group=number))
        pairs.append(compare.assign(group=number))
    return ComparedRuns(pd.concat(tables, ignore_index=True), pd.concat(pairs, ignore_index=True), len(tables))
