"""report.md: a conclusion at the top, the command line, how each fit ended, what each model costs, sweeps titled
as sweeps with their infeasible points, comparisons by bits per byte labelled, buckets in run order, no empty rows."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from lmbench.report.markdown import conclusion, report_text
from lmbench.runs.runner import RunConfig, run_benchmark

from tests.conftest import random_lines

COMMAND = ["/site/lmbench/__main__.py", "run", "--models", "5gram-kn,lstm", "--epochs", "3", "--time-budget", "20"]


def config(bootstrap: int = 1000, fractions=None, sweep=None, command=COMMAND) -> dict:
    split = {"n_tokens": 1000, "n_lines": 10, "n_bytes": 5000, "n_oov": 0, "sha256": "ab" * 32}
    return {
        "status": "complete", "started": "2026-01-01T00:00:00", "wall_seconds": 12.0, "lmbench_version": "0.3.0",
        "command": command,
        "options": {"bootstrap": bootstrap, "seed": 0, "fractions": fractions, "models": ["5gram-kn", "lstm"]},
        "data": {"name": "ptb", "tokenizer": {"kind": "word", "normalize": "none"}, "vocab_size": 10_000,
                 "splits": {"train": split, "valid": split, "test": split}},
        "models": {"5gram-kn": {"params": {"order": 5}, "fraction": 1.0},
                   "lstm": {"params": {"epochs": 3}, "fraction": 1.0},
                   "gru": {"params": {"epochs": 5}, "fraction": 1.0}},
        "sweep": sweep,
    }


def row(model: str, split: str, ppl: float, low: float = math.nan, high: float = math.nan, **extra) -> dict:
    return {"model": model, "split": split, "n_tokens": 1000, "perplexity": ppl, "ppl_low": low, "ppl_high": high,
            "bits_per_token": math.log2(ppl), "bits_per_byte": math.log2(ppl) / 5, "n_zero_prob": 0,
            "comparable": True, "tuned_on_valid": False, "family": "n-gram", "token_unit": "run", "stopped_by": "",
            "epochs_completed": math.nan, "tokens_trained": math.nan, "train_tokens": 5000, "n_params": 100,
            "model_bytes": 4e6, "saved_bytes": 2e6, "fit_seconds": 1.5, "fit_peak_bytes": 3e7,
            "score_tokens_per_s": 1e5, **extra}


def table(intervals: bool = True) -> pd.DataFrame:
    bounds = (lambda lo, hi: (lo, hi)) if intervals else (lambda lo, hi: (math.nan, math.nan))
    neural = dict(family="neural", stopped_by="time_budget", epochs_completed=1, tokens_trained=7000)
    rows = [row("5gram-kn", "valid", 148.0, *bounds(142.0, 153.0)),
            row("5gram-kn", "test", 141.2, *bounds(137.0, 146.0)),
            row("lstm", "valid", 150.0, *bounds(145.0, 156.0), tuned_on_valid=True, **neural),
            row("lstm", "test", 143.0, *bounds(138.0, 148.0), **neural),
            row("gru", "valid", math.inf, *bounds(math.inf, math.inf), family="neural", stopped_by="epochs",
                epochs_completed=5, tokens_trained=25_000, n_zero_prob=3),
            row("gru", "test", math.inf, *bounds(math.inf, math.inf), family="neural", stopped_by="epochs",
                epochs_completed=5, tokens_trained=25_000, n_zero_prob=3)]
    return pd.DataFrame(rows)


def compare(low: float, high: float, a: str = "5gram-kn", b: str = "lstm", metric: str = "perplexity") -> pd.DataFrame:
    ratio = 141.2 / 143.0 if a == "5gram-kn" else 143.0 / 141.2
    return pd.DataFrame([{"split": "test", "model_a": a, "model_b": b, "ppl_a": 0.0, "ppl_b": 0.0,
                          "ppl_ratio": ratio if metric == "perplexity" else math.nan, "ratio_low": low,
                          "ratio_high": high, "p_a_better": 0.9, "p_b_better": 0.1, "n_resamples": 1000,
                          "n_ratio_undefined": 0, "metric": metric, "bpb_a": 1.0, "bpb_b": 1.1,
                          "bpb_ratio": 1.0 / 1.1}])


def buckets() -> pd.DataFrame:
    rows = []
    for model, scale in (("lstm", 1.0), ("gru", math.inf), ("5gram-kn", 0.8)):  # not the table's order
        for bucket, n in (("<unk>", 40), ("1", 10), (">10k", 950)):
            ppl = math.inf if math.isinf(scale) and bucket == "1" else 100.0 * (1 if math.isinf(scale) else scale)
            share = math.nan if math.isinf(scale) else 1 / 3
            rows.append(dict(model=model, split="test", bucket=bucket, n_tokens=n, nll_nats=0.0, perplexity=ppl,
                             n_zero_prob=0, share_nll=share))
    return pd.DataFrame(rows)


def report(cfg=None, frame=None, pairs=None, bucket_frame=None, sweep=None) -> str:
    return report_text(cfg or config(), table() if frame is None else frame,
                       compare(0.97, 1.01) if pairs is None else pairs,
                       buckets() if bucket_frame is None else bucket_frame, pd.DataFrame(),
                       ["perplexity.png", "cost.png"], sweep)


def section(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


# ---------------------------------------------------------------- the top of the page


def test_a_run_opens_with_its_title_conclusion_and_command_line():
    text = report()
    lines = text.splitlines()
    assert lines[0] == "# lmbench run: ptb"
    assert lines[2].startswith("**Conclusion:** 5gram-kn has the lowest test perplexity (141.20)")
    assert "```bash\nlmbench run --models 5gram-kn,lstm --epochs 3 --time-budget 20\n```" in text


def test_a_gap_whose_interval_contains_one_is_not_significant():
    sentence = conclusion(table(), compare(0.97, 1.01))
    assert "lstm (cut short by the time budget)'s (143.00)" in sentence
    assert "the gap is not significant" in sentence and "[0.970, 1.010], contains 1." in sentence


def test_a_gap_whose_interval_excludes_one_is_significant_in_either_pair_order():
    assert "the gap is significant: " in conclusion(table(), compare(0.97, 0.99))
    flipped = conclusion(table(), compare(1.02, 1.05, a="lstm", b="5gram-kn"))  # compare.csv lists lstm first
    assert "0.987 times" in flipped and "the gap is significant" in flipped
    assert f"[{1 / 1.05:.3f}, {1 / 1.02:.3f}], excludes 1." in flipped


def test_without_a_bootstrap_the_gap_is_said_to_be_untested_and_the_interval_column_is_dropped():
    text = report(cfg=config(bootstrap=0), frame=table(intervals=False), pairs=pd.DataFrame())
    assert "not tested for significance (no bootstrap interval: --bootstrap 0)" in text
    assert "95% interval" not in section(text, "## Results")
    assert "No intervals (--bootstrap 0)" in text and "## Pairwise comparisons" not in text


def test_with_a_pretrained_model_the_conclusion_is_by_bits_per_byte():
    frame = pd.concat([table(), pd.DataFrame([row("hf:tiny", "test", 30.0, family="pretrained", token_unit="gpt2",
                                                  bits_per_byte=0.5)])], ignore_index=True)
    sentence = conclusion(frame, compare(0.5, 0.6, a="5gram-kn", b="hf:tiny", metric="bits_per_byte"))
    assert sentence.startswith("**Conclusion:** hf:tiny has the lowest test bits per byte (0.5000)")
    assert "the gap is significant" in sentence and f"[{1 / 0.6:.3f}, {1 / 0.5:.3f}]" in sentence
    assert "interval of the bits-per-byte ratio" in sentence


def test_by_bits_per_byte_the_gap_between_two_models_of_the_run_is_tested_by_their_perplexity_ratio():
    frame = pd.concat([table(), pd.DataFrame([row("hf:tiny", "test", 30.0, family="pretrained", token_unit="gpt2",
                                                  bits_per_byte=9.0)])], ignore_index=True)
    sentence = conclusion(frame, compare(0.97, 0.99))
    bpb = {m: math.log2(p) / 5 for m, p in (("5gram-kn", 141.2), ("lstm", 143.0))}
    assert sentence.startswith(f"**Conclusion:** 5gram-kn has the lowest test bits per byte ({bpb['5gram-kn']:.4f})")
    assert f"{bpb['5gram-kn'] / bpb['lstm']:.3f} times" in sentence  # the ratio of the figures it names
    assert "interval of the perplexity ratio, [0.970, 0.990], excludes 1." in sentence


# ---------------------------------------------------------------- results, training and cost


def test_results_mark_valid_star_and_cut_short_rows_as_not_finished():
    results = section(report(), "## Results")
    assert "| lstm^ | valid* |" in results and "| lstm^ | test |" in results
    assert "`lstm^`: cut short by the time budget (1 complete epoch, 7,000 training tokens seen): not a finished fit" \
        in results


def test_training_lists_the_epochs_and_how_each_neural_fit_stopped():
    training = section(report(), "## Training")
    assert "| model | epochs | epochs completed | stopped by | tokens trained | training split tokens |" in training
    assert "| lstm^ | 3 | 1 | time_budget (cut short) | 7,000 | 5,000 |" in training
    assert "| gru | 5 | 5 | epochs | 25,000 | 5,000 |" in training
    assert "5gram-kn" not in training  # fitted without epochs
    assert "is not a finished fit" in training


def test_cost_lists_parameters_bytes_time_memory_and_scoring_speed_per_model():
    cost = section(report(), "## Cost")
    assert "| model | parameters | model bytes | saved bytes | fit time | peak fit memory | scoring tokens/s |" in cost
    assert "| 5gram-kn | 100 | 4 MB | 2 MB | 1.50 s | 30 MB | 100,000 |" in cost
    assert cost.count("\n| ") == 2 + 3  # header, rule and one row per model


# ---------------------------------------------------------------- sweeps, comparisons, buckets


def test_a_sweep_is_titled_as_a_sweep_and_lists_its_infeasible_points_with_their_reason():
    reason = "360 training tokens at fraction 0.005, fewer than the 1,154 lstm needs"
    sweep = pd.DataFrame([dict(model="lstm", family="neural", fraction=0.005, train_tokens=360, split=split,
                               status="infeasible", reason=reason) for split in ("valid", "test")])
    text = report(cfg=config(fractions=[0.005, 1.0], sweep=["lstm does not beat the best n-gram"]), sweep=sweep)
    assert text.startswith("# lmbench sweep: ptb")
    part = section(text, "## Data-size sweep")
    assert "* lstm does not beat the best n-gram" in part
    assert "| lstm | 0.005 | 360 | 360 training tokens at fraction 0.005, fewer than the 1,154 lstm needs |" in part
    assert part.count("| lstm | 0.005 |") == 1  # one row per point, not per split


def test_pairs_of_models_over_different_tokens_are_labelled_as_compared_by_bits_per_byte():
    pairs = pd.concat([compare(0.97, 1.01), compare(0.5, 0.6, b="hf:tiny", metric="bits_per_byte")])
    part = section(report(pairs=pairs), "## Pairwise comparisons (test)")
    by_ppl, by_bytes = part.split("By bits per byte")
    assert "ppl A / ppl B" in by_ppl and "hf:tiny" not in by_ppl
    assert "| A | B | bits/byte A / B |" in by_bytes
    assert "| 5gram-kn | hf:tiny | 0.9091 | [0.5000, 0.6000] |" in by_bytes


def test_buckets_follow_the_run_order_and_leave_out_empty_rows():
    part = section(report(), "## Where the differences come from (test)")
    perplexity, shares = part.split("Share of each model's total NLL")
    models = [line.split(" | ")[0].strip("| ") for line in perplexity.splitlines() if line.startswith("| ")][2:]
    assert models == ["tokens", "5gram-kn", "lstm", "gru"]  # the table's order, not buckets.csv's
    share_rows = [line for line in shares.splitlines() if line.startswith("| ")][2:]
    assert [r.split(" | ")[0].strip("| ") for r in share_rows] == ["5gram-kn", "lstm"]  # gru has no shares
    assert all(any(cell.strip() for cell in r.strip("| ").split("|")[1:]) for r in share_rows)  # no empty row


def test_a_run_from_python_shows_its_options_instead_of_the_kernels_command_line():
    text = report(cfg=config(command=["/usr/lib/ipykernel_launcher.py", "-f", "kernel.json"]))
    assert "Run from Python" in text and "bootstrap=1000" in text and "```bash" not in text


# ---------------------------------------------------------------- a real run


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    corpus.write_text("\n".join(random_lines(np.random.default_rng(5), 300, words=25)) + "\n", encoding="utf-8")
    out = tmp_path_factory.mktemp("runs") / "run"
    cfg = RunConfig(models=["bigram-add1", "trigram-kn"], corpus=str(corpus), out=str(out), bootstrap=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_benchmark(cfg, echo=lambda *a, **k: None)


def test_a_run_writes_the_cost_plot_and_links_it_from_the_report(small_run):
    assert (small_run.out_dir / "cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (small_run.out_dir / "report.md").read_text(encoding="utf-8")
    assert "![cost.png](cost.png)" in text and "## Cost" in text
    test = small_run.table[small_run.table["split"] == "test"].set_index("model")["perplexity"]
    assert text.splitlines()[2].startswith(f"**Conclusion:** {test.idxmin()} has the lowest test perplexity")
    fig = small_run.plot("cost")
    assert [ax.get_xscale() for ax in fig.axes[:2]] == ["log", "log"]
