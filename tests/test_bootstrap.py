"""Line boundaries, line sums and the paired line bootstrap: hand-worked cases, invariants and coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmbench.analysis import bootstrap as bs
from lmbench.analysis.bootstrap import (bootstrap_perplexity, bootstrap_scores, line_nll, percentile_interval,
                                        resample_counts)
from lmbench.data.dataset import line_offsets
from lmbench.scoring.lines import InvalidScoresError, line_sums
from lmbench.errors import LmbenchError
from lmbench.scoring.metrics import eval_result

EOS = 1


# ---------------------------------------------------------------- lines


def test_line_offsets_split_after_each_end_of_line():
    ids = np.array([5, 7, EOS, 6, EOS, EOS, 9, EOS])
    assert line_offsets(ids, EOS).tolist() == [0, 3, 5, 6, 8]
    assert line_offsets(ids, EOS).dtype == np.int64


def test_tokens_after_the_last_end_of_line_form_a_final_line():
    assert line_offsets(np.array([5, EOS, 6, 7]), EOS).tolist() == [0, 2, 4]
    assert line_offsets(np.array([5, 6]), EOS).tolist() == [0, 2]


def test_an_empty_split_has_no_lines():
    offsets = line_offsets(np.array([], dtype=np.int32), EOS)
    assert offsets.tolist() == [0]
    assert line_sums(np.array([]), offsets).shape == (0,)


def test_line_sums_keep_minus_inf_inside_its_line():
    # a cumulative-sum difference would turn every later line into inf - inf = NaN
    values = np.array([-1.0, -2.0, -np.inf, -0.5, -3.0, -4.0])
    sums = line_sums(values, np.array([0, 2, 4, 6]))
    assert sums[0] == -3.0 and sums[1] == -np.inf and sums[2] == -7.0


def test_line_sums_of_empty_lines_are_zero():
    # np.add.reduceat alone returns values[start] for an empty segment
    values = np.array([1.0, 2.0, 4.0])
    assert line_sums(values, np.array([0, 0, 2, 2, 3])).tolist() == [0.0, 3.0, 0.0, 4.0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=12), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_line_sums_equal_a_python_loop(lengths, n_models, seed):
    rng = np.random.default_rng(seed)
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    values = rng.normal(size=(n_models, offsets[-1]))
    expected = [[values[m, offsets[i]:offsets[i + 1]].sum() for i in range(len(lengths))] for m in range(n_models)]
    np.testing.assert_allclose(line_sums(values, offsets), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(line_sums(values[0], offsets), expected[0], rtol=1e-12, atol=1e-12)


def test_offsets_that_do_not_span_the_values_are_refused():
    with pytest.raises(InvalidScoresError, match="line offsets"):
        line_sums(np.zeros(5), np.array([0, 2, 4]))
    with pytest.raises(InvalidScoresError, match="line offsets"):
        line_sums(np.zeros(4), np.array([0, 3, 2, 4]))


# ---------------------------------------------------------------- resampling


def test_resample_counts_have_one_row_per_resample_summing_to_the_number_of_lines():
    counts = resample_counts(37, 250, seed=3)
    assert counts.shape == (250, 37) and counts.dtype == np.int64
    assert (counts.sum(axis=1) == 37).all() and (counts >= 0).all()


def test_the_same_seed_gives_the_same_resamples_and_another_seed_does_not():
    assert np.array_equal(resample_counts(50, 20, seed=7), resample_counts(50, 20, seed=7))
    assert not np.array_equal(resample_counts(50, 20, seed=7), resample_counts(50, 20, seed=8))


def test_resample_counts_are_uniform_draws_with_replacement():
    # each line is missed by a resample with probability (1 - 1/L)^L and drawn once on average
    n_lines, n_resamples = 40, 5000
    counts = resample_counts(n_lines, n_resamples, seed=0)
    assert counts.mean() == pytest.approx(1.0)
    assert (counts == 0).mean() == pytest.approx((1 - 1 / n_lines) ** n_lines, abs=0.01)
    per_line = counts.sum(axis=0) / n_resamples  # each line as often as the others
    assert np.abs(per_line - 1).max() < 0.06


def test_blocks_of_resamples_stay_within_the_memory_budget():
    for n_lines in (1, 10, 4358, 10**6, 10**8):
        rows = bs.rows_per_chunk(n_lines)
        assert rows >= 1
        assert rows == 1 or rows * n_lines * 8 <= bs.CHUNK_BYTES


def test_a_bootstrap_in_many_blocks_uses_exactly_the_resample_counts(monkeypatch):
    monkeypatch.setattr(bs, "CHUNK_BYTES", 8 * 30 * 7)  # 7 resamples per block of 30 lines
    rng = np.random.default_rng(0)
    nll, tokens = rng.gamma(2.0, size=(3, 30)), rng.integers(1, 6, 30)
    result = bootstrap_perplexity(nll, tokens, n_resamples=50, seed=11)
    counts = resample_counts(30, 50, seed=11)
    expected = (counts @ nll.T) / (counts @ tokens)[:, None]  # (B, M) the ratio estimator
    np.testing.assert_allclose(result.resampled_cross_entropy_nats, expected, rtol=1e-12)


def test_small_and_large_products_give_the_same_resamples(monkeypatch):
    # small blocks skip BLAS (einsum), large ones use it; the two paths must agree
    rng = np.random.default_rng(8)
    nll, tokens = rng.gamma(2.0, size=(4, 90)), rng.integers(1, 6, 90)
    nll[2, 7] = np.inf
    small = bootstrap_perplexity(nll, tokens, n_resamples=120, seed=2)
    monkeypatch.setattr(bs, "SMALL_PRODUCT", 0)
    large = bootstrap_perplexity(nll, tokens, n_resamples=120, seed=2)
    np.testing.assert_allclose(small.resampled_cross_entropy_nats, large.resampled_cross_entropy_nats, rtol=1e-12)


# ---------------------------------------------------------------- percentiles


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 60), st.integers(1, 4), st.floats(0.5, 0.99), st.integers(0, 2**31 - 1))
def test_percentile_interval_equals_numpy_on_finite_values(n, k, level, seed):
    samples = np.random.default_rng(seed).normal(size=(n, k))
    low, high = percentile_interval(samples, level)
    tail = 100 * (1 - level) / 2
    np.testing.assert_allclose(low, np.percentile(samples, tail, axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(high, np.percentile(samples, 100 - tail, axis=0), rtol=1e-12, atol=1e-12)


def test_percentile_interval_leaves_nan_out_like_nanpercentile():
    samples = np.random.default_rng(0).normal(size=(200, 3))
    samples[::3, 1] = np.nan
    samples[:, 2] = np.nan
    low, high = percentile_interval(samples, 0.9)
    np.testing.assert_allclose(low[:2], np.nanpercentile(samples[:, :2], 5, axis=0), rtol=1e-12)
    np.testing.assert_allclose(high[:2], np.nanpercentile(samples[:, :2], 95, axis=0), rtol=1e-12)
    assert np.isnan(low[2]) and np.isnan(high[2])


def test_interpolating_towards_an_infinite_order_statistic_gives_inf_not_nan():
    # numpy's linear interpolation computes inf - inf here and returns NaN
    samples = np.array([[1.0], [2.0], [np.inf], [np.inf]])
    low, high = percentile_interval(samples, 0.5)  # positions 0.75 (1..2) and 2.25 (inf..inf)
    assert low[0] == pytest.approx(1.75) and high[0] == np.inf
    low, high = percentile_interval(np.array([[1.0], [np.inf]]), 0.5)  # positions 0.25 and 0.75 (1..inf)
    assert low[0] == np.inf and high[0] == np.inf
    low, high = percentile_interval(np.array([[-np.inf], [np.inf]]), 0.5)  # -inf..inf: the wider bound each side
    assert low[0] == -np.inf and high[0] == np.inf


# ---------------------------------------------------------------- the bootstrap on hand-checkable cases


def test_identical_lines_collapse_the_interval_to_the_point_estimate():
    nll = np.tile([[6.0], [9.0]], (1, 25))  # every line: 3 tokens, NLL 6 (model 0) and 9 (model 1)
    result = bootstrap_perplexity(nll, np.full(25, 3), n_resamples=200)
    table = result.intervals(["a", "b"])
    np.testing.assert_allclose(table.ppl, [math.exp(2.0), math.exp(3.0)], rtol=1e-12)
    np.testing.assert_allclose(table.ppl_low, table.ppl, rtol=1e-12)
    np.testing.assert_allclose(table.ppl_high, table.ppl, rtol=1e-12)


def test_a_model_better_on_every_line_wins_every_resample():
    rng = np.random.default_rng(1)
    nll_b = rng.gamma(3.0, size=80)
    nll = np.stack([nll_b - rng.uniform(0.1, 1.0, size=80), nll_b])
    row = bootstrap_perplexity(nll, rng.integers(1, 9, 80), n_resamples=500).pairwise(["a", "b"]).iloc[0]
    assert (row.model_a, row.model_b) == ("a", "b")
    assert row.p_a_better == 1.0 and row.p_b_better == 0.0
    assert row.ratio_low <= row.ppl_ratio <= row.ratio_high < 1.0
    assert row.ppl_ratio == pytest.approx(row.ppl_a / row.ppl_b, rel=1e-12)
    assert row.n_resamples == 500 and row.n_ratio_undefined == 0


def test_the_ratio_interval_of_b_over_a_is_the_reciprocal_of_a_over_b():
    rng = np.random.default_rng(2)
    nll, tokens = rng.gamma(3.0, size=(3, 60)), rng.integers(1, 9, 60)
    forward = bootstrap_perplexity(nll, tokens, n_resamples=301, seed=5).pairwise(["x", "y", "z"])
    backward = bootstrap_perplexity(nll[::-1], tokens, n_resamples=301, seed=5).pairwise(["z", "y", "x"])
    for a, b in [("x", "y"), ("x", "z"), ("y", "z")]:
        f = forward[(forward.model_a == a) & (forward.model_b == b)].iloc[0]
        r = backward[(backward.model_a == b) & (backward.model_b == a)].iloc[0]
        assert r.ratio_low == pytest.approx(1 / f.ratio_high, rel=1e-12)
        assert r.ratio_high == pytest.approx(1 / f.ratio_low, rel=1e-12)
        assert r.ppl_ratio == pytest.approx(1 / f.ppl_ratio, rel=1e-12)
        assert (r.p_a_better, r.p_b_better) == (f.p_b_better, f.p_a_better)


def test_resampled_perplexity_is_the_corpus_ratio_not_a_mean_of_line_perplexities():
    nll, tokens = np.array([[1.0, 30.0]]), np.array([1, 10])  # line perplexities e^1 and e^3
    result = bootstrap_perplexity(nll, tokens, n_resamples=400, seed=0)
    counts = resample_counts(2, 400, seed=0)
    expected = np.exp((counts @ nll[0]) / (counts @ tokens))
    np.testing.assert_allclose(result.resampled_perplexity[:, 0], expected, rtol=1e-12)
    # the resample drawing both lines once is the full corpus: exp(31 / 11), not (e + e^3) / 2
    both = (counts == 1).all(axis=1)
    assert both.any() and np.allclose(result.resampled_perplexity[both, 0], math.exp(31 / 11))


def test_the_point_estimate_is_the_perplexity_of_all_tokens():
    rng = np.random.default_rng(3)
    ids = np.concatenate([np.append(rng.integers(2, 9, rng.integers(0, 6)), EOS) for _ in range(40)] + [[4, 5]])
    scores = {"m1": np.log(rng.uniform(0.05, 1, ids.size)), "m2": np.log(rng.uniform(0.05, 1, ids.size))}
    result = bootstrap_scores(scores, ids, EOS, n_resamples=50)
    assert result.n_lines == 41 and result.n_tokens == ids.size
    table = result.intervals()
    assert table.model.tolist() == ["m1", "m2"]
    for name, row in zip(scores, table.itertuples()):
        assert row.ppl == pytest.approx(eval_result(scores[name]).perplexity, rel=1e-12)
        assert row.ppl_low <= row.ppl <= row.ppl_high


def test_without_names_the_models_are_numbered():
    result = bootstrap_perplexity(np.ones((2, 5)), np.ones(5, dtype=int), n_resamples=10)
    assert result.intervals().model_index.tolist() == [0, 1]
    assert result.pairwise()[["model_a", "model_b"]].values.tolist() == [[0, 1]]


# ---------------------------------------------------------------- zero probabilities and invalid scores


def test_a_zero_probability_line_gives_a_finite_low_bound_and_an_infinite_high_bound():
    rng = np.random.default_rng(4)
    nll = rng.gamma(3.0, size=(1, 200))
    nll[0, 17] = np.inf
    result = bootstrap_perplexity(nll, rng.integers(1, 9, 200), n_resamples=2000)
    # a resample misses line 17 with probability (1 - 1/200)^200 = 0.367 > 2.5%
    assert np.isinf(result.resampled_perplexity).mean() == pytest.approx(1 - (1 - 1 / 200) ** 200, abs=0.03)
    row = result.intervals().iloc[0]
    assert np.isfinite(row.ppl_low) and row.ppl_high == np.inf and row.ppl == np.inf


def test_zero_probabilities_in_many_lines_make_the_whole_interval_infinite():
    nll = np.random.default_rng(5).gamma(3.0, size=(1, 100))
    nll[0, :10] = np.inf  # a resample misses all ten with probability 0.9^100 ~ 3e-5
    row = bootstrap_perplexity(nll, np.full(100, 4), n_resamples=1000).intervals().iloc[0]
    assert row.ppl_low == np.inf and row.ppl_high == np.inf and not np.isnan(row.ppl_low)


def test_resamples_where_both_models_are_infinite_are_left_out_of_the_ratio():
    rng = np.random.default_rng(6)
    nll = rng.gamma(3.0, size=(2, 50))
    nll[:, 3] = np.inf  # both models give a zero probability in line 3
    result = bootstrap_perplexity(nll, rng.integers(1, 9, 50), n_resamples=1000)
    row = result.pairwise(["a", "b"]).iloc[0]
    undefined = int(np.isinf(result.resampled_cross_entropy_nats[:, 0]).sum())
    assert row.n_ratio_undefined == undefined > 0
    assert row.p_a_better + row.p_b_better == pytest.approx(1 - undefined / 1000)
    assert np.isnan(row.ppl_ratio)  # inf / inf on the full data
    assert 0 < row.ratio_low <= row.ratio_high < np.inf  # from the resamples that miss line 3


def test_nan_scores_are_refused_never_read_as_zero():
    nll = np.ones((2, 4))
    nll[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_perplexity(nll, np.ones(4, dtype=int))
    with pytest.raises(LmbenchError, match="NaN"):
        line_nll(np.array([-1.0, np.nan]), np.array([0, 2]))
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_scores({"m": np.array([-1.0, np.nan])}, np.array([3, EOS]), EOS)


@pytest.mark.parametrize("kwargs, match", [
    ({"tokens_by_line": np.ones(3, dtype=int)}, "tokens per line"),
    ({"tokens_by_line": np.array([1, -1, 1, 1])}, "whole counts >= 0"),
    ({"tokens_by_line": np.zeros(4, dtype=int)}, "at least one token in all"),
    ({"level": 1.0}, "level"),
    ({"n_resamples": 0}, "n_resamples"),
    ({"names": ["only-one"]}, "names"),
])
def test_inconsistent_bootstrap_inputs_are_one_line_errors(kwargs, match):
    args = {"nll_by_line": np.ones((2, 4)), "tokens_by_line": np.ones(4, dtype=int), **kwargs}
    with pytest.raises(InvalidScoresError, match=match) as info:
        bootstrap_perplexity(**args)
    assert "\n" not in str(info.value)


def test_a_line_without_tokens_of_its_own_counts_for_nothing():
    """A model's own tokens may leave a line empty (a token spanning a line end belongs to the later line)."""
    nll = np.array([[2.0, 0.0, 3.0]])
    result = bootstrap_perplexity(nll, np.array([2, 0, 3]), n_resamples=50, seed=1)
    assert result.perplexity[0] == pytest.approx(np.exp(5.0 / 5))
    # a resample drawing only the empty line has no token: undefined (NaN), left out of the interval
    counts = resample_counts(3, 50, 1)
    undefined = (counts[:, [0, 2]].sum(axis=1) == 0)
    assert np.array_equal(np.isnan(result.resampled_perplexity[:, 0]), undefined)
    assert np.allclose(result.resampled_perplexity[~undefined, 0], np.e)


