"""Paired bootstrap confidence intervals for corpus perplexity, resampling lines.

The bootstrap (Efron & Tibshirani 1993, *An Introduction to the Bootstrap*) estimates the sampling
distribution of a statistic by recomputing it on resamples drawn with replacement from the data.
The resampling unit here is the line, not the token: tokens within a line are strongly dependent
(each is predicted from the ones before it, and a hard line is hard throughout), while lines are
much closer to independent draws from the source. Resampling tokens would treat N dependent
tokens as N independent ones and give intervals that are too narrow.

The statistic is the corpus-level perplexity of each resample, the ratio estimator
``exp(sum_l w_l nll_l / sum_l w_l n_l)`` where ``w_l`` is how often line ``l`` was drawn: exactly
how the benchmark computes perplexity on the full split (total NLL over total tokens), never a mean
of per-line perplexities.

All models are scored on the same resamples (the paired bootstrap of Koehn 2004, "Statistical
Significance Tests for Machine Translation Evaluation"): differences between models are then not
drowned in the variation between resamples, and ``p_a_better`` (the fraction of resamples in which
model a has the lower perplexity) measures how consistently a beats b on this kind of text.

Intervals are percentile intervals, interpolated linearly (numpy's default ``linear`` method) on
the log scale (cross-entropy in nats, log perplexity ratio) and then exponentiated, so the interval
of b/a is exactly the reciprocal of that of a/b. A line holding a zero-probability token has
infinite NLL; every resample that draws it has infinite perplexity. Interpolating between a finite
and an infinite order statistic gives the infinite one (never numpy's NaN from ``inf - inf``), so a
model with a zero-probability token in one line gets a finite lower bound only if enough resamples
miss that line, and an infinite upper bound.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.dataset import line_offsets
from ..scoring.lines import InvalidScoresError, line_sums
from ..scoring.metrics import exp_or_inf

#: Bytes of one (rows, L) block of resample weights; the draws, counts and weights of a block
#: together stay under ~256 MB, whatever the number of resamples.
CHUNK_BYTES = 64 * 2**20
#: Multiply-adds below which a block's weighted sums skip BLAS (see :func:`_weighted_sums`).
SMALL_PRODUCT = 2**23


# ---------------------------------------------------------------- resampling


def rows_per_chunk(n_lines: int) -> int:
    """Resamples per block so that a (rows, n_lines) float64 block fits in :data:`CHUNK_BYTES`."""
    return max(1, CHUNK_BYTES // (8 * max(1, n_lines)))


def iter_resample_counts(n_lines: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Yield blocks (rows, L) of :func:`resample_counts`, in order; their concatenation is that array.

    The block size depends on ``n_lines`` only, so the same (n_lines, n_resamples, seed) always
    gives the same counts.
    """
    _check_resampling(n_lines, n_resamples, seed)
    rng = np.random.default_rng(seed)
    rows = rows_per_chunk(n_lines)
    for start in range(0, n_resamples, rows):
        b = min(rows, n_resamples - start)
        draws = rng.integers(0, n_lines, size=(b, n_lines), dtype=np.int64)  # (b, L) line drawn at each position
        draws += (np.arange(b, dtype=np.int64) * n_lines)[:, None]  # (b, L) index into the flat (b * L) counts
        yield np.bincount(draws.ravel(), minlength=b * n_lines).reshape(b, n_lines)  # (b, L)


def resample_counts(n_lines: int, n_resamples: int, seed: int) -> np.ndarray:
    """How often each line is drawn in each bootstrap resample (a multinomial(L, 1/L) per row).

    Args:
        n_lines: L, the number of lines (the resampling unit).
        n_resamples: B, the number of resamples.
        seed: seed of the random generator; the same seed gives the same counts.

    Returns:
        int64 (B, L); every row sums to L.
    """
    blocks = list(iter_resample_counts(n_lines, n_resamples, seed))
    return np.concatenate(blocks, axis=0)  # (B, L)


