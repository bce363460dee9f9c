"""The analysis layer end to end: per-token scores on disk, intervals, comparisons, buckets, bits per byte,
seeds, report, `score` and `compare`, for n-gram, neural and arpa: models alike."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import lmbench
from lmbench.scoring.tokens import TokenScores
from lmbench.cli import cli
from lmbench.runs.runner import RunConfig, run_benchmark

from tests.conftest import figures_not_drawn, random_lines

QUIET = dict(echo=lambda *a, **k: None)
TINY_NEURAL = {"hidden_size": 8, "num_steps": 8, "batch_size": 4, "progress": False, "epochs": 1, "device": "cpu"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    rng = np.random.default_rng(3)
    path.write_text("\n".join(random_lines(rng, 400, words=30)) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def finished_run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    config = RunConfig(models=["bigram", "bigram-add1", "trigram-kn", "lstm"], corpus=str(corpus),
                       out=str(out), params={"lstm": TINY_NEURAL}, bootstrap=200)
    with warnings.catch_warnings(), figures_not_drawn(keep=("perplexity_plot",)):  # the report links it
        warnings.simplefilter("ignore")
        return run_benchmark(config, **QUIET)


def test_saved_scores_sum_exactly_to_the_tables_nll(finished_run):
    table = finished_run.table.set_index(["model", "split"])
    for model in ("bigram-add1", "trigram-kn", "lstm", "bigram"):
        for split in ("valid", "test"):
            scores = finished_run.scores(model, split)
            assert isinstance(scores, TokenScores)
            assert scores.n_tokens == table.loc[(model, split), "n_tokens"]
            assert -scores.logprobs.sum() == table.loc[(model, split), "nll_nats"]  # bit for bit, inf included
            assert scores.line_offsets[0] == 0 and scores.line_offsets[-1] == scores.n_tokens


def test_every_model_scores_the_same_targets(finished_run):
    first = finished_run.scores("bigram-add1", "test")
    for model in ("trigram-kn", "lstm"):
        np.testing.assert_array_equal(finished_run.scores(model, "test").ids, first.ids)


def test_load_run_reads_back_what_run_returned(finished_run):
    again = lmbench.load_run(finished_run.out_dir)
    pd.testing.assert_frame_equal(again.table, finished_run.table)
    assert again.models == ["bigram", "bigram-add1", "trigram-kn", "lstm"]


def test_intervals_bracket_the_point_estimate_and_inf_stays_inf(finished_run):
    table = finished_run.table
    finite = table[np.isfinite(table["perplexity"])]
    assert (finite["ppl_low"] < finite["perplexity"]).all() and (finite["perplexity"] < finite["ppl_high"]).all()
    mle = table[table["model"] == "bigram"]
    assert np.isinf(mle["perplexity"]).all() and np.isinf(mle["ppl_high"]).all()


def test_compare_csv_holds_every_pair_of_each_split(finished_run):
    compare = finished_run.compare
    assert len(compare) == 2 * 6  # 4 models -> 6 pairs, valid and test
    row = compare[(compare.split == "test") & (compare.model_a == "bigram-add1") & (compare.model_b == "trigram-kn")]
    table = finished_run.table.set_index(["model", "split"])
    expected = table.loc[("bigram-add1", "test"), "perplexity"] / table.loc[("trigram-kn", "test"), "perplexity"]
    assert row["ppl_ratio"].iloc[0] == pytest.approx(expected, rel=1e-9)
    assert 0 <= row["p_a_better"].iloc[0] <= 1


def test_buckets_add_up_to_the_table(finished_run):
    buckets, table = finished_run.buckets, finished_run.table.set_index(["model", "split"])
    part = buckets[(buckets.model == "trigram-kn") & (buckets.split == "test")]
    assert part["n_tokens"].sum() == table.loc[("trigram-kn", "test"), "n_tokens"]
    assert part["nll_nats"].sum() == pytest.approx(table.loc[("trigram-kn", "test"), "nll_nats"], rel=1e-12)
    assert part["share_nll"].sum() == pytest.approx(1.0)


def test_bits_per_byte_uses_the_bytes_the_tokenizer_saw(finished_run, corpus):
    lines = corpus.read_text(encoding="utf-8").splitlines()
    test_lines = lines[round(len(lines) * 0.9):]
    n_bytes = sum(len(line.encode("utf-8")) + 1 for line in test_lines)
    row = finished_run.table.set_index(["model", "split"]).loc[("trigram-kn", "test")]
    assert row["bits_per_byte"] == pytest.approx(row["nll_nats"] / (math.log(2) * n_bytes), rel=1e-12)


def test_valid_rows_used_for_early_stopping_are_marked(finished_run):
    table = finished_run.table.set_index(["model", "split"])
    assert table.loc[("lstm", "valid"), "tuned_on_valid"]
    assert not table.loc[("lstm", "test"), "tuned_on_valid"]
    assert not table.loc[("trigram-kn", "valid"), "tuned_on_valid"]


def test_report_names_data_results_and_comparisons(finished_run):
    report = (finished_run.out_dir / "report.md").read_text(encoding="utf-8")
    for heading in ("## Data", "## Results", "## Pairwise comparisons (test)", "## Where the differences come from"):
        assert heading in report
    assert "trigram-kn" in report and "![perplexity.png](perplexity.png)" in report


def test_score_text_of_a_loaded_model_equals_its_test_scores(finished_run, corpus):
    lines = corpus.read_text(encoding="utf-8").splitlines()
    test_text = "\n".join(lines[round(len(lines) * 0.9):]) + "\n"
    for name in ("trigram-kn", "lstm"):
        model = finished_run.model(name)
        scored = model.score_text(test_text)
        np.testing.assert_allclose(scored.logprobs, finished_run.scores(name, "test").logprobs, rtol=1e-9, atol=1e-9)


def test_score_command_prints_lines_tokens_and_perplexity(finished_run, tmp_path):
    text = tmp_path / "new.txt"
    text.write_text("w1 w2 w3\nw0 zzz\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["score", "--run", str(finished_run.out_dir), "--model", "trigram-kn", str(text)])
    assert result.exit_code == 0, result.output
    assert "log10_prob" in result.output and "2 lines, 7 tokens (1 OOV)" in result.output
    model = finished_run.model("trigram-kn")
    expected = model.score_text("w1 w2 w3\nw0 zzz\n")
    assert f"perplexity {expected.perplexity:.4f} including OOV" in result.output
    per_token = CliRunner().invoke(cli, ["score", "--run", str(finished_run.out_dir), "-m", "lstm", "--per-token", "-"],
                                   input="w1 w2\n")
    assert per_token.exit_code == 0, per_token.output
    assert "w2" in per_token.output and "</s>" in per_token.output


@pytest.mark.parametrize("args, message", [
    (["--model", "nosuch"], "unknown model of the run"),
    (["--model", "trigram-kn", "missing.txt"], "not found"),
])
def test_score_command_bad_input_is_one_line(finished_run, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["score", "--run", str(finished_run.out_dir)] + args)
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_score_command_refuses_binary_input(finished_run, tmp_path):
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    result = CliRunner().invoke(cli, ["score", "--run", str(finished_run.out_dir), "-m", "trigram-kn", str(binary)])
    assert result.exit_code == 1 and "binary" in result.output


def test_compare_merges_runs_over_identical_data(finished_run, corpus, tmp_path):
    other = run_benchmark(RunConfig(models=["trigram-kn", "4gram-kn"], corpus=str(corpus), out=str(tmp_path / "b"),
                                    bootstrap=100), **QUIET)
    merged = lmbench.compare(finished_run.out_dir, other.out_dir, bootstrap=100)
    assert merged.n_groups == 1
    labels = set(merged.table["model"])
    assert {"run/trigram-kn", "b/trigram-kn", "4gram-kn", "lstm"} <= labels
    same = merged.compare[(merged.compare.model_a == "run/trigram-kn") & (merged.compare.model_b == "b/trigram-kn")]
    assert same["ppl_ratio"].iloc[0] == pytest.approx(1.0)  # the same model fitted twice
    result = CliRunner().invoke(cli, ["compare", str(finished_run.out_dir), str(other.out_dir), "--bootstrap", "50",
                                      "--out", str(tmp_path / "merged")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "merged" / "compare.csv").exists()


def test_compare_refuses_runs_over_different_text_unless_allowed(finished_run, corpus, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("".join(f"w{i % 5} w{i % 3} w{i % 7}\n" for i in range(300)), encoding="utf-8")
    elsewhere = run_benchmark(RunConfig(models=["trigram-kn"], corpus=str(other), out=str(tmp_path / "other"),
                                        bootstrap=0), **QUIET)
    refused = CliRunner().invoke(cli, ["compare", str(finished_run.out_dir), str(elsewhere.out_dir)])
    assert refused.exit_code == 1 and "different valid data" in refused.output
    assert "--allow-different-data" in refused.output and "allow_different_data=True" in refused.output
    allowed = CliRunner().invoke(cli, ["compare", str(finished_run.out_dir), str(elsewhere.out_dir),
                                       "--allow-different-data"])
    assert allowed.exit_code == 0 and "group 2" in allowed.output


def test_compare_merges_a_char_run_of_the_same_text_by_bits_per_byte(finished_run, corpus, tmp_path):
    char = run_benchmark(RunConfig(models=["trigram-kn"], corpus=str(corpus), tokenizer="char",
                                   out=str(tmp_path / "char"), bootstrap=0), **QUIET)
    merged = CliRunner().invoke(cli, ["compare", str(finished_run.out_dir), str(char.out_dir)])
    assert merged.exit_code == 0 and "group 2" not in merged.output  # one group: the same text
    from lmbench.runs.compare import compare_runs

    pairs = compare_runs([finished_run.out_dir, char.out_dir], n_resamples=50).compare
    across = pairs[pairs["model_b"].str.startswith("char/") | pairs["model_a"].str.startswith("char/")]
    assert len(across) and (across["metric"] == "bits_per_byte").all()


def test_no_save_scores_writes_no_scores_but_still_intervals(corpus, tmp_path):
    result = run_benchmark(RunConfig(models=["bigram-add1", "trigram-kn"], corpus=str(corpus), out=str(tmp_path / "r"),
                                     save_scores=False, bootstrap=50), **QUIET)
    assert not (tmp_path / "r" / "scores").exists()
    assert result.table["ppl_low"].notna().all()
    with pytest.raises(lmbench.errors.LmbenchError, match="no saved scores"):
        result.scores("trigram-kn", "test")


def test_bootstrap_zero_turns_intervals_off(corpus, tmp_path):
    result = run_benchmark(RunConfig(models=["bigram-add1", "trigram-kn"], corpus=str(corpus), out=str(tmp_path / "r"),
                                     bootstrap=0), **QUIET)
    assert result.table["ppl_low"].isna().all() and result.compare is None


def test_seeds_fit_neural_models_once_per_seed_and_summarize(corpus, tmp_path):
    printed = []
    result = run_benchmark(RunConfig(models=["bigram-add1", "lstm"], corpus=str(corpus), out=str(tmp_path / "s"),
                                     seeds=[0, 1, 2], params={"lstm": TINY_NEURAL}, bootstrap=0),
                           echo=lambda *a, **k: printed.extend(a))
    assert any("across seeds" in str(line) for line in printed)
    assert set(result.table["model"]) == {"bigram-add1", "lstm@seed0", "lstm@seed1", "lstm@seed2"}
    seeds = result.seeds.set_index(["model", "split"])
    per_seed = result.table[result.table.model.str.startswith("lstm@") & (result.table.split == "test")]["perplexity"]
    assert seeds.loc[("lstm", "test"), "n_seeds"] == 3
    assert seeds.loc[("lstm", "test"), "ppl_mean"] == pytest.approx(per_seed.mean())
    assert seeds.loc[("lstm", "test"), "ppl_std"] == pytest.approx(per_seed.std(ddof=1))
    assert per_seed.nunique() == 3  # different seeds, different networks


def test_python_api_run_returns_a_result_with_table_scores_and_models(corpus, tmp_path):
    result = lmbench.run(models="bigram-add1,trigram-kn", corpus=str(corpus), out=str(tmp_path / "api"),
                         bootstrap=50, quiet=True)
    assert result.out_dir == tmp_path / "api"
    assert list(result.table["model"].unique()) == ["bigram-add1", "trigram-kn"]
    assert result.model("trigram-kn").score_text("w1 w2\n").n_tokens == 3
    with pytest.raises(lmbench.errors.LmbenchError, match="did you mean"):
        lmbench.run(models="bigram", corpus=str(corpus), bootstrapp=10)


def test_importing_lmbench_changes_no_global_state():
    import subprocess
    import sys

    code = ("import matplotlib; matplotlib.use('svg'); import lmbench, sys; "
            "assert matplotlib.get_backend() == 'svg'; "
            "assert not {'torch', 'pandas', 'matplotlib.pyplot'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
