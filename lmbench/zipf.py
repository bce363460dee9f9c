"""Zipf's law: rank-frequency statistics of 1..n-grams and a least-squares fit on log-log axes.

Zipf's law says the r-th most frequent type has frequency f(r) proportional to r^-alpha, i.e.
log f = -alpha log r + c. The fit uses ranks 1..r_max, where r_max is the last rank whose count
is at least ``min_count``: beyond it the curve turns into the flat steps of n-grams seen once or
twice (the hapax tail), which sampling noise, not the law, shapes, and which would flatten the slope.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from .corpora import SPLITS, RawCorpus
from .data import Dataset, build_dataset
from .errors import LmbenchError
from .models.ngram_counts import NGramCounts
from .plots import zipf_plot
from .textio import atomic_write_text, check_writable_dir
from .tokenize import Tokenizer


@dataclass(frozen=True)
class ZipfFit:
    """Rank-frequency summary and Zipf fit for one n."""

    n: int
    n_tokens: int
    n_types: int
    n_hapax: int
    alpha: float
    intercept: float
    r2: float
    rank_min: int
    rank_max: int
    n_points: int


def zipf_counts(ids: np.ndarray, vocab_size: int, eos_id: int, max_n: int):
    """Counts of the n-grams inside lines (none starts at ``<s>`` or ends at the line end), n = 1..max_n.

    Returns:
        ({n: (k-gram ids sorted by decreasing count, their counts)}, the NGramCounts they index).
    """
    counts = NGramCounts.from_ids(ids, max_n, vocab_size, eos_id)
    out = {}
    for n in range(1, max_n + 1):
        if n == 1:
            gram_ids = np.flatnonzero(counts.counts[1] > 0)
            gram_ids = gram_ids[gram_ids != eos_id]
        else:
            gram_ids = np.flatnonzero((counts.first_token(n) != counts.bos_id) & (counts.last_token(n) != eos_id))
        c = counts.counts[n][gram_ids]
        order = np.argsort(-c, kind="stable")
        out[n] = (gram_ids[order], c[order])
    return out, counts


def fit_zipf(counts: np.ndarray, n: int, min_count: int = 10) -> ZipfFit:
    """Least-squares fit of log f = -alpha log r + c over ranks 1..r_max (count >= min_count).

    Args:
        counts: counts in decreasing order (rank 1 first).
        n: the n-gram order (recorded in the result).
        min_count: the lowest count included in the fit.

    Returns:
        The fit; alpha is NaN when fewer than 3 ranks qualify.
    """
    ranks = np.arange(1, counts.size + 1)
    use = counts >= min_count
    r_max = int(ranks[use][-1]) if use.any() else 0
    base = dict(n=n, n_tokens=int(counts.sum()), n_types=int(counts.size), n_hapax=int((counts == 1).sum()),
                rank_min=1, rank_max=r_max, n_points=int(use.sum()))
    if use.sum() < 3:
        return ZipfFit(**base, alpha=math.nan, intercept=math.nan, r2=math.nan)
    reg = stats.linregress(np.log(ranks[use]), np.log(counts[use]))
    return ZipfFit(**base, alpha=float(-reg.slope), intercept=float(reg.intercept), r2=float(reg.rvalue ** 2))


def whole_text(raw: RawCorpus, tokenizer: Tokenizer) -> Dataset:
    """All splits of a corpus as one text, with a vocabulary of every type in it (no ``<unk>`` mapping)."""
    lines = [line for split in SPLITS for line in raw.splits.get(split, [])]
    return build_dataset(RawCorpus(raw.name, {"train": lines, "valid": [], "test": []}, raw.source), tokenizer)


def analyze(dataset: Dataset, max_n: int = 3, min_count: int = 10, top: int = 20):
    """Zipf statistics of a dataset's training ids (see :func:`whole_text` for a whole corpus).

    Returns:
        (fits: list[ZipfFit], ranks table: DataFrame with n, rank, ngram, count, curves: n -> counts).
    """
    if max_n < 1:
        raise LmbenchError(f"--max-n must be at least 1, got {max_n}")
    if min_count < 1:
        raise LmbenchError(f"--min-count must be at least 1, got {min_count}")
    freqs, counts = zipf_counts(dataset.splits["train"], len(dataset.vocab), dataset.vocab.eos_id, max_n)
    fits, rows, curves = [], [], {}
    for n, (gram_ids, c) in freqs.items():
        if c.size == 0:
            raise LmbenchError(f"the text has no {n}-grams inside a line; use --max-n {max(n - 1, 1)} or a longer text")
        fits.append(fit_zipf(c, n, min_count))
        curves[n] = c
        tokens = counts.tokens_of(n, gram_ids[:top]) if n > 1 else gram_ids[:top, None]
        sep = "" if dataset.tokenizer.kind == "char" else " "
        for rank, (toks, count) in enumerate(zip(tokens, c[:top]), start=1):
            rows.append({"n": n, "rank": rank, "ngram": sep.join(dataset.vocab.decode(toks)), "count": int(count)})
    return fits, pd.DataFrame(rows, columns=["n", "rank", "ngram", "count"]), curves


def write_zipf(dataset: Dataset, out: str | Path, max_n: int = 3, min_count: int = 10, top: int = 20) -> list[ZipfFit]:
    """Analyze and write ``zipf.csv``, ``zipf_ranks.csv`` and ``zipf.png`` into ``out``."""
    fits, ranks, curves = analyze(dataset, max_n, min_count, top)
    out = check_writable_dir(out)
    atomic_write_text(out / "zipf.csv", pd.DataFrame([asdict(f) for f in fits]).to_csv(index=False))
    atomic_write_text(out / "zipf_ranks.csv", ranks.to_csv(index=False))
    zipf_plot(curves, {f.n: asdict(f) for f in fits}, out / "zipf.png", f"{dataset.name}: Zipf's law")
    return fits


def format_fits(fits: list[ZipfFit], min_count: int) -> str:
    """The printed summary, including which ranks were fitted and why."""
    frame = pd.DataFrame([asdict(f) for f in fits])
    frame["ranks fitted"] = [f"1..{f.rank_max}" for f in fits]
    shown = frame[["n", "n_tokens", "n_types", "n_hapax", "alpha", "intercept", "r2", "ranks fitted"]]
    note = (f"Fit: least squares of log f = -alpha log r + c over ranks 1..r_max, r_max = last rank with "
            f"count >= {min_count} (--min-count); the hapax tail beyond it is flat steps of counts 1, 2, ... "
            f"and would bend the line.")
    return shown.to_string(index=False, float_format=lambda x: f"{x:.4f}") + "\n" + note