def _check_resampling(n_lines: int, n_resamples: int, seed: int) -> None:
    if int(n_lines) != n_lines or n_lines < 1:
        raise InvalidScoresError(f"the bootstrap needs at least one line, got n_lines={n_lines}")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise InvalidScoresError(f"n_resamples must be a positive integer, got {n_resamples}")
    if int(seed) != seed or seed < 0:
        raise InvalidScoresError(f"seed must be a non-negative integer, got {seed}")


# ---------------------------------------------------------------- percentiles on the log scale


def percentile_interval(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Central percentile interval of each column, ignoring NaN, safe with infinities.

    Linear interpolation between order statistics as numpy's default (position ``(k-1) q`` among
    the k non-NaN values), except that interpolating towards an infinite neighbour gives that
    infinity (numpy gives NaN from ``inf - inf`` or ``-inf + inf``). Between ``-inf`` and ``+inf``
    the lower bound takes ``-inf`` and the upper ``+inf`` (the wider interval), which keeps the
    bounds of ``-x`` the negated, swapped bounds of ``x``.

    Args:
        samples: (B, K) values, one column per statistic; NaN marks an undefined resample.
        level: coverage of the interval, e.g. 0.95 (bounds at 2.5% and 97.5%).

    Returns:
        (low, high), each (K,); NaN for a column with no defined value.
    """
    samples = np.asarray(samples, dtype=np.float64)
    tail = (1.0 - level) / 2.0
    ordered = np.sort(samples, axis=0)  # (B, K), NaN last
    k = (~np.isnan(samples)).sum(axis=0)  # (K,) defined values per column
    return _quantile(ordered, k, tail, "low"), _quantile(ordered, k, 1.0 - tail, "high")


def _quantile(ordered: np.ndarray, k: np.ndarray, q: float, side: str) -> np.ndarray:
    """The q-quantile of each column of ``ordered`` (B, K) whose first ``k`` (K,) entries are sorted values."""
    position = np.maximum(k - 1, 0) * q  # (K,)
    lo = np.floor(position).astype(np.int64)  # (K,)
    hi = np.minimum(lo + 1, np.maximum(k - 1, 0))  # (K,)
    frac = position - lo  # (K,)
    cols = np.arange(ordered.shape[1])
    a, b = ordered[lo, cols], ordered[hi, cols]  # (K,), (K,)
    with np.errstate(invalid="ignore"):
        between = a + (b - a) * frac  # NaN where an infinite neighbour is involved
    out = np.where((frac == 0) | (a == b), a, between)
    out = np.where(np.isneginf(a) & (frac > 0), -np.inf, out)
    out = np.where(np.isposinf(b) & (frac > 0), np.inf, out)
    if side == "low":
        out = np.where(np.isneginf(a) & np.isposinf(b) & (frac > 0), -np.inf, out)
    return np.where(k > 0, out, np.nan)


# ---------------------------------------------------------------- the bootstrap


@dataclass(frozen=True)
class BootstrapResult:
    """Per-resample corpus cross-entropies of M models on the same B line resamples.

    Attributes:
        cross_entropy_nats: (M,) total NLL / total tokens of each model on the full data.
        resampled_cross_entropy_nats: (B, M) the same on each resample (inf: the resample drew a
            line with a zero-probability token).
        level: coverage of the percentile intervals.
        seed: the resampling seed.
        n_lines: L, lines resampled.
        n_tokens: tokens in the full data.
        names: model names, if known (used when ``intervals``/``pairwise`` are given none).
    """

    cross_entropy_nats: np.ndarray
    resampled_cross_entropy_nats: np.ndarray
    level: float
    seed: int
    n_lines: int
    n_tokens: int
    names: tuple[str, ...] | None = None

    @property
    def n_models(self) -> int:
        return int(self.cross_entropy_nats.size)

    @property
    def n_resamples(self) -> int:
        return int(self.resampled_cross_entropy_nats.shape[0])

    @property
    def perplexity(self) -> np.ndarray:
        """(M,) corpus perplexity on the full data."""
        return exp_or_inf(self.cross_entropy_nats)

    @property
    def resampled_perplexity(self) -> np.ndarray:
        """(B, M) corpus perplexity of each resample."""
        return exp_or_inf(self.resampled_cross_entropy_nats)

    def intervals(self, names: Sequence[str] | None = None) -> pd.DataFrame:
        """Percentile interval of each model's perplexity.

        Returns:
            One row per model: ``model`` (or ``model_index`` when no names are known), ``ppl``
            (full data), ``ppl_low``, ``ppl_high``.
        """
        names = self._names(names)
        low, high = percentile_interval(self.resampled_cross_entropy_nats, self.level)  # (M,), (M,)
        first = {"model": list(names)} if names is not None else {"model_index": np.arange(self.n_models)}
        return pd.DataFrame({**first, "ppl": self.perplexity, "ppl_low": exp_or_inf(low),
                             "ppl_high": exp_or_inf(high)})

    def pairwise(self, names: Sequence[str] | None = None) -> pd.DataFrame:
        """Paired comparison of every unordered pair of models (a listed before b).

        A resample where both models are infinite has an undefined ratio (inf/inf): it is left out
        of the ratio interval (``n_ratio_undefined`` counts such resamples) and counts as neither
        a's nor b's win; ties count as neither too. ``p_a_better`` and ``p_b_better`` are fractions
        of all ``n_resamples`` resamples.

        Returns:
            One row per pair: model_a, model_b, ppl_a, ppl_b, ppl_ratio (= ppl_a / ppl_b on the full
            data; NaN if both are inf), ratio_low, ratio_high, p_a_better, p_b_better, n_resamples,
            n_ratio_undefined.
        """
        names = self._names(names)
        labels = list(names) if names is not None else list(range(self.n_models))
        a, b = np.triu_indices(self.n_models, k=1)  # (P,), (P,)
        ce = self.resampled_cross_entropy_nats  # (B, M)
        with np.errstate(invalid="ignore"):
            log_ratio = ce[:, a] - ce[:, b]  # (B, P), NaN where both are inf
            point_log_ratio = self.cross_entropy_nats[a] - self.cross_entropy_nats[b]  # (P,)
        low, high = percentile_interval(log_ratio, self.level)  # (P,), (P,)
        ppl = self.perplexity  # (M,)
        return pd.DataFrame({
            "model_a": [labels[i] for i in a], "model_b": [labels[j] for j in b],
            "ppl_a": ppl[a], "ppl_b": ppl[b], "ppl_ratio": exp_or_inf(point_log_ratio),
            "ratio_low": exp_or_inf(low), "ratio_high": exp_or_inf(high),
            "p_a_better": (ce[:, a] < ce[:, b]).mean(axis=0), "p_b_better": (ce[:, b] < ce[:, a]).mean(axis=0),
            "n_resamples": self.n_resamples, "n_ratio_undefined": np.isnan(log_ratio).sum(axis=0),
        })

    def _names(self, names: Sequence[str] | None) -> Sequence[str] | None:
        names = self.names if names is None else names
        if names is not None and len(names) != self.n_models:
            raise InvalidScoresError(f"{len(names)} names given for {self.n_models} models; give one name per model")
        return names


def bootstrap_perplexity(nll_by_line: np.ndarray, tokens_by_line: np.ndarray, n_resamples: int = 1000,
                         seed: int = 0, level: float = 0.95, names: Sequence[str] | None = None) -> BootstrapResult:
    """Paired bootstrap of corpus perplexity over lines, all models on the same resamples.

    Resample b's perplexity of model m is ``exp(sum_l w_bl nll_ml / sum_l w_bl n_l)`` with
    ``w_bl`` from :func:`resample_counts`; computed as one matrix product per block of resamples
    (blocks of at most :data:`CHUNK_BYTES` per (rows, L) float64 array).

    Args:
        nll_by_line: (M, L) total NLL in nats of each line under each model (``inf`` where a line
            holds a zero-probability token), or (L,) for one model. NaN raises.
        tokens_by_line: (L,) tokens per line (each at least 1).
        n_resamples: B, the number of bootstrap resamples.
        seed: resampling seed (same seed, same resamples).
        level: coverage of the percentile intervals.
        names: optional model names (M,).

    Returns:
        A :class:`BootstrapResult`.
    """
    nll = _check_nll(nll_by_line)  # (M, L)
    n_tok = _check_tokens(tokens_by_line, nll.shape[1])  # (L,)
    _check_resampling(nll.shape[1], n_resamples, seed)
    if not 0.0 < level < 1.0:
        raise InvalidScoresError(f"level must lie strictly between 0 and 1 (e.g. 0.95), got {level}")
    m, n_resamples = nll.shape[0], int(n_resamples)
    if names is not None and len(names) != m:
        raise InvalidScoresError(f"{len(names)} names given for {m} models; give one name per model")
    infinite = np.isinf(nll)  # (M, L)
    design = np.concatenate([np.where(infinite, 0.0, nll), infinite, n_tok[None, :]], axis=0)  # (2M+1, L)
    resampled = np.empty((n_resamples, m), dtype=np.float64)  # (B, M)
    row = 0
    for counts in iter_resample_counts(nll.shape[1], n_resamples, seed):
        sums = _weighted_sums(counts.astype(np.float64), design)  # (b, 2M+1): finite NLL, infinite lines, tokens
        total = np.where(sums[:, m:2 * m] > 0, np.inf, sums[:, :m])  # (b, M)
        with np.errstate(invalid="ignore", divide="ignore"):  # a resample of token-less lines: NaN, left out
            resampled[row:row + counts.shape[0]] = total / sums[:, -1:]
        row += counts.shape[0]
    point = np.where(infinite.any(axis=1), np.inf, np.where(infinite, 0.0, nll).sum(axis=1)) / n_tok.sum()  # (M,)
    return BootstrapResult(point, resampled, float(level), int(seed), int(nll.shape[1]), int(n_tok.sum()),
                           tuple(names) if names is not None else None)


def nll_total_pairs(nll_by_line: np.ndarray, names: Sequence[str], n_resamples: int = 1000, seed: int = 0,
                    level: float = 0.95) -> pd.DataFrame:
    """Paired comparison of every pair by total NLL on the same resampled lines: the ratio of bits per byte.

    On the same text, bits per byte of model a over model b is the ratio of their total NLLs (the
    bytes cancel), whatever units each model scored; resampled exactly as :func:`bootstrap_perplexity`
    resamples (same seed, same lines), so these pairs are paired with its comparisons.

    Returns:
        One row per pair (a listed before b): model_a, model_b, ratio_low, ratio_high (the 95%
        interval of bpb_a / bpb_b), p_a_better, p_b_better, n_resamples, n_ratio_undefined.
    """
    nll = _check_nll(nll_by_line)  # (M, L)
    m, n_resamples = nll.shape[0], int(n_resamples)
    infinite = np.isinf(nll)  # (M, L)
    design = np.concatenate([np.where(infinite, 0.0, nll), infinite], axis=0)  # (2M, L)
    log_total = np.empty((n_resamples, m), dtype=np.float64)  # (B, M)
    row = 0
    for counts in iter_resample_counts(nll.shape[1], n_resamples, seed):
        sums = _weighted_sums(counts.astype(np.float64), design)  # (b, 2M)
        with np.errstate(divide="ignore"):
            log_total[row:row + counts.shape[0]] = np.where(sums[:, m:] > 0, np.inf, np.log(sums[:, :m]))
        row += counts.shape[0]
    a, b = np.triu_indices(m, k=1)  # (P,), (P,)
    with np.errstate(invalid="ignore"):
        log_ratio = log_total[:, a] - log_total[:, b]  # (B, P)
    low, high = percentile_interval(log_ratio, level)
    return pd.DataFrame({
        "model_a": [names[i] for i in a], "model_b": [names[j] for j in b],
        "ratio_low": exp_or_inf(low), "ratio_high": exp_or_inf(high),
        "p_a_better": (log_total[:, a] < log_total[:, b]).mean(axis=0),
        "p_b_better": (log_total[:, b] < log_total[:, a]).mean(axis=0),
        "n_resamples": n_resamples, "n_ratio_undefined": np.isnan(log_ratio).sum(axis=0),
    })


def _weighted_sums(weights: np.ndarray, design: np.ndarray) -> np.ndarray:
    """``weights @ design.T`` for weights (b, L) and design (K, L), without BLAS threads on small products.

    Multithreaded BLAS costs more than it saves on products of a few million multiply-adds, and
    stalls when the cores are busy; numpy's own loop (einsum) is then faster.
    """
    if weights.size * design.shape[0] < SMALL_PRODUCT:
        return np.einsum("bl,kl->bk", weights, design)  # (b, K)
    return weights @ design.T  # (b, K)


def line_nll(logprobs: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Total NLL in nats of each line from per-token natural-log probabilities.

    Args:
        logprobs: (N,) or (M, N) per-token log-probabilities, ``-inf`` for probability zero.
        offsets: (L+1,) line offsets from :func:`~lmbench.data.dataset.line_offsets`.

    Returns:
        (L,) or (M, L) float64, ``inf`` for a line with a zero-probability token. NaN or ``+inf``
        log-probabilities raise (they are not probabilities; never counted as zero).
    """
    logprobs = np.asarray(logprobs, dtype=np.float64)
    if np.isnan(logprobs).any():
        raise InvalidScoresError(f"{int(np.isnan(logprobs).sum())} log-probabilities are NaN (a model or numerical "
                                 f"failure, not a probability); fix the model's scores before the analysis")
    if np.isposinf(logprobs).any():
        raise InvalidScoresError("some log-probabilities are +inf (probability infinity); fix the model's scores")
    return -line_sums(logprobs, offsets)


