"""Perplexity by training frequency of the target token: where a model's loss comes from.

Every scored token is put in a bucket by how often its type occurs in the TRAINING split: ``<unk>``
targets on their own, then counts 1, 2-10, 11-100, 101-1,000, 1,001-10,000 and over 10,000. The
end-of-line token is an ordinary token here (it occurs once per training line), so it falls in a
count bucket like any other. Per bucket: tokens, total NLL, perplexity (exp of NLL per token) and
the bucket's share of the model's total NLL.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..scoring.metrics import exp_or_inf
from ..scoring.lines import InvalidScoresError

#: Bucket labels, in table order; bucket i >= 1 holds train counts from BUCKET_LOWER[i-1] to BUCKET_LOWER[i] - 1.
BUCKET_LABELS = ("<unk>", "1", "2-10", "11-100", "101-1k", "1k-10k", ">10k")
#: Smallest train count of each count bucket ("1" ... ">10k"); 1k = 1000, so "1k-10k" is 1,001-10,000.
BUCKET_LOWER = np.array([1, 2, 11, 101, 1001, 10001])


def train_counts(train_ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """Training count of every token id (end-of-line and ``<unk>`` included).

    Args:
        train_ids: the training split (N,), ids in 0..vocab_size-1.
        vocab_size: V, ``len(vocab)``.

    Returns:
        int64 (V,).
    """
    train_ids = np.asarray(train_ids)
    if train_ids.ndim != 1 or (train_ids.size and (train_ids.min() < 0 or train_ids.max() >= vocab_size)):
        raise InvalidScoresError(f"training ids must be a flat array of ids in 0..{vocab_size - 1}; "
                                 f"pass the train split encoded with the run's vocabulary")
    return np.bincount(train_ids, minlength=vocab_size).astype(np.int64)


def bucket_index(target_ids: np.ndarray, counts: np.ndarray, unk_id: int) -> np.ndarray:
    """Bucket (index into :data:`BUCKET_LABELS`) of every target token.

    Args:
        target_ids: scored ids (N,).
        counts: (V,) training counts from :func:`train_counts`.
        unk_id: the ``<unk>`` id (bucket 0 whatever its count).

    Returns:
        int8 (N,). A target other than ``<unk>`` with training count 0 raises: the vocabulary is
        built from train, so such counts come from another split.
    """
    target_ids = np.asarray(target_ids)
    counts = np.asarray(counts)
    if target_ids.ndim != 1 or (target_ids.size and (target_ids.min() < 0 or target_ids.max() >= counts.size)):
        raise InvalidScoresError(f"target ids must be a flat array of ids in 0..{counts.size - 1} "
                                 f"(the vocabulary of the counts)")
    target_counts = counts[target_ids]  # (N,)
    is_unk = target_ids == unk_id  # (N,)
    unseen = (target_counts < 1) & ~is_unk
    if unseen.any():
        first = int(target_ids[np.argmax(unseen)])
        raise InvalidScoresError(f"target id {first} has training count 0 but is not <unk>; "
                                 f"take counts from the training split the vocabulary was built from")
    index = np.searchsorted(BUCKET_LOWER, target_counts, side="right")  # (N,) 1..6 for counts >= 1
    return np.where(is_unk, 0, index).astype(np.int8)


def bucket_table(scores: Mapping[str, np.ndarray], target_ids: np.ndarray, counts: np.ndarray,
                 unk_id: int) -> pd.DataFrame:
    """Tokens, NLL, perplexity and share of the NLL per frequency bucket, for every model.

    A bucket holding a zero-probability token has infinite NLL and perplexity; the model's total
    NLL is then infinite too, and all its ``share_nll`` values are NaN (a share of an infinite total
    is not informative; ``n_zero_prob`` shows where the zeros are). Empty buckets are omitted.

    Args:
        scores: {model name: (N,) per-token natural-log probabilities of ``target_ids``}.
        target_ids: the scored split (N,).
        counts: (V,) training counts from :func:`train_counts`.
        unk_id: the ``<unk>`` id.

    Returns:
        Rows per model in bucket order: model, bucket, n_tokens, nll_nats, perplexity, n_zero_prob, share_nll.
    """
    if not scores:
        raise InvalidScoresError("no model scores given for the bucket table; score at least one model")
    index = bucket_index(target_ids, counts, unk_id)  # (N,)
    logprobs = _stack_scores(scores, np.shape(target_ids))  # (M, N)
    m, k = logprobs.shape[0], len(BUCKET_LABELS)
    flat = (np.arange(m)[:, None] * k + index[None, :]).ravel()  # (M*N,) model-major bucket index
    zero = np.isneginf(logprobs)  # (M, N)
    n_tokens = np.bincount(index, minlength=k)  # (K,)
    finite_nll = np.bincount(flat, weights=np.where(zero, 0.0, -logprobs).ravel(), minlength=m * k).reshape(m, k)
    n_zero = np.bincount(flat, weights=zero.ravel(), minlength=m * k).reshape(m, k).astype(np.int64)  # (M, K)
    nll = np.where(n_zero > 0, np.inf, finite_nll)  # (M, K)
    total = nll.sum(axis=1, keepdims=True)  # (M, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(np.isinf(total), np.nan, nll / total)  # (M, K)
        ppl = exp_or_inf(nll / n_tokens)  # (M, K); empty buckets dropped below
    keep = np.tile(n_tokens > 0, m)  # (M*K,)
    frame = pd.DataFrame({
        "model": np.repeat(list(scores), k), "bucket": np.tile(BUCKET_LABELS, m),
        "n_tokens": np.tile(n_tokens, m), "nll_nats": nll.ravel(), "perplexity": ppl.ravel(),
        "n_zero_prob": n_zero.ravel(), "share_nll": share.ravel(),
    })
    return frame[keep].reset_index(drop=True)


def _stack_scores(scores: Mapping[str, np.ndarray], shape: tuple) -> np.ndarray:
    """(M, N) float64 log-probabilities, checked: same shape as the targets, no NaN, no +inf."""
    for name, values in scores.items():
        if np.shape(values) != shape:
            raise InvalidScoresError(f"{name}: scores of shape {np.shape(values)} for targets of shape {shape}; "
                                     f"score every token of the same split")
    logprobs = np.stack([np.asarray(v, dtype=np.float64) for v in scores.values()])  # (M, N)
    if np.isnan(logprobs).any() or np.isposinf(logprobs).any():
        bad = [name for name, row in zip(scores, logprobs) if np.isnan(row).any() or np.isposinf(row).any()]
        raise InvalidScoresError(f"{', '.join(bad)}: NaN or +inf log-probabilities (not probabilities; never "
                                 f"counted as zero); fix the model's scores before the analysis")
    return logprobs
