"""Zipf's law: rank-frequency statistics of 1..n-grams, fitted two ways.

Zipf's law says the r-th most frequent type has frequency f(r) proportional to r^-alpha.

* **Least squares** on log-log axes, log f = -alpha log r + c, over ranks 1..r_max, where r_max is
  the last rank whose count is at least ``min_count``: beyond it the curve turns into the flat
  steps of n-grams seen once or twice (the hapax tail), which sampling noise, not the law, shapes.
  Every rank weighs the same, so the many middle ranks set the slope.
* **Maximum likelihood** in the manner of Clauset, Shalizi and Newman (2009), "Power-law
  distributions in empirical data", SIAM Review 51(4): the counts of the types are taken as a
  sample from a discrete power law P(X = x) = x^-beta / zeta(beta, x_min), x >= x_min (zeta is the
  Hurwitz zeta function); beta maximizes the likelihood for each candidate x_min, and x_min is
  the candidate whose fitted law is closest to the data in Kolmogorov-Smirnov distance.

From beta to alpha: the rank of a type with count x is the number of types with count >= x,
r(x) = n_tail P(X >= x) ~ x^-(beta - 1), so x ~ r^(-1 / (beta - 1)): **alpha = 1 / (beta - 1)**
(beta = 2 is alpha = 1). The MLE covers the types with count >= x_min, which are ranks
1..n_tail: the head and middle of the curve, the hapax tail excluded when x_min > 1.

Neither fit follows the first few ranks of a natural text, which are flatter than any power law
(Mandelbrot's f ~ (r + b)^-alpha): each type weighs the same in both fits, and the top ten of a
few thousand types cannot move either exponent (docs/benchmarks.md shows it on Austen's *Emma*).
A fitted line that misses the observed count by more than :data:`MISS_FACTOR` at either end of its
ranks is named in the fit's ``note``.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.corpora import NAMED_CORPORA, SPLITS, RawCorpus, load_corpus, text_lines
from ..data.dataset import Dataset, build_dataset
from ..errors import LmbenchError, is_whole
from ..models.ngram.counts import NGramCounts
from ..data.tokenizers import Tokenizer

MIN_TAIL_TYPES = 50        # an MLE candidate x_min must leave at least this many types in the tail
MAX_X_MIN_CANDIDATES = 200  # candidate x_min values scanned (all of them up to this many)
BETA_BOUNDS = (1.0 + 1e-6, 12.0)  # search interval for the exponent of the frequency distribution
MISS_FACTOR = 2.0  # a fitted line further than this factor from the observed count at an end of its ranks misses

LEAST_SQUARES_NOTE = (
    "Least squares: log f = -alpha log r + c over ranks 1..r_max, r_max = last rank with count >= {min_count} "
    "(--min-count); the hapax tail beyond it is flat steps of counts 1, 2, ... and would bend the line.")
MLE_NOTE = (
    "MLE (Clauset, Shalizi & Newman 2009): the counts of the types with count >= x_min follow "
    "P(x) ~ x^-beta, x_min chosen by the Kolmogorov-Smirnov distance (ks); rank exponent alpha = 1/(beta - 1); "
    "it covers ranks 1..(types with count >= x_min).")


@dataclass(frozen=True)
class PowerLawFit:
    """A discrete power law P(X = x) = x^-beta / zeta(beta, x_min), x >= x_min, fitted to counts.

    ``beta`` and ``x_min`` are None when no fit is possible, and ``note`` says why.
    """

    beta: float | None
    x_min: int | None
    n_tail: int
    ks: float | None
    note: str = ""

    @property
    def alpha(self) -> float | None:
        """Zipf's rank-frequency exponent, 1 / (beta - 1)."""
        return None if self.beta is None else 1.0 / (self.beta - 1.0)


@dataclass(frozen=True)
class ZipfFit:
    """Rank-frequency summary and both Zipf fits for one n (None where a fit is impossible: see ``note``)."""

    n: int
    n_tokens: int
    n_types: int
    n_hapax: int
    alpha: float | None
    intercept: float | None
    r2: float | None
    rank_min: int | None
    rank_max: int | None
    n_points: int
    mle_alpha: float | None
    mle_beta: float | None
    mle_x_min: int | None
    mle_rank_max: int | None
    mle_ks: float | None
    note: str = ""


