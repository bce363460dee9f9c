"""Figures: no global matplotlib state, readable axes at any length, marks a reader can decode, legends that
cover nothing, buckets, sweeps, Zipf fits over their own ranks, and the cost of every model."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lmbench.analysis.zipf import MISS_FACTOR, fit_lines, fit_zipf
from lmbench.errors import LmbenchError
from lmbench.report.plots import (
    CUT_HATCH, HEADROOM, VALID_HATCH, buckets_figure, buckets_plot, cost_figure, cost_plot, curves_figure,
    curves_plot, log_ticks, pareto_front, perplexity_figure, perplexity_plot, sweep_figure, token_count, zipf_figure,
)

pytestmark = pytest.mark.plots  # what the PNGs show is the point

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


def legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def legend_is_outside(fig) -> bool:
    """True when every legend of the figure lies right of every axes (so it covers nothing drawn)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    right = max(ax.get_window_extent(renderer).x1 for ax in fig.axes)
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return bool(legends) and all(leg.get_window_extent(renderer).x0 >= right for leg in legends)


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
    texts = legend_texts(valid_ax)
    assert texts == ["lstm", "fitted without epochs:", "kn-3: 148.2"]


def test_a_reference_outside_the_curves_widens_the_axis():
    ax = curves_figure({"lstm": curve(3, 6.0, 5.0)}, references={"add1": 40.0}).axes[1]
    lo, hi = ax.get_ylim()
    assert lo < 5.0 and hi > 40.0


def test_reference_lines_differ_for_any_number_of_ngrams_and_say_what_they_are():
    references = {f"{n}gram-{m}": 100.0 + 7 * n + m for n in range(2, 7) for m in range(4)}  # 20 n-grams
    valid_ax = curves_figure({"lstm": curve(4, 400.0, 120.0)}, references=references).axes[1]
    flat = [line for line in valid_ax.get_lines() if len(set(line.get_ydata())) == 1]
    assert len(flat) == 20
    assert len({(line.get_color(), line.get_linestyle()) for line in flat}) == 20  # no two share color and style
    assert "-" not in {line.get_linestyle() for line in flat}  # solid lines are the curves
    texts = legend_texts(valid_ax)
    assert all(f"{name}: {ppl:.4g}" in texts for name, ppl in references.items())
    assert not any("one step" in t for t in texts)


def test_both_panels_follow_one_y_scale_rule():
    frame = curve(5, 60.0, 55.0).assign(train_ppl=[900.0, 400.0, 200.0, 100.0, 50.0])  # only train spans widely
    train_ax, valid_ax = curves_figure({"lstm": frame}).axes[:2]
    assert train_ax.get_yscale() == valid_ax.get_yscale() == "log"
    assert train_ax.get_ylim() == valid_ax.get_ylim()
    lo, hi = valid_ax.get_ylim()
    assert lo < 50.0 and hi > 900.0


def test_a_partial_last_epoch_is_an_open_marker_at_the_end_of_a_dashed_segment():
    frame = curve(3, 12.0, 6.0).assign(complete=[True, True, False])
    fig = curves_figure({"lstm": frame}, references={"kn": 5.0})
    for ax in fig.axes[:2]:
        solid = [line for line in ax.get_lines() if line.get_label() == "lstm"][0]
        assert solid.get_xdata().tolist() == [1.0, 2.0]  # the partial epoch is not drawn as a finished one
        partial = [line for line in ax.get_lines() if line.get_label() == "_partial"]
        dashed = [line for line in partial if line.get_linestyle() == "--"]
        opened = [line for line in partial if line.get_markerfacecolor() == "white"]
        assert [list(line.get_xdata()) for line in dashed] == [[2.0, 3.0]]
        assert [list(line.get_xdata()) for line in opened] == [[3.0]]
    assert "epoch cut short (partial)" in legend_texts(fig.axes[1])


def test_a_partial_epoch_without_validation_is_drawn_on_the_training_panel_only():
    frame = pd.DataFrame({"epoch": [1], "train_ppl": [16.1], "valid_ppl": [math.nan], "complete": [False]})
    train_ax, valid_ax = curves_figure({"lstm": frame}).axes[:2]
    assert any(line.get_markerfacecolor() == "white" for line in train_ax.get_lines())
    assert not any(line.get_label() == "_partial" for line in valid_ax.get_lines())
    assert legend_texts(valid_ax)[0] == "lstm (never validated)"


