"""Zipf analysis: exponent recovery on synthetic samples and hand-counted ranks."""

from __future__ import annotations

import numpy as np
import pytest

from lmbench.corpora import RawCorpus
from lmbench.tokenize import Tokenizer
from lmbench.zipf import analyze, fit_zipf, whole_text


def zipf_text(alpha: float, n_types: int, n_tokens: int, seed: int = 0) -> list[str]:
    """Lines of 20 words drawn i.i.d. from a Zipf(alpha) distribution over n_types words."""
    rng = np.random.default_rng(seed)
    p = np.arange(1, n_types + 1, dtype=float) ** -alpha
    words = rng.choice(n_types, size=n_tokens, p=p / p.sum())
    return [" ".join(f"t{w}" for w in chunk) for chunk in words.reshape(-1, 20)]


@pytest.mark.parametrize("alpha", [1.0, 1.2, 1.5])
def test_recovers_the_exponent_of_a_synthetic_zipf_sample(alpha):
    lines = zipf_text(alpha, n_types=20_000, n_tokens=400_000)
    dataset = whole_text(RawCorpus("zipf", {"train": lines, "valid": [], "test": []}), Tokenizer("word"))
    fits, _, _ = analyze(dataset, max_n=1)
    assert fits[0].n_tokens == 400_000
    assert fits[0].alpha == pytest.approx(alpha, abs=0.03)
    assert fits[0].r2 > 0.98


def test_fit_on_an_exact_power_law():
    counts = np.round(1e6 * np.arange(1, 200, dtype=float) ** -1.3)
    fit = fit_zipf(counts, 1, min_count=1)
    assert fit.alpha == pytest.approx(1.3, abs=1e-3) and fit.intercept == pytest.approx(np.log(1e6), abs=1e-2)
    assert fit.rank_max == 199


def test_fit_range_excludes_the_hapax_tail():
    counts = np.array([50, 30, 20, 12, 10, 9, 5, 1, 1, 1])
    fit = fit_zipf(counts, 1, min_count=10)
    assert (fit.rank_min, fit.rank_max, fit.n_points, fit.n_hapax) == (1, 5, 5, 3)
    assert np.isnan(fit_zipf(np.array([3, 2, 1]), 1, min_count=10).alpha)


def test_ngram_ranks_are_counted_inside_lines():
    lines = ["a b a b", "b a"]
    dataset = whole_text(RawCorpus("t", {"train": lines, "valid": [], "test": []}), Tokenizer("word"))
    fits, ranks, curves = analyze(dataset, max_n=3, min_count=1)
    top = {(r.n, r.ngram): r.count for r in ranks.itertuples()}
    # unigrams: a 3, b 3; bigrams: "a b" 2, "b a" 2 (never across the line break); trigrams: "a b a", "b a b"
    assert top == {(1, "a"): 3, (1, "b"): 3, (2, "a b"): 2, (2, "b a"): 2, (3, "a b a"): 1, (3, "b a b"): 1}
    assert [f.n_tokens for f in fits] == [6, 4, 2]
    assert curves[2].tolist() == [2, 2]


def test_character_ngrams_join_without_spaces():
    dataset = whole_text(RawCorpus("t", {"train": ["abab"], "valid": [], "test": []}), Tokenizer("char"))
    _, ranks, _ = analyze(dataset, max_n=2, min_count=1)
    assert ranks[ranks.n == 2]["ngram"].tolist() == ["ab", "ba"]