# ---------------------------------------------------------------- counting


def longest_line(ids: np.ndarray, eos_id: int) -> int:
    """Tokens in the longest line of an id array (end-of-line tokens not counted)."""
    ends = np.flatnonzero(ids == eos_id)
    if ids.size and (ends.size == 0 or ends[-1] != ids.size - 1):
        ends = np.append(ends, ids.size)                 # a last line without its end-of-line token
    lengths = np.diff(ends, prepend=-1) - 1               # (lines,)
    return int(lengths.max()) if lengths.size else 0


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


# ---------------------------------------------------------------- least squares


def fit_least_squares(counts: np.ndarray, min_count: int = 10) -> dict:
    """Least-squares fit of log f = -alpha log r + c over ranks 1..r_max (count >= min_count).

    Args:
        counts: counts in decreasing order (rank 1 first).
        min_count: the lowest count included in the fit.

    Returns:
        {alpha, intercept (natural log), r2, rank_min, rank_max, n_points, note}; the fitted values
        and the rank range are None, and ``note`` says why, when fewer than 3 ranks qualify or
        all of them have the same count.
    """
    use = counts >= min_count                             # a prefix: counts are sorted
    n_points = int(use.sum())
    none = dict(alpha=None, intercept=None, r2=None, rank_min=None, rank_max=None, n_points=n_points)
    if n_points < 3:
        return none | {"note": f"no least-squares fit: {n_points} rank{'s' * (n_points != 1)} with count >= "
                               f"{min_count} (needs 3); lower --min-count or use a longer text"}
    if counts[0] == counts[n_points - 1]:
        return none | {"note": f"no least-squares fit: all {n_points} ranks with count >= {min_count} have the "
                               f"same count ({int(counts[0])}), so there is no slope"}
    x = np.log(np.arange(1, n_points + 1))                # (P,) log rank
    y = np.log(counts[:n_points].astype(float))           # (P,) log count
    dx, dy = x - x.mean(), y - y.mean()
    slope = (dx @ dy) / (dx @ dx)
    r2 = (dx @ dy) ** 2 / ((dx @ dx) * (dy @ dy))
    return dict(alpha=float(-slope), intercept=float(y.mean() - slope * x.mean()), r2=float(r2), rank_min=1,
                rank_max=n_points, n_points=n_points, note="")


# ---------------------------------------------------------------- maximum likelihood


def fit_power_law(counts: np.ndarray, min_tail: int = MIN_TAIL_TYPES,
                  max_candidates: int = MAX_X_MIN_CANDIDATES) -> PowerLawFit:
    """Discrete power-law fit with x_min chosen by Kolmogorov-Smirnov distance (Clauset et al. 2009).

    For every candidate x_min (the distinct counts that leave at least ``min_tail`` types and two
    distinct counts in the tail; at most ``max_candidates`` of them, geometrically spaced among
    the distinct counts when there are more), beta maximizes the likelihood of the tail and the
    KS distance between the tail's empirical CDF and the fitted one is computed; all candidates
    at once, as arrays. The candidate with the smallest distance wins.

    Args:
        counts: the count of every type (any order).
        min_tail: the fewest types a fit may rest on.
        max_candidates: how many x_min values to try at most.

    Returns:
        The fit, or one with beta None and a note saying why none is possible.
    """
    values, n_of = np.unique(np.asarray(counts, dtype=np.int64), return_counts=True)  # (m,), ascending
    tail_n = np.cumsum(n_of[::-1])[::-1]                                            # (m,) types with count >= value
    tail_log = np.cumsum((n_of * np.log(values))[::-1])[::-1]                       # (m,) sum of log count there
    candidates = np.flatnonzero(tail_n[:-1] >= min_tail)                            # two distinct values at least
    if candidates.size == 0:
        why = ("all types have the same count" if values.size == 1 else
               f"only {int(tail_n[0])} types; it needs at least {min_tail}")
        return PowerLawFit(None, None, 0, None, f"no MLE fit: {why}")
    if candidates.size > max_candidates:
        spaced = np.geomspace(1, candidates.size, max_candidates)
        candidates = candidates[np.unique(np.round(spaced).astype(np.int64) - 1)]
    x_min = values[candidates].astype(float)                                         # (K,)
    beta = power_law_mle(tail_log[candidates], tail_n[candidates], x_min)           # (K,)
    ks = ks_distances(values, n_of, candidates, beta)                               # (K,)
    best = int(np.argmin(ks))
    fit = PowerLawFit(float(beta[best]), int(x_min[best]), int(tail_n[candidates[best]]), float(ks[best]))
    if not BETA_BOUNDS[0] + 1e-4 < fit.beta < BETA_BOUNDS[1] - 1e-4:
        return PowerLawFit(None, None, fit.n_tail, None,
                           f"no MLE fit: the exponent ran into its search bound (beta = {fit.beta:.3g})")
    return fit