def test_the_curves_legend_is_outside_the_panels():
    assert legend_is_outside(curves_figure({"lstm": curve(3, 6.0, 5.0)}, references={"kn": 5.5}))


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


def marked_frame() -> pd.DataFrame:
    """PTB-like rows: an n-gram, an lstm cut short whose valid row was used in fitting, with intervals."""
    rows = [("kn-5", "valid", 148.0, 142.3, 153.4, False, ""), ("kn-5", "test", 141.2, 136.9, 146.0, False, ""),
            ("add1", "valid", 900.0, 880.0, 921.0, False, ""), ("add1", "test", 880.0, 861.0, 899.0, False, ""),
            ("lstm", "valid", 180.0, 174.0, 186.0, True, "time_budget"),
            ("lstm", "test", 176.0, 170.0, 181.0, False, "time_budget")]
    frame = pd.DataFrame(rows, columns=["model", "split", "perplexity", "ppl_low", "ppl_high", "tuned_on_valid",
                                        "stopped_by"])
    return frame.assign(comparable=True, token_unit="run", bits_per_byte=np.log2(frame["perplexity"]) / 5)


def bar_hatches(ax) -> dict:
    """(x rounded, height rounded) -> hatch of every bar drawn."""
    return {(round(p.get_x() + p.get_width() / 2, 2), round(p.get_height(), 1)): p.get_hatch() or ""
            for p in ax.patches}


def test_the_legend_has_no_title_over_its_swatches_and_covers_no_bar():
    fig = perplexity_figure(ppl_frame(True))
    legend = fig.axes[0].get_legend()
    assert legend.get_title().get_text() == ""
    assert "95% bootstrap interval" in legend_texts(fig.axes[0])  # an entry of its own, not a title
    assert legend_is_outside(fig)


def test_valid_star_and_cut_short_bars_are_hatched_and_the_legend_says_what_each_mark_means():
    ax = perplexity_figure(marked_frame()).axes[0]
    hatches = {height: hatch for (_, height), hatch in bar_hatches(ax).items()}
    assert VALID_HATCH in hatches[180.0] and CUT_HATCH in hatches[180.0]  # lstm valid*: both marks
    assert hatches[176.0] == CUT_HATCH  # lstm test: cut short only
    assert hatches[148.0] == hatches[141.2] == ""
    texts = " ".join(legend_texts(ax))
    assert "valid*: valid used in fitting" in texts and "cut short by the time budget" in texts
    assert "not a finished fit" in texts


def test_the_axis_ends_just_above_the_tallest_interval():
    ax = perplexity_figure(marked_frame()).axes[0]
    bottom, top = ax.get_ylim()
    tallest = 921.0
    assert top > tallest
    assert math.log(top / tallest) / math.log(top / bottom) <= HEADROOM + 1e-9


def test_ptb_perplexities_get_several_labelled_log_ticks():
    shown = labels(perplexity_figure(marked_frame()).axes[0])
    assert len(shown) >= 4 and {"200", "500"} <= set(shown)


def test_models_over_their_own_tokens_are_drawn_by_bits_per_byte_only():
    frame = pd.concat([marked_frame(), pd.DataFrame([
        dict(model="hf:tiny", split="valid", perplexity=30.0, ppl_low=29.0, ppl_high=31.0, comparable=True,
             tuned_on_valid=False, stopped_by="", token_unit="gpt2", bits_per_byte=1.1),
        dict(model="hf:tiny", split="test", perplexity=31.0, ppl_low=30.0, ppl_high=32.0, comparable=True,
             tuned_on_valid=False, stopped_by="", token_unit="gpt2", bits_per_byte=1.2)])], ignore_index=True)
    fig = perplexity_figure(frame)
    ppl_ax, bpb_ax = fig.axes[:2]
    assert labels(ppl_ax, "x") == ["kn-5", "add1", "lstm"]  # not on the perplexity axis
    assert labels(bpb_ax, "x") == ["kn-5", "add1", "lstm", "hf:tiny"]
    assert bpb_ax.get_yscale() == "linear" and bpb_ax.get_ylim()[0] == 0
    heights = sorted(round(p.get_height(), 6) for p in bpb_ax.patches)
    assert heights == sorted(round(b, 6) for b in frame["bits_per_byte"])
    assert "own tokens" in bpb_ax.get_title()
    assert 30.0 not in {round(p.get_height(), 1) for p in ppl_ax.patches}


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
    assert lstm.get_xdata() == pytest.approx([0, 1, 2, 3], abs=0.1)
    assert lstm.get_ydata().tolist() == pytest.approx([540.0, 5400.0, 1500.0, 2.4])


