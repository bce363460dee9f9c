"""Figures: no global matplotlib state, readable axes at any length, error bars, buckets and sweeps."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lmbench.report.plots import (
    buckets_figure, buckets_plot, curves_figure, curves_plot, log_ticks, perplexity_figure, perplexity_plot,
    sweep_figure, token_count,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_python(code: str, *args: str) -> str:
    """stdout of a fresh interpreter running ``code`` (no MPLBACKEND, so only the code picks a backend)."""
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def labels(ax, axis: str = "y") -> list[str]:
    """The non-empty major tick labels inside the visible range, after drawing."""
    ax.figure.canvas.draw()
    lo, hi = sorted(ax.get_ylim() if axis == "y" else ax.get_xlim())
    ticks = ax.get_yticklabels() if axis == "y" else ax.get_xticklabels()
    at = 1 if axis == "y" else 0
    return [t.get_text() for t in ticks if t.get_text() and lo <= t.get_position()[at] <= hi]


def curve(epochs: int, start: float, end: float) -> pd.DataFrame:
    e = np.arange(1, epochs + 1)
    valid = start * (end / start) ** ((e - 1) / max(epochs - 1, 1))
    return pd.DataFrame({"epoch": e, "train_ppl": valid * 0.9, "valid_ppl": valid})


# ---------------------------------------------------------------- global state


def test_importing_plots_loads_neither_matplotlib_nor_pandas():
    loaded = run_python("import sys, lmbench.report.plots; "
                        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'pandas')))")
    assert loaded == "[]"


def test_drawing_leaves_the_callers_backend_set_and_pyplot_unloaded(tmp_path):
    code = """
import sys, matplotlib
matplotlib.use("svg")
import pandas as pd
from lmbench.report.plots import curves_plot, perplexity_plot
curves_plot({"m": pd.DataFrame({"epoch": [1], "train_ppl": [5.0], "valid_ppl": [6.0]})}, sys.argv[1] + "/c.png")
perplexity_plot(pd.DataFrame({"model": ["m"], "split": ["test"], "perplexity": [6.0], "comparable": [True]}),
                sys.argv[1] + "/p.png")
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""
    assert run_python(code, str(tmp_path)) == "svg False"
    assert (tmp_path / "c.png").read_bytes()[:8] == PNG_MAGIC and (tmp_path / "p.png").read_bytes()[:8] == PNG_MAGIC


# ---------------------------------------------------------------- learning curves


def test_one_epoch_curve_shows_its_points_and_several_y_labels():
    fig = curves_figure({"lstm": curve(1, 7.1, 7.1), "gru": curve(1, 7.4, 7.4)})
    train_ax, valid_ax = fig.axes[:2]
    for ax in (train_ax, valid_ax):
        assert [line.get_marker() for line in ax.get_lines()] == ["o", "o"]
        assert labels(ax, "x") == ["1"]
    assert valid_ax.get_yscale() == "linear" and len(labels(train_ax)) >= 3  # the panels share the y axis


def test_thirty_epoch_curve_has_integer_epoch_ticks():
    fig = curves_figure({"rnn": curve(30, 12.0, 4.5)})
    ticks = [float(t) for t in labels(fig.axes[1], "x")]
    assert len(ticks) >= 4 and all(t == int(t) and 1 <= t <= 30 for t in ticks)


def test_wide_range_uses_a_log_axis_with_plain_labels():
    fig = curves_figure({"lstm": curve(39, 900.0, 50.0)})
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    shown = labels(ax)
    assert len(shown) >= 4 and all(float(t.replace(",", "")) > 0 for t in shown)  # no 10^k mathtext


def test_narrow_range_stays_linear_with_several_labels():
    ax = curves_figure({"lstm": curve(2, 8.3, 6.0)}).axes[0]
    assert ax.get_yscale() == "linear" and len(labels(ax)) >= 4


def test_references_are_labelled_lines_on_the_validation_panel_only():
    references = {"kn-3": 148.2, "zero-prob": math.inf, "broken": math.nan}
    fig = curves_figure({"lstm": curve(5, 400.0, 120.0)}, references=references)
    train_ax, valid_ax = fig.axes[:2]
    assert len(train_ax.get_lines()) == 1
    flat = [line for line in valid_ax.get_lines() if len(set(line.get_ydata())) == 1]
    assert [tuple(line.get_ydata()) for line in flat] == [(148.2, 148.2)]
    texts = [t.get_text() for t in valid_ax.get_legend().get_texts()]
    assert texts[0] == "lstm" and texts[1].startswith("kn-3: 148.2") and len(texts) == 2


def test_a_reference_outside_the_curves_widens_the_axis():
    ax = curves_figure({"lstm": curve(3, 6.0, 5.0)}, references={"add1": 40.0}).axes[1]
    lo, hi = ax.get_ylim()
    assert lo < 5.0 and hi > 40.0


def test_curves_plot_writes_a_png(tmp_path):
    curves_plot({"lstm": curve(3, 6.0, 5.0)}, tmp_path / "c.png", "t", references={"kn": 5.5})
    assert (tmp_path / "c.png").read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in tmp_path.iterdir()] == ["c.png"]  # no temporary file left behind


# ---------------------------------------------------------------- perplexity bars