def power_law_mle(log_sum: np.ndarray, n_tail: np.ndarray, x_min: np.ndarray, iterations: int = 64) -> np.ndarray:
    """Maximum-likelihood beta of discrete power laws, one per (tail, x_min), by golden-section search.

    The negative log-likelihood of n counts x_i >= x_min is n log zeta(beta, x_min) + beta sum log x_i,
    convex in beta, so a bracketing search converges to the one minimum; 64 golden-section steps
    shrink :data:`BETA_BOUNDS` to 1e-13 of its width, every candidate at once.

    Args:
        log_sum: (K,) sum of log x over each tail.
        n_tail: (K,) size of each tail.
        x_min: (K,) lower bound of each tail.
        iterations: golden-section steps.

    Returns:
        (K,) the exponents.
    """
    from scipy.special import zeta

    def nll(beta):
        return n_tail * np.log(zeta(beta, x_min)) + beta * log_sum

    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    lo, hi = np.full(x_min.shape, BETA_BOUNDS[0]), np.full(x_min.shape, BETA_BOUNDS[1])  # (K,)
    left, right = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    f_left, f_right = nll(left), nll(right)
    for _ in range(iterations):
        go_left = f_left < f_right                        # the minimum lies in [lo, right]
        lo, hi = np.where(go_left, lo, left), np.where(go_left, right, hi)
        left, right = np.where(go_left, hi - ratio * (hi - lo), right), np.where(go_left, left, lo + ratio * (hi - lo))
        moved = np.where(go_left, left, right)            # the one new point of each bracket
        f_moved = nll(moved)
        f_left, f_right = np.where(go_left, f_moved, f_right), np.where(go_left, f_left, f_moved)
    return (lo + hi) / 2.0