def test_an_infinite_bucket_breaks_the_line_and_is_marked():
    ax = buckets_figure(bucket_frame()).axes[0]
    kn = [line for line in ax.get_lines() if line.get_label() == "kn-3"][0]
    assert np.isnan(kn.get_ydata()[1]) and np.isfinite(kn.get_ydata()[[0, 2, 3]]).all()
    marks = [line for line in ax.get_lines() if line.get_marker() == "^"]
    assert len(marks) == 1 and marks[0].get_xdata() == pytest.approx([1], abs=0.1)


def test_inf_markers_sit_inside_the_axes_above_every_finite_point():
    ax = buckets_figure(bucket_frame()).axes[0]
    (mark,) = [line for line in ax.get_lines() if line.get_marker() == "^"]
    assert mark.get_transform() == ax.get_xaxis_transform()  # y in axes fraction: always on screen
    (y,) = mark.get_ydata()
    lo, hi = ax.get_ylim()
    finite_top = math.log(9000.0 * 0.6 / lo) / math.log(hi / lo)  # the highest finite point, as axes fraction
    assert finite_top < 0.9 < y < 1.0


def test_models_with_equal_values_stay_visible():
    frame = pd.concat([bucket_frame(), bucket_frame().query("model == 'lstm'").assign(model="gru")])
    ax = buckets_figure(frame).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    assert lines["lstm"].get_ydata().tolist() == lines["gru"].get_ydata().tolist()
    assert not np.allclose(lines["lstm"].get_xdata(), lines["gru"].get_xdata())  # small offsets apart
    assert len({line.get_marker() for line in lines.values()}) == 3


def test_the_buckets_legend_covers_no_point():
    valid = bucket_frame().assign(split="valid")
    fig = buckets_figure(pd.concat([valid, bucket_frame()]))
    assert legend_is_outside(fig)
    assert "inf: a zero-probability\ntoken in the bucket" in legend_texts(fig.axes[-1])


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


def sweep_frame() -> pd.DataFrame:
    rows = [("kn", "n-gram", 0.005, 360, 12.2, 11.9, 12.5, "done"),
            ("kn", "n-gram", 0.1, 11_146, 6.8, 6.6, 7.0, "done"),
            ("kn", "n-gram", 1.0, 140_521, 4.3, 4.2, 4.4, "done"),
            ("lstm", "neural", 0.005, 360, math.nan, math.nan, math.nan, "infeasible"),
            ("lstm", "neural", 0.1, 11_146, 18.4, 18.2, 18.6, "done"),
            ("lstm", "neural", 1.0, 140_521, 8.5, 8.4, 8.7, "done")]
    frame = pd.DataFrame(rows, columns=["model", "family", "fraction", "train_tokens", "perplexity", "ppl_low",
                                        "ppl_high", "status"])
    return frame.assign(split="test", reason=np.where(frame["status"] == "infeasible", "too few tokens", ""))


def test_sweep_intervals_come_from_the_table():
    ax = sweep_figure(sweep_frame()).axes[0]
    bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    segments = sorted(tuple(np.round(seg[:, 1], 3)) for c in bars for seg in c.lines[2][0].get_segments())
    assert segments == sorted([(11.9, 12.5), (6.6, 7.0), (4.2, 4.4), (18.2, 18.6), (8.4, 8.7)])
    assert "95% bootstrap interval" in legend_texts(ax)