def test_scores_of_another_length_than_the_split_are_refused():
    with pytest.raises(InvalidScoresError, match="score every token"):
        bootstrap_scores({"m": np.zeros(3)}, np.array([2, 3, 4, EOS]), EOS)


# ---------------------------------------------------------------- honesty: coverage on a known source


TOKENS = 4  # token 0 is the end of line; contexts: 0 = start of line, 1..3 = the previous token
SOURCE = np.array([  # P(next token | context), rows: start, a, b, c; columns: eos, a, b, c
    [0.00, 0.50, 0.30, 0.20],
    [0.15, 0.20, 0.50, 0.15],
    [0.25, 0.35, 0.05, 0.35],
    [0.20, 0.10, 0.60, 0.10],
])


def sample_lines(p: np.ndarray, n_lines: int, rng: np.random.Generator, log_q: np.ndarray | None = None):
    """Draw lines of the chain all at once (one vectorized step per position).

    Returns:
        (NLL of each line under each model of log_q (M, n_lines), tokens per line (n_lines,),
        bigram counts (contexts, tokens)).
    """
    log_q = np.zeros((0,) + p.shape) if log_q is None else log_q
    cum = np.cumsum(p, axis=1)[:, :-1]  # (C, T-1) inverse-CDF thresholds
    nll = np.zeros((log_q.shape[0], n_lines))
    n_tok = np.zeros(n_lines, dtype=np.int64)
    bigrams = np.zeros(p.size, dtype=np.int64)
    alive = np.arange(n_lines)  # lines still running
    ctx = np.zeros(n_lines, dtype=np.int64)  # context of each running line
    while alive.size:
        token = (rng.random(alive.size)[:, None] >= cum[ctx]).sum(axis=1)  # (A,)
        nll[:, alive] -= log_q[:, ctx, token]
        n_tok[alive] += 1
        bigrams += np.bincount(ctx * p.shape[1] + token, minlength=p.size)
        keep = token != 0
        alive, ctx = alive[keep], token[keep]
    return nll, n_tok, bigrams.reshape(p.shape)