def bootstrap_scores(logprobs: Mapping[str, np.ndarray], ids: np.ndarray, eos_id: int, n_resamples: int = 1000,
                     seed: int = 0, level: float = 0.95) -> BootstrapResult:
    """:func:`bootstrap_perplexity` from each model's per-token log-probabilities on one split.

    Args:
        logprobs: {model name: (N,) per-token natural-log probabilities}, all on ``ids``.
        ids: the scored split (N,), lines ending with ``eos_id``.
        eos_id: the end-of-line id.
        n_resamples, seed, level: as in :func:`bootstrap_perplexity`.

    Returns:
        A :class:`BootstrapResult` with the models' names.
    """
    if not logprobs:
        raise InvalidScoresError("no model scores given to the bootstrap; score at least one model")
    offsets = line_offsets(ids, eos_id)  # (L+1,)
    for name, scores in logprobs.items():
        if np.shape(scores) != np.shape(ids):
            raise InvalidScoresError(f"{name}: {np.size(scores)} scores for {np.size(ids)} tokens; "
                                     f"score every token of the same split")
    nll = line_nll(np.stack([np.asarray(s, dtype=np.float64) for s in logprobs.values()]), offsets)  # (M, L)
    return bootstrap_perplexity(nll, np.diff(offsets), n_resamples, seed, level, names=list(logprobs))


