"""Mixtures of models of a run (EM weights on valid) and data-size sweeps (issue 9, parts 3 and 4)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp

import lmbench
from lmbench.analysis.sweep import _crossing, crossovers
from lmbench.errors import LmbenchError
from lmbench.models.mixture import MixtureLM, em_weights
from lmbench.models.registry import resolve
from lmbench.runs.runner import RunConfig, run_benchmark

from tests.conftest import random_lines

QUIET = dict(echo=lambda *a, **k: None)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(random_lines(np.random.default_rng(7), 500, words=25)) + "\n", encoding="utf-8")
    return path


def test_em_weights_find_the_mixing_proportion_of_a_known_mixture():
    """Tokens drawn from 0.3 * P1 + 0.7 * P2 over 4 symbols: EM recovers 0.3 / 0.7."""
    rng = np.random.default_rng(0)
    p1, p2 = np.array([0.7, 0.1, 0.1, 0.1]), np.array([0.05, 0.05, 0.45, 0.45])
    which = rng.random(200_000) < 0.3
    tokens = np.where(which, rng.choice(4, which.size, p=p1), rng.choice(4, which.size, p=p2))
    lp = np.log(np.stack([p1[tokens], p2[tokens]]))  # (2, N)
    log_w, _ = em_weights(lp, max_iter=500, tol=1e-12)
    assert np.exp(log_w) == pytest.approx([0.3, 0.7], abs=0.01)


def test_em_weights_maximize_the_likelihood():
    rng = np.random.default_rng(1)
    lp = np.log(rng.dirichlet(np.ones(3), size=2000).T)  # (3, N) arbitrary component probabilities
    log_w, _ = em_weights(lp, max_iter=2000, tol=1e-14)
    best = logsumexp(log_w[:, None] + lp, axis=0).sum()
    for _ in range(200):  # no other point of the simplex does better
        w = rng.dirichlet(np.ones(3))
        assert logsumexp(np.log(w)[:, None] + lp, axis=0).sum() <= best + 1e-9


def test_mixture_is_a_distribution_and_equals_the_weighted_components(tiny_dataset):
    ds = tiny_dataset
    parts = {name: resolve(name).build().fit(ds.splits["train"], ds.splits["valid"], vocab=ds.vocab)
             for name in ("bigram-add1", "trigram-kn")}
    mix = resolve("mix(bigram-add1+trigram-kn)").build()
    mix.attach(parts)
    mix.fit(ds.splits["train"], ds.splits["valid"], vocab=ds.vocab)
    w = np.exp(mix.log_weights_)
    test = ds.splits["test"]
    expected = np.log(w[0] * np.exp(parts["bigram-add1"].logprobs(test)) + w[1] * np.exp(parts["trigram-kn"].logprobs(test)))
    np.testing.assert_allclose(mix.logprobs(test), expected, rtol=1e-12)
    for history in (test[:0], test[:3], test[:10]):
        assert np.exp(mix.next_logprobs(history)).sum() == pytest.approx(1.0, abs=1e-9)
    assert w.sum() == pytest.approx(1.0) and mix.valid_use()


def test_mixture_in_a_run_scores_the_same_tokens_and_reloads_with_its_components(corpus, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_benchmark(RunConfig(models=["mix(bigram-add1+trigram-kn)", "bigram-add1", "trigram-kn"],
                                         corpus=str(corpus), out=str(tmp_path / "r"), bootstrap=0), **QUIET)
    table = result.table.set_index(["model", "split"])
    assert list(result.table["model"].unique()) == ["bigram-add1", "trigram-kn", "mix(bigram-add1+trigram-kn)"]
    assert table.loc[("mix(bigram-add1+trigram-kn)", "valid"), "tuned_on_valid"]
    assert table.loc[("mix(bigram-add1+trigram-kn)", "test"), "n_tokens"] == table.loc[("trigram-kn", "test"), "n_tokens"]
    # EM never makes valid worse than the better component (a weight of 1 is in the search space)
    assert table.loc[("mix(bigram-add1+trigram-kn)", "valid"), "nll_nats"] <= min(
        table.loc[(m, "valid"), "nll_nats"] for m in ("bigram-add1", "trigram-kn")) + 1e-9
    loaded = result.model("mix(bigram-add1+trigram-kn)")
    np.testing.assert_allclose(loaded.logprobs(result.scores("trigram-kn", "test").ids),
                               result.scores("mix(bigram-add1+trigram-kn)", "test").logprobs, rtol=1e-12)


@pytest.mark.parametrize("models, message", [
    (["mix(bigram-add1+lstm)", "bigram-add1"], "not among the models"),
    (["mix(bigram-add1)", "bigram-add1"], "two or more"),
    (["mix(bigram-add1+)", "bigram-add1"], "two or more"),
])
def test_bad_mixtures_are_one_line_errors(corpus, tmp_path, models, message):
    with pytest.raises(LmbenchError, match=message):
        run_benchmark(RunConfig(models=models, corpus=str(corpus), out=str(tmp_path / "r")), **QUIET)


def test_fixed_mixture_weights_are_validated():
    with pytest.raises(LmbenchError, match="summing to 1"):
        MixtureLM(("a", "b"), weights=(0.5, 0.6)).check_params()


def test_sweep_fits_prefixes_with_one_vocabulary_and_the_same_targets(corpus, tmp_path):
    result = lmbench.sweep(models=["bigram-add1", "trigram-kn"], corpus=str(corpus), fractions=[0.1, 0.5, 1],
                           out=str(tmp_path / "s"), bootstrap=0, quiet=True)
    sweep = result.sweep
    assert set(sweep["fraction"]) == {0.1, 0.5, 1.0}
    assert sweep.groupby("split")["n_tokens"].nunique().eq(1).all()  # N identical at every size
    assert result.table["vocab_size"].nunique() == 1  # one vocabulary for the whole sweep
    test = sweep[(sweep.split == "test") & (sweep.model == "bigram-add1")].sort_values("fraction")
    assert test["train_tokens"].is_monotonic_increasing
    full = run_benchmark(RunConfig(models=["bigram-add1"], corpus=str(corpus), out=str(tmp_path / "f"), bootstrap=0),
                         **QUIET).table.set_index("split")
    assert test["perplexity"].iloc[-1] == pytest.approx(full.loc["test", "perplexity"], rel=1e-12)
    assert test["train_tokens"].iloc[-1] == full.loc["test", "train_tokens"]


def test_a_sweep_prefix_ends_at_a_line_end(corpus, tmp_path):
    result = lmbench.sweep(models=["bigram-add1"], corpus=str(corpus), fractions=[0.25], out=str(tmp_path / "s"),
                           bootstrap=0, quiet=True)
    lines = corpus.read_text().splitlines()
    train = lines[: round(len(lines) * 0.8)]
    first = train[: round(0.25 * len(train))]
    assert result.sweep["train_tokens"].iloc[0] == sum(len(line.split()) + 1 for line in first)


def test_bad_fractions_are_one_line_errors(corpus, tmp_path):
    for fractions in ([0, 0.5], [1.5], [0.5, 0.5]):
        with pytest.raises(LmbenchError, match="fractions"):
            run_benchmark(RunConfig(models=["bigram-add1"], corpus=str(corpus), fractions=fractions,
                                    out=str(tmp_path / "x")), **QUIET)


def test_crossover_is_interpolated_in_log_tokens():
    # the network loses by 2 at 1,000 tokens and wins by 2 at 100,000: the crossing is at 10,000
    assert _crossing(np.array([1e3, 1e5]), np.array([2.0, -2.0])) == pytest.approx(1e4)
    assert _crossing(np.array([1e3, 1e5]), np.array([-1.0, -2.0])) == 0.0
    assert _crossing(np.array([1e3, 1e5]), np.array([-1.0, 2.0])) is None


def test_crossovers_compare_with_the_best_ngram_at_each_size():
    sweep = pd.DataFrame({
        "model": ["kn", "kn", "add1", "add1", "lstm", "lstm"], "family": ["n-gram"] * 4 + ["neural"] * 2,
        "fraction": [0.1, 1, 0.1, 1, 0.1, 1], "train_tokens": [1e3, 1e4] * 3, "split": ["test"] * 6,
        "perplexity": [100.0, 60.0, 90.0, 80.0, 120.0, 50.0]})
    found = crossovers(sweep)
    assert found[0]["best_ngram"] == {0.1: "add1", 1.0: "kn"}
    gap0, gap1 = 120 - 90, 50 - 60
    expected = np.exp(np.log(1e3) + gap0 / (gap0 - gap1) * (np.log(1e4) - np.log(1e3)))
    assert found[0]["overtakes_at_tokens"] == pytest.approx(expected)