def true_perplexity(p: np.ndarray, log_q: np.ndarray) -> float:
    """exp(E[NLL of a line under q] / E[tokens of a line]) for lines drawn from the absorbing chain p.

    Transient states are the contexts; the fundamental matrix (I - T)^-1 gives the expected visits to
    each context per line, and each visit emits one token (the end of line included).
    """
    transient = np.zeros_like(p)
    transient[:, 1:] = p[:, 1:]  # context -> next context (never back to the start)
    visits = np.linalg.inv(np.eye(p.shape[0]) - transient)[0]  # (C,) expected visits from the start
    return math.exp(visits @ (p * -log_q).sum(axis=1) / visits.sum())


def fitted_models(rng: np.random.Generator) -> np.ndarray:
    """Two smoothed bigram models (log (2, C, T)) estimated from small independent samples."""
    models = []
    for n_lines, k in [(15, 1.0), (60, 0.3)]:
        counts = sample_lines(SOURCE, n_lines, rng)[2] + k  # add-k: every bigram gets a probability
        models.append(np.log(counts / counts.sum(axis=1, keepdims=True)))
    return np.stack(models)


def test_analytic_expected_perplexity_agrees_with_a_huge_sample():
    log_q = fitted_models(np.random.default_rng(100))
    nll, n_tok, _ = sample_lines(SOURCE, 400_000, np.random.default_rng(101), log_q)
    for m in range(2):
        assert math.exp(nll[m].sum() / n_tok.sum()) == pytest.approx(true_perplexity(SOURCE, log_q[m]), rel=2e-3)