def ks_distances(values: np.ndarray, n_of: np.ndarray, candidates: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Kolmogorov-Smirnov distance between each tail's empirical CDF and its fitted power law.

    The empirical CDF is a step function; the fitted CDF F(x) = 1 - zeta(beta, x + 1) / zeta(beta, x_min)
    rises at every integer, so the largest gap over all integers x >= x_min is found at each observed
    value v (both CDFs including v) and just below it, at v - 1 (the empirical CDF still at the
    previous observed value).

    Args:
        values: (m,) distinct counts, ascending; ``n_of``: (m,) how many types have each.
        candidates: (K,) index into ``values`` of each x_min; ``beta``: (K,) its exponent.

    Returns:
        (K,) distances.
    """
    from scipy.special import zeta

    x_min = values[candidates].astype(float)[:, None]                                  # (K, 1)
    v = values.astype(float)[None, :]                                                  # (1, m)
    below = np.concatenate([[0], np.cumsum(n_of)])                                      # (m+1,) types below each value
    n_tail = (below[-1] - below[candidates])[:, None]                                  # (K, 1)
    emp_at = (below[None, 1:] - below[candidates][:, None]) / n_tail                   # (K, m) F_emp(v)
    emp_before = (below[None, :-1] - below[candidates][:, None]) / n_tail              # (K, m) F_emp(v - 1)
    norm = zeta(beta[:, None], x_min)                                                   # (K, 1)
    model_at = 1.0 - zeta(beta[:, None], v + 1.0) / norm                                # (K, m) F(v)
    model_before = 1.0 - zeta(beta[:, None], v) / norm                                  # (K, m) F(v - 1)
    in_tail = v >= x_min                                                                # (K, m)
    gap = np.maximum(np.abs(emp_at - model_at), np.where(v > x_min, np.abs(emp_before - model_before), 0.0))
    return np.where(in_tail, gap, 0.0).max(axis=1)


def power_law_curve(fit: PowerLawFit, points: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """The fitted law drawn on rank-frequency axes, from rank n_tail (count x_min) up to rank 1.

    The rank of count x is the expected number of types with count >= x, n_tail zeta(beta, x) /
    zeta(beta, x_min); the curve ends where that number reaches 1.

    Returns:
        (ranks, counts), both (points,).
    """
    from scipy.optimize import brentq
    from scipy.special import zeta

    norm = zeta(fit.beta, fit.x_min)

    def rank_of(x):
        return fit.n_tail * zeta(fit.beta, x) / norm

    top = float(fit.x_min)
    for _ in range(64):                                   # a law too flat to reach rank 1 ends at 2^64 x_min
        top *= 2.0
        if rank_of(top) <= 1.0:
            top = brentq(lambda x: math.log(rank_of(x)), fit.x_min, top)
            break
    counts = np.geomspace(fit.x_min, top, points)
    return rank_of(counts), counts


# ---------------------------------------------------------------- both fits


def fit_zipf(counts: np.ndarray, n: int, min_count: int = 10) -> ZipfFit:
    """Least-squares and maximum-likelihood Zipf fits of one n-gram order.

    Args:
        counts: counts in decreasing order (rank 1 first).
        n: the n-gram order (recorded in the result).
        min_count: the lowest count in the least-squares fit.

    Returns:
        The fit; a method that cannot fit leaves its fields None and says why in ``note``.
    """
    ls = fit_least_squares(counts, min_count)
    mle = fit_power_law(counts)
    note = "; ".join(text for text in (ls.pop("note"), mle.note) if text)
    fit = ZipfFit(n=n, n_tokens=int(counts.sum()), n_types=int(counts.size), n_hapax=int((counts == 1).sum()),
                  **ls, mle_alpha=mle.alpha, mle_beta=mle.beta, mle_x_min=mle.x_min,
                  mle_rank_max=mle.n_tail if mle.beta is not None else None, mle_ks=mle.ks, note=note)
    misses = fit_misses(fit, counts)
    return replace(fit, note="; ".join([note] * bool(note) + misses)) if misses else fit


def fit_lines(fit: ZipfFit) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``"kind: details"`` -> (ranks, counts) of each fit that exists, over the ranks it was fitted on.

    The kind ("least squares", "MLE") is the same for every n, so a plot can give each kind one
    style and one legend entry; the details are its exponent.
    """
    lines = {}
    if fit.alpha is not None:
        r = np.array([fit.rank_min, fit.rank_max], dtype=float)
        lines[f"least squares: alpha={fit.alpha:.2f}"] = (r, np.exp(fit.intercept) * r ** -fit.alpha)
    if fit.mle_alpha is not None:
        curve = power_law_curve(PowerLawFit(fit.mle_beta, fit.mle_x_min, fit.mle_rank_max, fit.mle_ks))
        lines[f"MLE: alpha={fit.mle_alpha:.2f}"] = curve
    return lines


def fit_misses(fit: ZipfFit, counts: np.ndarray, factor: float = MISS_FACTOR) -> list[str]:
    """A sentence for each fitted line that visibly misses the data: off by more than ``factor`` at an end of its ranks.

    Both ends of each line of :func:`fit_lines` (rank 1 or where the fitted counts start, and its
    last fitted rank) are compared with the observed count at the same rank; the worse end is named.
    """
    found = []
    for label, (ranks, fitted) in fit_lines(fit).items():
        worst = None
        for r, f in ((ranks[0], fitted[0]), (ranks[-1], fitted[-1])):
            rank = int(min(max(round(float(r)), 1), counts.size))
            off = max(f / counts[rank - 1], counts[rank - 1] / f)
            if off > factor and (worst is None or off > worst[0]):
                worst = (off, rank, f, int(counts[rank - 1]))
        if worst is not None:
            off, rank, f, observed = worst
            fitted_text = f"{f:,.0f}" if f >= 10 else f"{f:.2g}"
            found.append(f"the {label.partition(':')[0]} line misses the data by a factor {off:.1f} at rank "
                         f"{rank:,} (fitted {fitted_text}, observed {observed:,})")
    return found


# ---------------------------------------------------------------- texts and tables


def whole_text(raw: RawCorpus, tokenizer: Tokenizer) -> Dataset:
    """All splits of a corpus as one text, with a vocabulary of every type in it (no ``<unk>`` mapping)."""
    lines = [line for split in SPLITS for line in raw.splits.get(split, [])]
    return build_dataset(RawCorpus(raw.name, {"train": lines, "valid": [], "test": []}, raw.source), tokenizer)


@dataclass
class ZipfTables:
    """Zipf statistics of a text: the fits per n, and every n-gram's rank and count.

    Attributes:
        fits: one row per n (the columns of ``zipf.csv``).
        ranks: every n-gram type of every n: n, rank, ngram, count (sorted by n, then rank), the
            whole rank-frequency curve, to plot on log-log axes.
        name: what was counted (the corpus's name, or "text").
        tokenizer: the tokenizer used.
        min_count: the least-squares fit's lowest count.
    """

    fits: pd.DataFrame
    ranks: pd.DataFrame
    name: str
    tokenizer: Tokenizer
    min_count: int
    fit_objects: list = field(default_factory=list, repr=False)

    def __iter__(self):
        """``fits, ranks = lmbench.zipf(...)``."""
        return iter((self.fits, self.ranks))

    def top(self, k: int = 20) -> pd.DataFrame:
        """The ``k`` most frequent n-grams of each n (zipf_ranks.csv)."""
        return self.ranks[self.ranks["rank"] <= k].reset_index(drop=True)

    def curves(self) -> dict:
        """n -> counts in rank order (for the log-log plot)."""
        return {int(n): part["count"].to_numpy() for n, part in self.ranks.groupby("n", sort=True)}

    #: the folder the tables and figure were written to (None: not written).
    written_to: object = None

    def format(self) -> str:
        """The printed summary: what was counted, both fits with the ranks they cover, and how each was made."""
        head = f"{self.name}: {self.tokenizer.kind} tokens, normalize={self.tokenizer.normalize}, all splits"
        return head + "\n" + format_fits(self.fit_objects, self.min_count)


def analyze(dataset: Dataset, max_n: int = 3, min_count: int = 10) -> ZipfTables:
    """Zipf statistics of a dataset's training ids (see :func:`whole_text` for a whole corpus)."""
    if not is_whole(max_n) or max_n < 1:
        raise LmbenchError(f"max_n (--max-n) must be a whole number >= 1, got {max_n!r}")
    if not is_whole(min_count) or min_count < 1:
        raise LmbenchError(f"min_count (--min-count) must be a whole number >= 1, got {min_count!r}")
    ids = dataset.splits["train"]
    longest = longest_line(ids, dataset.vocab.eos_id)
    if longest == 0:
        raise LmbenchError("the text has no tokens; give a text with at least one non-empty line")
    if max_n > longest:
        tokens = f"{longest} token{'s' * (longest != 1)}"
        raise LmbenchError(f"max_n (--max-n) {max_n} is longer than the longest line ({tokens}) and n-grams do "
                           f"not cross lines; use {longest} or less")
    freqs, counts = zipf_counts(ids, len(dataset.vocab), dataset.vocab.eos_id, max_n)
    fits, frames = [], []
    sep = "" if dataset.tokenizer.kind == "char" else " "
    words = np.array(dataset.vocab.itos + ["<s>"], dtype=object)
    for n, (gram_ids, c) in freqs.items():
        fits.append(fit_zipf(c, n, min_count))
        tokens = counts.tokens_of(n, gram_ids) if n > 1 else gram_ids[:, None]    # (types, n)
        text = words[tokens[:, 0]]
        for j in range(1, n):
            text = text + sep + words[tokens[:, j]]
        frames.append(pd.DataFrame({"n": n, "rank": np.arange(1, c.size + 1), "ngram": text,
                                    "count": c.astype(np.int64)}))
    ranks = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["n", "rank", "ngram", "count"])
    return ZipfTables(fits_frame(fits), ranks, dataset.name, dataset.tokenizer, min_count, fits)


