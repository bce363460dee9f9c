"""Perplexity by training frequency of the target token: bucket boundaries, hand-worked tables, zeros and NaN."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lmbench.analysis.buckets import BUCKET_LABELS, bucket_index, bucket_table, train_counts
from lmbench.scoring.lines import InvalidScoresError

UNK, EOS = 0, 1
# one id per boundary count: id 2 occurs once in train, id 3 twice, ..., id 11 10,001 times
BOUNDARY_COUNTS = [1, 2, 10, 11, 100, 101, 1000, 1001, 10000, 10001]
BOUNDARY_BUCKETS = ["1", "2-10", "2-10", "11-100", "11-100", "101-1k", "101-1k", "1k-10k", "1k-10k", ">10k"]


def boundary_corpus():
    """Train ids with the boundary counts (plus 3 end-of-line tokens, no <unk>) and the counts (V=12)."""
    train = np.concatenate([np.repeat(np.arange(2, 12), BOUNDARY_COUNTS), [EOS] * 3])
    np.random.default_rng(0).shuffle(train)
    return train, train_counts(train, 12)


def test_train_counts_count_every_id_of_the_training_split():
    train, counts = boundary_corpus()
    assert counts.tolist() == [0, 3] + BOUNDARY_COUNTS
    assert counts.dtype == np.int64


def test_every_bucket_boundary_falls_on_the_documented_side():
    _, counts = boundary_corpus()
    index = bucket_index(np.arange(2, 12), counts, UNK)
    assert [BUCKET_LABELS[i] for i in index] == BOUNDARY_BUCKETS
    assert index.dtype == np.int8


def test_unk_targets_are_their_own_bucket_whatever_their_count():
    counts = np.array([500, 3, 1])  # <unk> frequent in train: still the <unk> bucket
    assert bucket_index(np.array([0, 2, 1, 0]), counts, UNK).tolist() == [0, 1, 2, 0]


def test_the_end_of_line_token_is_bucketed_by_its_train_count():
    counts = np.array([0, 250, 7])  # 250 training lines: 250 end-of-line tokens
    assert BUCKET_LABELS[bucket_index(np.array([EOS]), counts, UNK)[0]] == "101-1k"


def test_hand_worked_bucket_table():
    _, counts = boundary_corpus()
    targets = np.array([2, 3, 4, 5, EOS, UNK, 11, 3])  # buckets 1, 2-10, 2-10, 11-100, 2-10, <unk>, >10k, 2-10
    logprobs = np.log([0.5, 0.25, 0.5, 0.1, 0.8, 0.01, 0.9, 0.125])
    table = bucket_table({"m": logprobs}, targets, counts, UNK)
    # buckets 101-1k and 1k-10k are empty and omitted; order as BUCKET_LABELS
    assert table.bucket.tolist() == ["<unk>", "1", "2-10", "11-100", ">10k"]
    assert table.n_tokens.tolist() == [1, 1, 4, 1, 1]
    nll_2_10 = -math.log(0.25 * 0.5 * 0.8 * 0.125)
    expected_nll = [-math.log(0.01), -math.log(0.5), nll_2_10, -math.log(0.1), -math.log(0.9)]
    np.testing.assert_allclose(table.nll_nats, expected_nll, rtol=1e-12)
    np.testing.assert_allclose(table.perplexity, [100.0, 2.0, math.exp(nll_2_10 / 4), 10.0, 1 / 0.9], rtol=1e-12)
    np.testing.assert_allclose(table.share_nll, np.array(expected_nll) / sum(expected_nll), rtol=1e-12)
    assert table.share_nll.sum() == pytest.approx(1.0)
    assert (table.model == "m").all() and table.n_zero_prob.sum() == 0


def test_bucket_table_agrees_with_a_pandas_groupby_for_several_models():
    rng = np.random.default_rng(1)
    counts = np.concatenate([[40, 5000], rng.integers(1, 30_000, 198)])
    targets = rng.integers(0, 200, 5000)
    scores = {"a": np.log(rng.uniform(0.01, 1, 5000)), "b": np.log(rng.uniform(0.01, 1, 5000))}
    table = bucket_table(scores, targets, counts, UNK)
    labels = np.array(BUCKET_LABELS)[bucket_index(targets, counts, UNK)]
    for name, logprobs in scores.items():
        grouped = pd.DataFrame({"bucket": labels, "nll": -logprobs}).groupby("bucket")["nll"].agg(["sum", "size"])
        rows = table[table.model == name].set_index("bucket")
        assert list(rows.index) == [b for b in BUCKET_LABELS if b in grouped.index]
        np.testing.assert_allclose(rows.nll_nats, grouped.loc[rows.index, "sum"], rtol=1e-10)
        assert rows.n_tokens.tolist() == grouped.loc[rows.index, "size"].tolist()
        assert rows.share_nll.sum() == pytest.approx(1.0)


def test_a_zero_probability_makes_its_bucket_infinite_and_the_shares_nan():
    counts = np.array([0, 5, 1, 50])
    targets = np.array([2, 3, 3, EOS])
    table = bucket_table({"mle": np.array([-1.0, -np.inf, -2.0, -0.5]), "smooth": np.array([-1.0, -3.0, -2.0, -0.5])},
                         targets, counts, UNK)
    mle = table[table.model == "mle"].set_index("bucket")
    assert mle.loc["11-100", "nll_nats"] == np.inf and mle.loc["11-100", "perplexity"] == np.inf
    assert mle.loc["11-100", "n_zero_prob"] == 1 and mle.loc["1", "nll_nats"] == 1.0
    assert mle.share_nll.isna().all()
    smooth = table[table.model == "smooth"]
    assert smooth.share_nll.notna().all() and smooth.share_nll.sum() == pytest.approx(1.0)


def test_nan_scores_are_refused_never_read_as_zero():
    with pytest.raises(ValueError, match="NaN"):
        bucket_table({"bad": np.array([-1.0, np.nan])}, np.array([2, EOS]), np.array([0, 1, 1]), UNK)


def test_a_target_unseen_in_train_that_is_not_unk_is_refused():
    with pytest.raises(InvalidScoresError, match="training count 0"):
        bucket_index(np.array([1, 2]), np.array([0, 4, 0]), UNK)


def test_ids_outside_the_vocabulary_are_refused():
    with pytest.raises(InvalidScoresError, match="0..2"):
        train_counts(np.array([0, 1, 3]), 3)
    with pytest.raises(InvalidScoresError, match="target ids"):
        bucket_index(np.array([5]), np.array([0, 1, 1]), UNK)


def test_scores_of_another_length_than_the_targets_are_refused():
    with pytest.raises(InvalidScoresError, match="score every token"):
        bucket_table({"m": np.zeros(3)}, np.array([1, 1]), np.array([0, 2]), UNK)