def ppl_frame(with_intervals: bool) -> pd.DataFrame:
    rows = [("kn-3", "test", 141.0, True), ("mle-3", "test", math.inf, True), ("stupid", "test", 90.0, False)]
    frame = pd.DataFrame(rows, columns=["model", "split", "perplexity", "comparable"])
    if with_intervals:
        frame["ppl_low"] = [135.0, math.nan, 85.0]
        frame["ppl_high"] = [148.0, math.nan, 95.0]
    return frame


def test_bootstrap_intervals_are_error_bars_on_comparable_finite_rows():
    ax = perplexity_figure(ppl_frame(True)).axes[0]
    bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(bars) == 1
    (segment,) = bars[0].lines[2][0].get_segments()
    assert segment[:, 1].tolist() == [135.0, 148.0] and ax.get_ylim()[1] > 148.0


def test_infinite_and_not_comparable_rows_stay_hatched_and_na():
    for frame in (ppl_frame(False), ppl_frame(True)):
        ax = perplexity_figure(frame).axes[0]
        texts = [t.get_text() for t in ax.texts]
        assert "inf" in texts and "n/a" in texts and "141.0" in texts
        assert any(p.get_hatch() == "//" for p in ax.patches)


def test_perplexity_plot_writes_a_png(tmp_path):
    perplexity_plot(ppl_frame(True), tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG_MAGIC


# ---------------------------------------------------------------- frequency buckets


def bucket_frame() -> pd.DataFrame:
    rows = []
    for model, scale in (("kn-3", 1.0), ("lstm", 0.6)):
        for bucket, n, ppl in (("<unk>", 4500, 900.0), ("1", 1200, 9000.0), ("2-10", 9000, 2500.0),
                               (">10k", 18_000, 4.0)):
            value = math.inf if (model == "kn-3" and bucket == "1") else ppl * scale
            rows.append(dict(model=model, split="test", bucket=bucket, n_tokens=n, nll_nats=0.0, perplexity=value,
                             share_nll=0.25))
    return pd.DataFrame(rows)


def test_buckets_keep_their_order_and_show_token_counts():
    ax = buckets_figure(bucket_frame()).axes[0]
    assert labels(ax, "x") == ["<unk>\n4.5k tok", "1\n1.2k tok", "2-10\n9k tok", ">10k\n18k tok"]
    assert ax.get_yscale() == "log"
    lstm = [line for line in ax.get_lines() if line.get_label() == "lstm"][0]
    assert lstm.get_marker() == "o"
    assert lstm.get_xdata().tolist() == [0, 1, 2, 3]
    assert lstm.get_ydata().tolist() == pytest.approx([540.0, 5400.0, 1500.0, 2.4])


def test_an_infinite_bucket_breaks_the_line_and_is_marked():
    ax = buckets_figure(bucket_frame()).axes[0]
    kn = [line for line in ax.get_lines() if line.get_label() == "kn-3"][0]
    assert np.isnan(kn.get_ydata()[1]) and np.isfinite(kn.get_ydata()[[0, 2, 3]]).all()
    marks = [line for line in ax.get_lines() if line.get_marker() == "^"]
    assert len(marks) == 1 and marks[0].get_xdata().tolist() == [1]


def test_one_panel_per_split_with_its_own_token_counts(tmp_path):
    valid = bucket_frame().assign(split="valid", n_tokens=lambda f: f["n_tokens"] + 1)
    frame = pd.concat([valid, bucket_frame()])
    fig = buckets_figure(frame)
    assert [ax.get_title() for ax in fig.axes[:2]] == ["valid", "test"]
    assert labels(fig.axes[0], "x")[0] == "<unk>\n4.5k tok" and labels(fig.axes[0], "x")[2] == "2-10\n9k tok"
    buckets_plot(frame, tmp_path / "b.png")
    assert (tmp_path / "b.png").read_bytes()[:8] == PNG_MAGIC


# ---------------------------------------------------------------- sweeps and helpers


def test_sweep_draws_one_sorted_line_per_model_on_log_x():
    frame = pd.DataFrame({"model": ["kn", "kn", "kn", "lstm", "lstm", "kn"],
                          "split": ["test", "test", "test", "test", "test", "valid"],
                          "train_tokens": [100_000, 10_000, 1_000_000, 10_000, 1_000_000, 10_000],
                          "perplexity": [300.0, 500.0, 200.0, 800.0, 150.0, 1.0]})
    ax = sweep_figure(frame).axes[0]
    assert ax.get_xscale() == "log"
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert lines["kn"].get_xdata().tolist() == [10_000, 100_000, 1_000_000]
    assert lines["kn"].get_ydata().tolist() == [500.0, 300.0, 200.0]  # the valid row is left out
    assert lines["lstm"].get_marker() == "o"
    assert {"10k", "100k", "1M"} <= set(labels(ax, "x"))


def test_log_ticks_take_the_sparsest_set_with_enough_ticks():
    assert log_ticks(40, 1000).tolist() == [50, 100, 200, 500, 1000]
    assert log_ticks(3, 14).tolist() == [3, 4, 5, 6, 7, 8, 9, 10]


def test_token_counts_are_short():
    assert [token_count(n) for n in (950, 12_000, 1_234_567)] == ["950", "12k", "1.23M"]