def fits_frame(fits: list[ZipfFit]) -> pd.DataFrame:
    """One row per n with every field of :class:`ZipfFit` (the content of ``zipf.csv``; NaN / <NA> for None)."""
    frame = pd.DataFrame([asdict(f) for f in fits], columns=list(ZipfFit.__dataclass_fields__))
    floats = {c: "float64" for c in ("alpha", "intercept", "r2", "mle_alpha", "mle_beta", "mle_ks")}
    return frame.astype(floats | {c: "Int64" for c in ("rank_min", "rank_max", "mle_x_min", "mle_rank_max")})


def zipf_source(source: str, encoding: str = "utf-8") -> RawCorpus:
    """The corpus ``source`` names (or a file name it looks like), else ``source`` itself as a text.

    A corpus name, ``nltk:...``, file or directory uses all its splits; literal text is a string with
    a newline, or one that is neither an existing path nor a corpus name. A single word that looks
    like a file name (``notes.txt``, ``data/x``) and does not exist is an error, not text.
    """
    return _zipf_source(source, encoding)


def _zipf_source(source: str, encoding: str) -> RawCorpus:
    """A corpus when ``source`` names one (or looks like a file name), else the text itself."""
    if not isinstance(source, str):
        raise LmbenchError(f"source must be a corpus name, a path or a text string, got {type(source).__name__}")
    one_word = bool(source) and not any(ch.isspace() for ch in source)
    looks_like_path = one_word and ("/" in source or os.sep in source or Path(source).suffix in _TEXT_SUFFIXES)
    is_corpus = "\n" not in source and (source.startswith("nltk:") or source in NAMED_CORPORA
                                        or looks_like_path or _is_existing_path(source))
    if is_corpus:
        return load_corpus(source, fractions=None, encoding=encoding)
    return RawCorpus("text", {"train": text_lines(source), "valid": [], "test": []}, {"kind": "text"})