def _check_nll(nll_by_line: np.ndarray) -> np.ndarray:
    nll = np.asarray(nll_by_line, dtype=np.float64)
    nll = nll[None, :] if nll.ndim == 1 else nll
    if nll.ndim != 2 or nll.shape[0] < 1 or nll.shape[1] < 1:
        raise InvalidScoresError(f"per-line NLL must be (M, L) with at least one model and one line, "
                                 f"got shape {np.shape(nll_by_line)}")
    if np.isnan(nll).any():
        raise InvalidScoresError(f"{int(np.isnan(nll).sum())} per-line NLL values are NaN (a model or numerical "
                                 f"failure, never a zero probability); fix the model's scores before the bootstrap")
    if np.isneginf(nll).any():
        raise InvalidScoresError("some per-line NLL values are -inf (probability infinity); fix the model's scores")
    return nll


def _check_tokens(tokens_by_line: np.ndarray, n_lines: int) -> np.ndarray:
    n_tok = np.asarray(tokens_by_line)
    if n_tok.shape != (n_lines,):
        raise InvalidScoresError(f"tokens per line must be ({n_lines},) like the per-line NLL, got shape {n_tok.shape}")
    if not np.issubdtype(n_tok.dtype, np.integer) or (n_tok < 0).any() or n_tok.sum() < 1:
        raise InvalidScoresError("tokens per line must be whole counts >= 0 with at least one token in all (a "
                                 "model's own tokens may leave a line empty); build lines with line_offsets(ids, eos_id)")
    return n_tok.astype(np.float64)
