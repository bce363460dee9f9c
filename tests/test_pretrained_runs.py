"""A pretrained causal LM in a run: its rows over its own tokens, compared with the run's models by bits per byte
on the same lines; `lmbench score --model hf:...`; and runs over the same text with other tokens merged by compare."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import lmbench
from lmbench.cli import cli
from tests.conftest import figures_not_drawn, needs

pytestmark = needs("transformers")


LINES = [f"the time traveller {w} us {i % 7} times and smiled" for i, w in
         enumerate(["told", "showed", "gave", "asked", "met"] * 40)]


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf-text")
    for split, lines in {"train": LINES[:150], "valid": LINES[150:175], "test": LINES[175:]}.items():
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tiny(tiny_gpt2):
    return tiny_gpt2


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory, text_dir, tiny):
    out = tmp_path_factory.mktemp("runs") / "mixed"
    with figures_not_drawn():                                # no test here reads its PNGs
        return lmbench.run(["bigram-add1", "3gram-kn", f"hf:{tiny}"], corpus=text_dir, out=out, bootstrap=200,
                           quiet=True)


def test_a_pretrained_row_is_over_its_own_tokens_and_compared_by_bits_per_byte(mixed_run, tiny):
    table = mixed_run.table.set_index(["model", "split"])
    own = table.loc[(f"hf:{tiny}", "test")]
    run_tokens = table.loc[("3gram-kn", "test")]
    assert own["token_unit"] != "run" and run_tokens["token_unit"] == "run"
    assert own["n_tokens"] != run_tokens["n_tokens"]  # its own tokens, not the run's N
    n_bytes = mixed_run.config["data"]["splits"]["test"]["n_bytes"]
    assert own["bits_per_byte"] == pytest.approx(own["nll_nats"] / (np.log(2) * n_bytes))
    pairs = mixed_run.compare.query("split == 'test'").set_index(["model_a", "model_b"])
    assert pairs.loc[("bigram-add1", "3gram-kn"), "metric"] == "perplexity"
    across = pairs.loc[("3gram-kn", f"hf:{tiny}")]
    assert across["metric"] == "bits_per_byte" and np.isnan(across["ppl_ratio"])
    point = run_tokens["bits_per_byte"] / own["bits_per_byte"]
    assert across["bpb_ratio"] == pytest.approx(point)
    assert across["ratio_low"] <= point <= across["ratio_high"]


def test_the_table_labels_own_token_figures_and_never_prints_the_runs_n_for_them(mixed_run):
    from lmbench.runs.table import format_table

    text = format_table(mixed_run.table)
    assert "(own)" in text and "compare bits/byte" in text


def test_score_reads_new_text_with_a_pretrained_model_on_the_runs_normalization(mixed_run, tiny):
    result = CliRunner().invoke(cli, ["score", "--run", str(mixed_run.out_dir), "--model", f"hf:{tiny}", "-"],
                                input="the time traveller smiled\nat us\n")
    assert result.exit_code == 0, result.output
    assert "2 lines" in result.output and "bits per byte" in result.output and "own tokens" in result.output
    direct = mixed_run.model(f"hf:{tiny}").score_text("the time traveller smiled\nat us\n")
    assert direct.own_tokens and direct.line_offsets.size == 3


def test_compare_merges_runs_over_the_same_text_with_other_tokens_by_bits_per_byte(tmp_path, text_dir, mixed_run):
    words = lmbench.run(["3gram-kn"], corpus=text_dir, out=tmp_path / "w", bootstrap=100, quiet=True)
    chars = lmbench.run(["5gram-kn"], corpus=text_dir, tokenizer="char", out=tmp_path / "c", bootstrap=100, quiet=True)
    merged = lmbench.compare(words.out_dir, chars.out_dir, bootstrap=100)
    assert merged.n_groups == 1
    pair = merged.compare.query("split == 'test'").iloc[0]
    assert pair["metric"] == "bits_per_byte"
    rows = merged.table.query("split == 'test'").set_index("model")
    assert pair["bpb_ratio"] == pytest.approx(rows.loc[pair["model_a"], "bits_per_byte"]
                                              / rows.loc[pair["model_b"], "bits_per_byte"])