def test_infeasible_sweep_points_are_marked_at_their_size():
    ax = sweep_figure(sweep_frame()).axes[0]
    (mark,) = [line for line in ax.get_lines() if line.get_label() == "_infeasible"]
    assert mark.get_marker() == "x" and mark.get_xdata().tolist() == [360.0]
    assert mark.get_transform() == ax.get_xaxis_transform() and 0 < mark.get_ydata()[0] < 0.1
    assert any(t.startswith("infeasible at that size") for t in legend_texts(ax))
    lstm = [line for line in ax.get_lines() if line.get_label() == "lstm"][0]
    assert lstm.get_xdata().tolist() == [11_146, 140_521]


def test_sweep_ticks_cover_every_size_and_every_interval():
    ax = sweep_figure(sweep_frame()).axes[0]
    assert labels(ax, "x") == ["360", "11.1k", "141k"]
    lo, hi = ax.get_ylim()
    assert lo < 4.2 and hi > 18.6 and len(labels(ax)) >= 4


# ---------------------------------------------------------------- Zipf's law


def zipf_counts(alpha: float, n_types: int, scale: float, head: float = 0.0) -> np.ndarray:
    """Counts in rank order following scale * (r + head)^-alpha (head > 0: a flat Mandelbrot head)."""
    r = np.arange(1, n_types + 1)
    return np.maximum(np.round(scale * (r + head) ** -alpha), 1).astype(np.int64)


def test_fit_lines_are_drawn_over_their_ranks_and_never_above_the_data():
    counts = zipf_counts(1.0, 3000, 2e5, head=8.0)  # a flat head: the least-squares line starts above the data
    fit = fit_zipf(counts, 1)
    lines = fit_lines(fit)
    ls_ranks, ls_counts = lines[next(k for k in lines if k.startswith("least squares"))]
    assert ls_counts[0] > counts[0]  # the fitted line would rise above the largest count
    ax = zipf_figure({1: counts}, {1: lines}).axes[0]
    fitted_on = {"--": fit.rank_max, ":": fit.mle_rank_max}  # least squares dashed, MLE dotted
    drawn = [line for line in ax.get_lines() if line.get_linestyle() in fitted_on]
    assert len(drawn) == len(lines) == 2
    for line in drawn:
        x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
        assert y.max() <= counts[0] * (1 + 1e-9)  # not above the data
        assert x.min() >= 1 - 1e-9 and x.max() == pytest.approx(fitted_on[line.get_linestyle()], rel=1e-6)


def test_the_zipf_legend_has_one_entry_per_n_and_one_per_kind_of_fit():
    rng = np.random.default_rng(0)
    curves = {n: np.sort(rng.zipf(1.8 + 0.2 * n, 20_000))[::-1] for n in (1, 2, 3)}
    fits = {n: fit_lines(fit_zipf(c, n)) for n, c in curves.items()}
    ax = zipf_figure(curves, fits).axes[0]
    texts = legend_texts(ax)
    assert len(texts) == 3 + len({k.partition(":")[0] for lines in fits.values() for k in lines})
    assert texts[0].startswith("1-grams (least squares alpha=") and "least squares fit" in texts


def test_a_fit_that_visibly_misses_the_data_is_flagged_in_its_note():
    missed = fit_zipf(zipf_counts(1.0, 3000, 2e5, head=8.0), 1)
    assert "the least squares line misses the data by a factor" in missed.note and "at rank 1 " in missed.note
    factor = float(missed.note.split("by a factor ")[1].split()[0])
    assert factor > MISS_FACTOR
    close = fit_zipf(zipf_counts(1.0, 3000, 2e5), 1)  # an exact power law: both ends on the data
    assert "misses" not in close.note


# ---------------------------------------------------------------- cost


def cost_table() -> pd.DataFrame:
    rows = [("bigram", "n-gram", 2.8, 9e3, 0.01, ""), ("kn-5", "n-gram", 2.1, 1.3e6, 0.07, ""),
            ("lstm", "neural", 2.7, 1.2e6, 19.6, "time_budget"), ("deep-lstm", "neural", 2.5, 3.3e6, 35.0, "epochs"),
            ("hf:tiny", "pretrained", 1.9, 5e8, 0.5, ""), ("stupid", "n-gram", math.nan, 1e4, 0.01, "")]
    test = pd.DataFrame(rows, columns=["model", "family", "bits_per_byte", "model_bytes", "fit_seconds", "stopped_by"])
    test = test.assign(split="test", comparable=test["model"] != "stupid",
                       token_unit=np.where(test["model"] == "hf:tiny", "gpt2", "run"))
    return pd.concat([test.assign(split="valid", bits_per_byte=test["bits_per_byte"] + 0.1), test], ignore_index=True)


