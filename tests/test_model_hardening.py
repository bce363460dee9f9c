"""Hardening of the shared maths and sampling in the base class (issue 8, sections 3, 4 and 6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner

from lmbench.cli import cli
from lmbench.errors import LmbenchError
from lmbench.models.base import sample_token
from lmbench.scoring.metrics import EvalResult, eval_result, exp_or_inf

from tests.conftest import random_lines


def test_top_k_one_draws_the_single_best_token_even_with_ties():
    logprobs = np.log(np.array([0.25, 0.25, 0.25, 0.25]))
    draws = {sample_token(logprobs, np.random.default_rng(s), top_k=1) for s in range(50)}
    assert draws == {0}  # exactly k candidates: ties broken by the lower id


def test_top_k_keeps_exactly_k_candidates():
    logprobs = np.log(np.array([0.1, 0.3, 0.3, 0.3]))
    draws = {sample_token(logprobs, np.random.default_rng(s), top_k=2) for s in range(200)}
    assert draws == {1, 2}


def test_sampling_with_no_finite_probability_is_a_one_line_error():
    with pytest.raises(LmbenchError, match="no finite probability"):
        sample_token(np.full(5, -np.inf), np.random.default_rng(0))


def test_nan_log_probabilities_are_counted_apart_from_zero_probabilities():
    result = eval_result(np.array([-1.0, np.nan, -np.inf]))
    assert result.n_nan == 1 and result.n_zero_prob == 1
    assert math.isnan(result.nll_nats) and math.isnan(result.perplexity)
    assert eval_result(np.array([-1.0, -np.inf])).perplexity == math.inf


def test_cross_entropy_beyond_float_range_is_inf_not_overflow():
    assert EvalResult(n_tokens=1, nll_nats=800.0, n_zero_prob=0).perplexity == math.inf
    assert exp_or_inf(709.0) == pytest.approx(math.exp(709.0))


@pytest.mark.parametrize("split", ["nan,0.5,0.5", "inf,0.1,0.1", "0.8,0.1"])
def test_non_finite_or_malformed_split_fractions_are_one_line_errors(tmp_path, split):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(random_lines(np.random.default_rng(0), 100)) + "\n")
    result = CliRunner().invoke(cli, ["run", "--models", "bigram", "--corpus", str(corpus), "--split", split,
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "split fractions" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_generate_with_an_mle_model_after_an_unseen_context_is_a_one_line_error(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(random_lines(np.random.default_rng(0), 200)) + "\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["run", "--models", "trigram", "--corpus", str(corpus), "--out", str(tmp_path / "r"),
                               "--bootstrap", "0"]).exit_code == 0
    result = runner.invoke(cli, ["generate", "--run", str(tmp_path / "r"), "--model", "trigram",
                                 "--prefix", "zzz qqq", "--length", "5"])
    assert result.exit_code == 1 and "no finite probability" in result.output
    assert "Traceback" not in result.output