def _is_existing_path(text: str) -> bool:
    try:
        return Path(text).expanduser().exists()
    except (OSError, ValueError):                         # too long for a file name, or a NUL character
        return False


_TEXT_SUFFIXES = {".txt", ".text", ".tokens", ".raw", ".csv", ".tsv", ".md", ".json", ".jsonl"}


# ---------------------------------------------------------------- printing


def format_fits(fits: list[ZipfFit], min_count: int) -> str:
    """The printed summary: both fits with the ranks they cover, how each was made, and why a fit is missing."""
    frame = fits_frame(fits)
    shown = pd.DataFrame({
        "n": frame["n"], "n_tokens": frame["n_tokens"], "n_types": frame["n_types"], "n_hapax": frame["n_hapax"],
        "alpha": [_number(a) for a in frame["alpha"]], "r2": [_number(r) for r in frame["r2"]],
        "ranks fitted": [f"1..{f.rank_max}" if f.rank_max is not None else "none" for f in fits],
        "mle alpha": [_number(a) for a in frame["mle_alpha"]], "beta": [_number(b) for b in frame["mle_beta"]],
        "x_min": [str(f.mle_x_min) if f.mle_x_min is not None else "-" for f in fits],
        "mle ranks": [f"1..{f.mle_rank_max}" if f.mle_rank_max is not None else "none" for f in fits],
        "ks": [_number(k) for k in frame["mle_ks"]],
    })
    lines = [shown.to_string(index=False), LEAST_SQUARES_NOTE.format(min_count=min_count), MLE_NOTE]
    lines += [f"n={f.n}: {f.note}" for f in fits if f.note]
    return "\n".join(lines)


def _number(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"