def test_pareto_front_keeps_the_models_no_other_beats_on_both_axes():
    x, y = [1, 2, 3, 4, 4], [5.0, 3.0, 4.0, 1.0, 0.5]
    assert pareto_front(x, y) == [0, 1, 4]
    assert pareto_front([1, 1], [2.0, 2.0]) == [0]


def test_cost_figure_draws_one_labelled_point_per_model_on_log_axes_with_the_front():
    fig = cost_figure(cost_table())
    size_ax, time_ax = fig.axes[:2]
    for ax in (size_ax, time_ax):
        assert ax.get_xscale() == "log"
        points = [line for line in ax.get_lines() if line.get_marker() == "o"]
        assert len(points) == 5  # test rows only, stupid backoff (no bits per byte) left out, hf:tiny kept
        names = sorted(t.get_text() for t in ax.texts)
        assert names == sorted(["bigram", "kn-5", "lstm^", "deep-lstm", "hf:tiny"])
        assert all(line.get_ydata()[0] < 2.9 for line in points)  # test, not valid, bits per byte
    (front,) = [line for line in size_ax.get_lines() if line.get_label() == "Pareto front"]
    assert front.get_drawstyle() == "steps-post"
    assert front.get_xdata().tolist()[:4] == [9e3, 1.2e6, 1.3e6, 5e8]
    assert front.get_ydata().tolist()[:4] == [2.8, 2.7, 2.1, 1.9]
    (front,) = [line for line in time_ax.get_lines() if line.get_label() == "Pareto front"]
    assert front.get_xdata().tolist()[:3] == [0.01, 0.07, 0.5]
    assert legend_is_outside(fig)
    assert "name^: cut short by the\ntime budget" in legend_texts(time_ax)
    assert "not drawn (no finite bits\nper byte): stupid" in legend_texts(time_ax)


def test_cost_plot_writes_a_png_and_a_table_without_cost_columns_is_one_line(tmp_path):
    cost_plot(cost_table(), tmp_path / "cost.png", "t")
    assert (tmp_path / "cost.png").read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(LmbenchError, match="no model_bytes, fit_seconds column"):
        cost_figure(cost_table().drop(columns=["model_bytes", "fit_seconds"]))


def test_log_ticks_take_the_sparsest_set_with_enough_ticks():
    assert log_ticks(40, 1000).tolist() == [50, 100, 200, 500, 1000]
    assert log_ticks(3, 14).tolist() == [3, 4, 5, 6, 7, 8, 9, 10]


def test_token_counts_are_short():
    assert [token_count(n) for n in (950, 12_000, 1_234_567)] == ["950", "12k", "1.23M"]


def test_labels_that_would_overprint_move_to_the_other_side_then_below():
    from lmbench.report.plots import label_places

    # a label running right from 0.2 and one running left from 0.5 would cover each other at one height
    assert label_places([0.2, 0.5], [0.5, 0.5], [0.25, 0.25], [True, False]) == [(3.0, True), (3.0, True)]
    # three labels at one point: above on the preferred side, above on the other, then below
    assert label_places([0.5] * 3, [0.5] * 3, [0.2] * 3, [True] * 3) == [(3.0, True), (3.0, False), (-9.0, True)]
    # far apart in y: nothing moves
    assert label_places([0.2, 0.5], [0.9, 0.1], [0.4, 0.4], [True, False]) == [(3.0, True), (3.0, False)]


def test_a_time_axis_is_labelled_at_round_durations():
    from lmbench.report.plots import duration_ticks, seconds_text

    assert [seconds_text(t) for t in duration_ticks(1.4, 900)] == ["2 s", "10 s", "50 s", "2 min", "10 min"]
    assert duration_ticks(0.003, 0.04) == pytest.approx([0.005, 0.01, 0.02])
    assert len(duration_ticks(1e-4, 1e5)) <= 7