def test_bootstrap_intervals_cover_the_true_perplexity_about_95_percent_of_the_time():
    rng = np.random.default_rng(200)
    log_q = fitted_models(rng)
    truth = np.array([true_perplexity(SOURCE, log_q[m]) for m in range(2)])
    repetitions, n_lines = 300, 200
    nll, n_tok, _ = sample_lines(SOURCE, repetitions * n_lines, rng, log_q)
    covered, ratio_covered, width = np.zeros((repetitions, 2), bool), np.zeros(repetitions, bool), []
    for r in range(repetitions):
        part = slice(r * n_lines, (r + 1) * n_lines)
        result = bootstrap_perplexity(nll[:, part], n_tok[part], n_resamples=1000, seed=r)
        table, pair = result.intervals(), result.pairwise().iloc[0]
        covered[r] = (table.ppl_low <= truth) & (truth <= table.ppl_high)
        ratio_covered[r] = pair.ratio_low <= truth[0] / truth[1] <= pair.ratio_high
        width.append((table.ppl_high / table.ppl_low).to_numpy())
    assert truth[0] / truth[1] > 1.02  # the two models really differ
    for coverage in (*covered.mean(axis=0), ratio_covered.mean()):
        assert 0.88 <= coverage <= 0.99, coverage
    assert np.mean(width) < 1.2  # informative intervals, not trivially wide
