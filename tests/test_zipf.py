"""Zipf analysis: exponent recovery on synthetic samples, the power-law MLE against independent
references, hand-counted ranks, and the cases where no fit is possible."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lmbench.data.corpora import RawCorpus
from lmbench.errors import LmbenchError
from lmbench.data.tokenizers import Tokenizer
from lmbench.analysis.zipf import (
    analyze, fit_least_squares, fit_power_law, fit_zipf, format_fits, longest_line, power_law_curve, power_law_mle,
    whole_text,
)
from lmbench.runs.zipf import zipf_run


def analyzed(dataset, **options):
    """(fits, full ranks table, curves) of analyze()."""
    found = analyze(dataset, **options)
    return found.fit_objects, found.ranks, found.curves()


def zipf_tables(source, **options):
    return tuple(zipf_run(source, **options))


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
    fits, _, _ = analyzed(dataset, max_n=1)
    assert fits[0].n_tokens == 400_000
    assert fits[0].alpha == pytest.approx(alpha, abs=0.03)
    assert fits[0].r2 > 0.98
    assert fits[0].mle_alpha == pytest.approx(alpha, abs=0.04)
    assert fits[0].mle_alpha == pytest.approx(1 / (fits[0].mle_beta - 1), rel=1e-12)


def test_fit_on_an_exact_power_law():
    counts = np.round(1e6 * np.arange(1, 200, dtype=float) ** -1.3)
    fit = fit_zipf(counts, 1, min_count=1)
    assert fit.alpha == pytest.approx(1.3, abs=1e-3) and fit.intercept == pytest.approx(np.log(1e6), abs=1e-2)
    assert fit.rank_max == 199


def test_fit_range_excludes_the_hapax_tail():
    counts = np.array([50, 30, 20, 12, 10, 9, 5, 1, 1, 1])
    fit = fit_zipf(counts, 1, min_count=10)
    assert (fit.rank_min, fit.rank_max, fit.n_points, fit.n_hapax) == (1, 5, 5, 3)


def test_least_squares_matches_numpys_polyfit():
    counts = np.array([8, 4, 2, 2, 1])
    fit = fit_least_squares(counts, min_count=1)
    x, y = np.log(np.arange(1.0, 6.0)), np.log(counts)
    slope, intercept = np.polyfit(x, y, 1)
    assert fit["alpha"] == pytest.approx(-slope, rel=1e-12) and fit["intercept"] == pytest.approx(intercept, rel=1e-12)
    assert fit["r2"] == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2, rel=1e-12)
    assert (fit["rank_min"], fit["rank_max"], fit["n_points"]) == (1, 5, 5)


def test_least_squares_says_why_too_few_ranks_cannot_be_fitted():
    fit = fit_zipf(np.array([12, 10, 3, 2, 1]), 1, min_count=10)
    assert fit.alpha is None and fit.intercept is None and fit.r2 is None
    assert (fit.rank_min, fit.rank_max, fit.n_points) == (None, None, 2)
    assert "2 ranks with count >= 10 (needs 3)" in fit.note


def test_least_squares_says_why_equal_counts_have_no_slope():
    fit = fit_least_squares(np.array([5, 5, 5, 5, 1]), min_count=2)
    assert fit["alpha"] is None and "same count (5)" in fit["note"]


# ---------------------------------------------------------------- maximum likelihood


def test_power_law_mle_solves_the_likelihood_equation():
    """At the MLE, n zeta'(beta, x_min) / zeta(beta, x_min) + sum(log x) = 0 (mpmath's Hurwitz zeta)."""
    mpmath = pytest.importorskip("mpmath")
    x = np.array([1, 1, 1, 2, 2, 3, 4, 7, 12, 40, 3, 5, 1, 2, 9])
    for x_min in (1, 2, 3):
        tail = x[x >= x_min]
        beta = power_law_mle(np.array([np.log(tail).sum()]), np.array([tail.size]), np.array([float(x_min)]))[0]
        score = tail.size * mpmath.zeta(beta, x_min, 1) / mpmath.zeta(beta, x_min) + np.log(tail).sum()
        assert abs(float(score)) < 1e-7 * np.log(tail).sum()


def brute_force_power_law(counts: np.ndarray, min_tail: int) -> tuple[int, float, float]:
    """Clauset et al.'s recipe written plainly: every x_min, scipy's scalar minimizer, KS over every integer."""
    from scipy.optimize import minimize_scalar
    from scipy.special import zeta

    values = np.unique(counts)
    best = None
    for x_min in values[:-1]:
        tail = counts[counts >= x_min]
        if tail.size < min_tail:
            continue
        result = minimize_scalar(lambda b: tail.size * np.log(zeta(b, x_min)) + b * np.log(tail).sum(),
                                 bounds=(1.000001, 12), method="bounded", options={"xatol": 1e-10})
        beta = result.x
        grid = np.arange(x_min, tail.max() + 1)
        empirical = np.searchsorted(np.sort(tail), grid, side="right") / tail.size
        model = 1 - zeta(beta, grid + 1) / zeta(beta, x_min)
        ks = np.abs(empirical - model).max()
        if best is None or ks < best[2]:
            best = (int(x_min), float(beta), float(ks))
    return best


def mixed_sample(seed: int, beta: float = 2.3, x_min: int = 10, n_body: int = 3000) -> np.ndarray:
    """A discrete power law above x_min (numpy's zipf draws, kept where >= x_min) over a flat body below it."""
    rng = np.random.default_rng(seed)
    draws = rng.zipf(beta, 150_000)
    return np.concatenate([draws[draws >= x_min], rng.integers(1, x_min, n_body)])


def test_vectorized_x_min_scan_matches_a_brute_force_search():
    counts = mixed_sample(0, n_body=800)[:2500]
    fit = fit_power_law(counts, min_tail=50, max_candidates=10_000)
    x_min, beta, ks = brute_force_power_law(counts, min_tail=50)
    assert fit.x_min == x_min
    assert fit.beta == pytest.approx(beta, abs=1e-6)
    assert fit.ks == pytest.approx(ks, abs=1e-6)
    assert fit.n_tail == int((counts >= x_min).sum())


def test_power_law_recovers_beta_and_x_min_above_a_non_power_law_body():
    fit = fit_power_law(mixed_sample(0))
    assert 10 <= fit.x_min <= 15
    assert fit.beta == pytest.approx(2.3, abs=0.1)
    assert fit.alpha == pytest.approx(1 / (fit.beta - 1))


def test_power_law_with_x_min_one_recovers_numpys_zipf_exponent():
    fit = fit_power_law(np.random.default_rng(0).zipf(2.5, 20_000))
    assert fit.beta == pytest.approx(2.5, abs=0.03)
    assert fit.x_min <= 3


def test_power_law_says_why_it_cannot_fit():
    assert "same count" in fit_power_law(np.full(500, 7)).note
    few = fit_power_law(np.array([9, 5, 3, 2, 1, 1]))
    assert few.beta is None and few.alpha is None and "only 6 types; it needs at least 50" in few.note


def test_power_law_curve_runs_from_x_min_at_the_tail_size_to_rank_one():
    fit = fit_power_law(mixed_sample(1))
    ranks, counts = power_law_curve(fit)
    assert ranks[0] == pytest.approx(fit.n_tail) and counts[0] == fit.x_min
    assert ranks[-1] == pytest.approx(1.0)
    assert np.all(np.diff(ranks) < 0) and np.all(np.diff(counts) > 0)


def test_power_law_fit_recovers_alpha_one_from_a_200k_token_zipf_sample():
    rng = np.random.default_rng(0)
    p = 1.0 / np.arange(1, 30_001)
    counts = np.bincount(rng.choice(30_000, size=200_000, p=p / p.sum()))
    counts = counts[counts > 0]
    fit = fit_power_law(counts)
    assert fit.alpha == pytest.approx(1.0, abs=0.1)


def test_ngram_ranks_are_counted_inside_lines():
    lines = ["a b a b", "b a"]
    dataset = whole_text(RawCorpus("t", {"train": lines, "valid": [], "test": []}), Tokenizer("word"))
    fits, ranks, curves = analyzed(dataset, max_n=3, min_count=1)
    top = {(r.n, r.ngram): r.count for r in ranks.itertuples()}
    # unigrams: a 3, b 3; bigrams: "a b" 2, "b a" 2 (never across the line break); trigrams: "a b a", "b a b"
    assert top == {(1, "a"): 3, (1, "b"): 3, (2, "a b"): 2, (2, "b a"): 2, (3, "a b a"): 1, (3, "b a b"): 1}
    assert [f.n_tokens for f in fits] == [6, 4, 2]
    assert curves[2].tolist() == [2, 2]


def test_character_ngrams_join_without_spaces():
    dataset = whole_text(RawCorpus("t", {"train": ["abab"], "valid": [], "test": []}), Tokenizer("char"))
    _, ranks, _ = analyzed(dataset, max_n=2, min_count=1)
    assert ranks[ranks.n == 2]["ngram"].tolist() == ["ab", "ba"]


# ---------------------------------------------------------------- texts without a fit, long n


def test_short_cjk_text_prints_why_there_is_no_fit_instead_of_nan():
    dataset = whole_text(RawCorpus("t", {"train": ["我爱北京天安门。", "天安门上太阳升。"], "valid": [], "test": []}),
                         Tokenizer("char"))
    fits, ranks, _ = analyzed(dataset, max_n=2)
    assert all(f.alpha is None and f.mle_alpha is None and f.rank_max is None for f in fits)
    assert set(ranks[(ranks.n == 1) & (ranks["count"] == 2)]["ngram"]) == {"天", "安", "门", "。"}
    text = format_fits(fits, 10)
    assert "nan" not in text.lower() and "1..0" not in text
    assert "n=1: no least-squares fit: 0 ranks with count >= 10 (needs 3)" in text
    assert "n=2: no least-squares fit" in text and "no MLE fit: only" in text


def test_max_n_beyond_the_longest_line_fails_fast_naming_it():
    dataset = whole_text(RawCorpus("t", {"train": ["a b c d e", "a b"], "valid": [], "test": []}), Tokenizer("word"))
    with pytest.raises(LmbenchError, match=r"longest line \(5 tokens\).*use 5 or less") as error:
        analyze(dataset, max_n=1_000_000)  # refused before any counting: no n-gram of order 1e6 is built
    assert "\n" not in str(error.value)
    fits, _, curves = analyzed(dataset, max_n=5, min_count=1)
    assert curves[5].tolist() == [1] and curves[2].tolist() == [2, 1, 1, 1]


def test_longest_line_counts_a_last_line_without_its_end_token():
    assert longest_line(np.array([4, 5, 0, 4, 5, 6]), eos_id=0) == 3
    assert longest_line(np.array([4, 0, 0, 4, 5, 0]), eos_id=0) == 2
    assert longest_line(np.array([], dtype=np.int64), eos_id=0) == 0


def test_text_with_no_tokens_is_a_one_line_error():
    dataset = whole_text(RawCorpus("t", {"train": ["", "  "], "valid": [], "test": []}), Tokenizer("word"))
    with pytest.raises(LmbenchError, match="no tokens"):
        analyze(dataset)


@pytest.mark.plots
def test_csv_has_both_fits_and_blank_cells_where_none_is_possible(tmp_path):
    lines = zipf_text(1.0, n_types=2000, n_tokens=20_000)
    found = zipf_run(" \n".join(lines) + "\n", max_n=3, min_count=200, out=tmp_path)  # bigrams: < 3 counts >= 200
    fits = found.fit_objects
    table = pd.read_csv(tmp_path / "zipf.csv")
    assert list(table.columns[:6]) == ["n", "n_tokens", "n_types", "n_hapax", "alpha", "intercept"]
    assert {"mle_alpha", "mle_beta", "mle_x_min", "mle_rank_max", "mle_ks", "note"} <= set(table.columns)
    assert table.loc[0, "mle_alpha"] == pytest.approx(fits[0].mle_alpha)
    no_fit = [i for i, f in enumerate(fits) if f.alpha is None]
    assert no_fit and all(math.isnan(table.loc[i, "alpha"]) and table.loc[i, "note"] for i in no_fit)
    assert (tmp_path / "zipf.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- notebook entry point


def test_zipf_tables_reads_literal_text_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fits, ranks = zipf_tables("a b a\nb a\n", max_n=2, min_count=1)
    assert list(tmp_path.iterdir()) == []
    assert fits["n"].tolist() == [1, 2] and fits["n_tokens"].tolist() == [5, 3]
    assert {(r.n, r.ngram): r.count for r in ranks.itertuples()} == {(1, "a"): 3, (1, "b"): 2, (2, "a b"): 1,
                                                                      (2, "b a"): 2}


def test_zipf_tables_treats_one_line_that_is_not_a_path_as_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fits, _ = zipf_tables("the cat sat on the mat", max_n=1, min_count=1)
    assert fits.loc[0, "n_tokens"] == 6 and fits.loc[0, "n_types"] == 5


def test_a_long_one_line_text_is_read_as_text_not_probed_as_a_file_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fits, _ = zipf_tables("word " * 2000 + "end\x00", max_n=1, min_count=1)  # past any file-name length
    assert fits.loc[0, "n_tokens"] == 2001


def test_power_law_curve_of_a_nearly_flat_law_stops_instead_of_looping():
    from lmbench.analysis.zipf import PowerLawFit

    ranks, counts = power_law_curve(PowerLawFit(beta=1.0002, x_min=2, n_tail=1000, ks=0.1))
    assert np.isfinite(counts).all() and counts[-1] == pytest.approx(2.0 * 2 ** 64) and ranks[-1] > 1


def test_zipf_tables_reads_a_file_like_the_same_text(tmp_path):
    text = "x y z x\ny x\nz z z y\n"
    path = tmp_path / "small.txt"
    path.write_text(text, encoding="utf-8")
    from_file = zipf_tables(str(path), max_n=2, min_count=1)
    from_text = zipf_tables(text, max_n=2, min_count=1)
    pd.testing.assert_frame_equal(from_file[0], from_text[0])
    pd.testing.assert_frame_equal(from_file[1], from_text[1])
    chars = zipf_tables(str(path), tokenizer="char", max_n=1, min_count=1)[1]
    assert chars.iloc[0].to_dict() == {"n": 1, "rank": 1, "ngram": " ", "count": 7}


def test_zipf_tables_refuses_a_missing_file_name_instead_of_reading_it_as_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LmbenchError, match="not found"):
        zipf_tables("notes.txt")
    with pytest.raises(LmbenchError, match="not found"):
        zipf_tables("data/corpus")


def test_the_api_function_survives_importing_the_zipf_module():
    """lmbench.zipf is a function; importing the module must not replace it (it is lmbench.analysis.zipf)."""
    import lmbench

    first, _ = lmbench.zipf("a b c a b a\nb a c\n", tokenizer="word", min_count=1)
    again, _ = lmbench.zipf("a b c a b a\nb a c\n", tokenizer="word", min_count=1)
    assert callable(lmbench.zipf) and first.equals(again)
