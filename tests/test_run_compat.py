"""Run directories written by lmbench 0.2 (before the redesign) still open, score, compare and continue text."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import lmbench
from lmbench.cli import cli

OLD = Path(__file__).parent / "data" / "v0.2"


@pytest.fixture()
def old_run(tmp_path):
    """A copy of the 0.2 run (its config.json names the corpus by an absolute path of the machine that made it)."""
    shutil.copytree(OLD / "run-0.2", tmp_path / "run-0.2")
    return lmbench.load_run(tmp_path / "run-0.2")


def test_a_0_2_run_reads_back_its_table_scores_and_analysis(old_run):
    assert old_run.config["lmbench_version"] == "0.2.0" and old_run.status == "complete"
    table = old_run.table
    assert set(table["model"]) == set(old_run.models) and len(table) == 2 * len(old_run.models)
    for model in ("3gram-kn", "lstm", "mix(3gram-kn+lstm)"):
        scores = old_run.scores(model, "test")
        row = table[(table["model"] == model) & (table["split"] == "test")]
        assert -scores.logprobs.sum() == row["nll_nats"].item()
    assert len(old_run.compare) and len(old_run.buckets)


def test_every_model_of_a_0_2_run_loads_and_scores_its_targets_as_stored(old_run):
    targets = np.load(OLD / "run-0.2" / "scores" / "targets.npz")
    for model in old_run.models:
        loaded = old_run.model(model)
        stored = old_run.scores(model, "test").logprobs
        scored = loaded.logprobs(targets["test_ids"])
        if model not in ("lstm", "transformer", "mix(3gram-kn+lstm)"):
            # n-grams: float64 maths, but numpy's log follows the CPU's vector units (AVX-512 and AVX2
            # may differ in the last bit), so a run made on another machine agrees to one ulp
            np.testing.assert_array_max_ulp(scored, stored, maxulp=1)
        else:  # float32 networks: the kernels' summation order follows the CPU's vector units
            np.testing.assert_allclose(scored, stored, rtol=1e-5, atol=1e-6, err_msg=model)


def test_a_0_2_run_continues_text_and_scores_new_text(old_run):
    text = old_run.generate("3gram-kn", "the time", 30, seed=2)
    assert text.startswith("the time") and len(text) > len("the time")
    scored = old_run.model("lstm").score_text("the time machine\n")
    assert scored.n_tokens == len("the time machine") + 1 and np.isfinite(scored.perplexity)


def test_a_0_2_bpe_run_tokenizes_new_text_as_it_did(tmp_path):
    shutil.copytree(OLD / "bpe-run-0.2", tmp_path / "bpe")
    run = lmbench.load_run(tmp_path / "bpe")
    targets = np.load(tmp_path / "bpe" / "scores" / "targets.npz")
    model = run.model("3gram-kn")
    np.testing.assert_array_max_ulp(model.logprobs(targets["valid_ids"]), run.scores("3gram-kn", "valid").logprobs,
                                    maxulp=1)                  # one ulp: see the test above
    assert run.tokenizer.kind == "bpe" and model.score_text("the time traveller\n").n_tokens > 3


def test_compare_merges_a_0_2_run_with_itself_and_the_cli_reads_it(old_run, tmp_path):
    shutil.copytree(old_run.out_dir, tmp_path / "again")
    merged = lmbench.compare(old_run.out_dir, tmp_path / "again", bootstrap=50)
    assert merged.n_groups == 1 and len(merged.compare)
    result = CliRunner().invoke(cli, ["score", "--run", str(old_run.out_dir), "--model", "3gram-wb", "-"],
                                input="the time traveller\n")
    assert result.exit_code == 0 and "1 lines" in result.output
