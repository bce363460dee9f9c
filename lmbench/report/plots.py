"""PNG figures: perplexity by model, learning curves, frequency buckets, data-size sweeps, Zipf curves, cost.

Nothing here touches global matplotlib state: figures are built as ``matplotlib.figure.Figure``
and rendered by ``FigureCanvasAgg``, never through pyplot, so the caller's backend (a notebook's
inline backend, say) is left as it was. matplotlib is imported inside the functions, which keeps
``import lmbench.report.plots`` cheap for commands that draw nothing.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LmbenchError
from ..files import atomic_write_bytes

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LOG_RATIO = 4.0  # a perplexity axis whose largest/smallest value exceeds this is drawn on a log scale
HEADROOM = 0.1  # share of a bar chart's log range left above the tallest bar or interval (room for its label)
_LOG_SUBS = ((1.0,), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0))


# ---------------------------------------------------------------- figures and files


def check_backend() -> None:
    """Raise a one-line LmbenchError now if matplotlib cannot be imported (e.g. ``MPLBACKEND`` names no backend).

    A run calls this before it fits anything, so a broken setup fails in a second, not after the models.
    """
    import os

    try:
        import matplotlib  # noqa: F401
    except ValueError as exc:
        backend = os.environ.get("MPLBACKEND")
        raise LmbenchError(f"matplotlib refuses MPLBACKEND={backend!r} ({str(exc).split(';')[0]}); unset MPLBACKEND "
                           f"or set MPLBACKEND=Agg (lmbench draws without a display)") from None
    except ImportError as exc:
        raise LmbenchError(f"matplotlib cannot be imported ({exc}); pip install matplotlib") from None


def safe_title(text: str) -> str:
    """A title matplotlib can render: characters no font can show (undecodable file-name bytes) replaced."""
    return text.encode("utf-8", "replace").decode("utf-8")


def new_figure(width: float, height: float, ncols: int = 1, sharey: bool = False,
               width_ratios: list[float] | None = None) -> tuple[Figure, list[Axes]]:
    """A Figure with ``ncols`` side-by-side axes, attached to an Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, sharey=sharey, squeeze=False, width_ratios=width_ratios)[0]
    return fig, list(axes)


def save_figure(fig: Figure, path: str | Path) -> None:
    """Render a figure to PNG and write it atomically (titles made renderable first)."""
    if fig._suptitle is not None:
        fig._suptitle.set_text(safe_title(fig._suptitle.get_text()))
    for ax in fig.axes:
        ax.set_title(safe_title(ax.get_title()))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    atomic_write_bytes(path, buffer.getvalue())


def plain_number(value: float) -> str:
    """A tick label without scientific notation: 5, 20, 1,500, 0.5."""
    return f"{value:,.0f}" if value >= 1000 and value == round(value) else f"{value:.4g}"


def byte_count(n: float) -> str:
    """A short size in decimal units: 900 B, 12 kB, 1.2 MB."""
    for scale, suffix in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if n >= scale:
            return f"{n / scale:.3g} {suffix}"
    return f"{n:.0f} B"


def seconds_text(s: float) -> str:
    """A short duration: 0.05 s, 12 s, 3.5 min, 2 h."""
    if s >= 7200:
        return f"{s / 3600:.3g} h"
    if s >= 60:
        return f"{s / 60:.3g} min"
    return f"{s:.2g} s" if s < 10 else f"{s:.0f} s"


def token_count(n: float) -> str:
    """A short token count: 950, 12k, 1.2M."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.3g}{suffix}"
    return f"{n:.0f}"


def perplexity_axis(ax: Axes, values, pad: float = 0.08) -> None:
    """Scale and tick a perplexity y axis so that it shows several labelled ticks.

    Log scale with ticks at 1-2-5 (or 1..9) times powers of ten when the finite values span more
    than :data:`LOG_RATIO`; linear with four to eight round ticks otherwise; a single value gets a
    band of +-5% around it.
    """
    import numpy as np
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

    finite = np.asarray([v for v in values if v is not None and math.isfinite(v) and v > 0], dtype=float)
    lo, hi = (finite.min(), finite.max()) if finite.size else (1.0, 10.0)
    formatter = FuncFormatter(lambda y, _: plain_number(y))
    if hi / lo > LOG_RATIO:
        ax.set_yscale("log")
        lo, hi = lo / (hi / lo) ** pad, hi * (hi / lo) ** pad
        ax.set_ylim(lo, hi)
        ax.set_yticks(log_ticks(lo, hi))
        ax.yaxis.set_minor_locator(NullLocator())
    else:
        if hi == lo:
            lo, hi = 0.95 * lo, 1.05 * hi
        span = hi - lo
        ax.set_ylim(max(lo - pad * span, 0), hi + pad * span)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=7, steps=[1, 2, 2.5, 5, 10], min_n_ticks=4))
    ax.yaxis.set_major_formatter(formatter)


def log_ticks(lo: float, hi: float, min_ticks: int = 4) -> np.ndarray:
    """Ticks in [lo, hi] at 1, 1-2-5 or 1..9 times powers of ten: the sparsest set with ``min_ticks``."""
    import numpy as np

    decades = 10.0 ** np.arange(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    for subs in _LOG_SUBS:
        ticks = np.outer(decades, subs).ravel()
        ticks = ticks[(ticks >= lo) & (ticks <= hi)]
        if ticks.size >= min_ticks:
            return ticks
    return ticks


#: durations a time axis is labelled at: 1-2-5 seconds, then whole minutes and hours.
_DURATIONS = sorted({m * 10.0 ** e for e in range(-4, 2) for m in (1, 2, 5)} | {60.0 * m for m in (1, 2, 5, 10, 20, 30)}
                    | {3600.0 * h for h in (1, 2, 5, 10, 24, 48)})


def duration_ticks(lo: float, hi: float, most: int = 7) -> list[float]:
    """Ticks for a log time axis over [lo, hi]: round durations (50 s, 2 min, 1 h), at most ``most`` of them."""
    ticks = [t for t in _DURATIONS if lo <= t <= hi]
    step = max(1, math.ceil(len(ticks) / most))
    return ticks[::step]


# ---------------------------------------------------------------- rows and their marks

VALID_HATCH = ".."   # a valid row that was used in fitting (printed valid*)
CUT_HATCH = "xx"     # a fit cut short by the time budget
INF_HATCH = "//"     # an infinite perplexity (a token given probability zero)
_MARKERS = ("o", "s", "D", "v", "P", "X", "*", "h", "p", "<", ">", "d")  # "^" is kept for "inf"
_FAMILY_COLORS = {"n-gram": "C0", "neural": "C1", "mixture": "C2", "pretrained": "C3"}


def column(frame: pd.DataFrame, name: str, default) -> pd.Series:
    """A column of ``frame`` with its missing cells, or the whole column when absent, set to ``default``."""
    import pandas as pd

    if name not in frame:
        return pd.Series([default] * len(frame), index=frame.index, dtype=object)
    return frame[name].astype(object).where(frame[name].notna(), default)


def own_tokens(frame: pd.DataFrame) -> pd.Series:
    """True for rows over the model's own tokens (a pretrained LM): their perplexity is not the run's."""
    unit = column(frame, "token_unit", "run").astype(str)
    return (unit != "run") & (unit != "")


def cut_short(frame: pd.DataFrame) -> pd.Series:
    """True for rows of a fit cut short by the time budget (``stopped_by == "time_budget"``)."""
    return column(frame, "stopped_by", "").astype(str) == "time_budget"


def tuned_on_valid(frame: pd.DataFrame) -> pd.Series:
    """True for valid rows that are not held out (valid was used in fitting)."""
    return column(frame, "tuned_on_valid", False).astype(bool)


def _legend_outside(ax: Axes, handles: list, **kwargs) -> None:
    """A legend to the right of ``ax``, outside it, so it covers nothing that is drawn."""
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, fontsize=8,
              title_fontsize=8, **kwargs)


def _text_handle(label: str):
    """A legend entry that is text only (a heading or a note)."""
    from matplotlib.lines import Line2D

    return Line2D([], [], ls="none", marker="none", label=label)


# ---------------------------------------------------------------- perplexity by model


def perplexity_plot(frame: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """Write :func:`perplexity_figure` as a PNG."""
    save_figure(perplexity_figure(frame, title), path)


def perplexity_figure(frame: pd.DataFrame, title: str = "") -> Figure:
    """Grouped bars of held-out perplexity per model and split, log scale, with their marks explained.

    Infinite perplexities (zero-probability tokens) are white bars hatched ``//`` up to the top,
    labelled "inf"; rows that are not comparable (scores, not probabilities) are labelled "n/a".
    Bootstrap 95% intervals (``ppl_low``/``ppl_high``) are error bars. A valid row used in fitting
    (``valid*``) is hatched ``..``, a fit cut short by the time budget ``xx``; the legend, outside the
    axes, says what each mark means. The axis ends a little above the tallest bar or interval and
    is ticked at 1-2-5 (or 1..9) times powers of ten, at least four labels.

    Models over their own tokens (``token_unit`` other than "run": pretrained LMs) are not drawn on
    the perplexity axis, whose units they do not share: a second panel shows the bits per byte of
    every model, the figure all of them share.
    """
    own = own_tokens(frame)
    run_rows = frame[~own]
    panels = ([("perplexity", run_rows)] if len(run_rows) or not own.any() else []) + (
        [("bits_per_byte", frame)] if own.any() else [])
    counts = [len(dict.fromkeys(rows["model"])) for _, rows in panels]
    fig, axes = new_figure(max(6.0, sum(1.1 * n + 1.2 for n in counts) + 2.6), 4.6, ncols=len(panels),
                           width_ratios=[n + 1 for n in counts])
    marks: dict = {}
    splits = list(dict.fromkeys(frame["split"]))
    for ax, (metric, rows) in zip(axes, panels):
        _bar_panel(ax, rows, splits, metric, marks)
    if len(panels) == 2:
        own_models = ", ".join(dict.fromkeys(frame.loc[own, "model"]))
        axes[0].set_title("perplexity over the run's tokens", fontsize=10)
        axes[1].set_title(f"bits per byte, every model\n({own_models}: over its own tokens)", fontsize=10)
        fig.suptitle(title or "held-out perplexity and bits per byte (lower is better)")
    else:
        axes[0].set_title(title or ("held-out bits per byte (lower is better)" if panels[0][0] == "bits_per_byte"
                                    else "held-out perplexity (lower is better)"))
    _legend_outside(axes[-1], _bar_legend(splits, marks), handleheight=1.6, handlelength=2.4)
    return fig


def _bar_panel(ax: Axes, rows: pd.DataFrame, splits: list, metric: str, marks: dict) -> None:
    """Bars of ``metric`` (perplexity on a log axis, or bits per byte on a linear one from 0) per model and split."""
    import numpy as np
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

    models = list(dict.fromkeys(rows["model"]))
    usable = rows[rows["comparable"].astype(bool)]
    values, lows, highs = _bar_values(usable, metric)
    finite = [v for v in np.concatenate([values, lows, highs]) if math.isfinite(v) and v > 0]
    log = metric == "perplexity"
    hi = max(finite) if finite else 10.0
    if log:
        bottom = max(min(finite) / 2, 1.0) if finite else 1.0
        hi = max(hi, bottom * 1.5)  # perplexities at 1 (the floor) still get an axis
        top = math.exp((math.log(hi) - HEADROOM * math.log(bottom)) / (1 - HEADROOM))
        ax.set_yscale("log")
    else:
        bottom, top = 0.0, hi / (1 - HEADROOM)
    ax.set_ylim(bottom, top)
    width = 0.8 / len(splits)
    flags = {"valid": tuned_on_valid(rows), "cut": cut_short(rows)}
    for j, split in enumerate(splits):
        for i, model in enumerate(models):
            where = (rows["model"] == model) & (rows["split"] == split)
            if where.any():
                index = where[where].index[0]
                hatch = (CUT_HATCH if flags["cut"][index] else "") + (VALID_HATCH if flags["valid"][index] else "")
                x = i + (j - (len(splits) - 1) / 2) * width
                _bar(ax, x, width, rows.loc[index], metric, (bottom, top), hatch, f"C{j % 10}", marks)
    plain = FuncFormatter(lambda y, _: plain_number(y))
    if log:
        ax.set_yticks(log_ticks(bottom, top))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_ylabel("perplexity (log scale)")
    else:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=7, steps=[1, 2, 2.5, 5, 10], min_n_ticks=4))
        ax.set_ylabel("bits per byte")
    ax.yaxis.set_major_formatter(plain)
    ax.set_ylim(bottom, top)
    ax.set_xticks(range(len(models)), models, rotation=30, ha="right")
    ax.set_xlim(-0.6, len(models) - 0.4)
    ax.grid(axis="y", which="major", alpha=0.3)


def _bar_values(rows: pd.DataFrame, metric: str):
    """(values, interval lows, interval highs) of ``metric`` per row; NaN where there is no interval.

    Bits per byte are a fixed multiple of log perplexity for every row (its own tokens' count over
    the bytes), so a perplexity interval maps onto bits per byte as bpb * ln(bound) / ln(ppl).
    """
    import numpy as np

    ppl = rows["perplexity"].to_numpy(dtype=float)
    low = column(rows, "ppl_low", math.nan).to_numpy(dtype=float)
    high = column(rows, "ppl_high", math.nan).to_numpy(dtype=float)
    ok = np.isfinite(low) & np.isfinite(high) & (low > 0) & (low <= ppl) & (ppl <= high)
    if metric == "perplexity":
        return ppl, np.where(ok, low, np.nan), np.where(ok, high, np.nan)
    bpb = column(rows, "bits_per_byte", math.nan).to_numpy(dtype=float)
    ok &= np.isfinite(bpb) & (ppl > 1) & np.isfinite(ppl)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(ok, bpb / np.log(np.where(ok, ppl, 2.0)), np.nan)
        return bpb, np.where(ok, scale * np.log(np.where(ok, low, 1.0)), np.nan), np.where(
            ok, scale * np.log(np.where(ok, high, 1.0)), np.nan)


def _bar(ax: Axes, x: float, width: float, row, metric: str, limits: tuple, hatch: str, color: str,
         marks: dict) -> None:
    """One bar, its interval and its value label; ``marks`` collects the marks used (for the legend)."""
    bottom, top = limits
    values, lows, highs = _bar_values(row.to_frame().T, metric)
    value, low, high = float(values[0]), float(lows[0]), float(highs[0])
    base = bottom if metric == "perplexity" else 0.0
    at = ax.get_xaxis_transform()  # x in data, y as a share of the axis height
    if not row["comparable"]:
        ax.text(x, 0.02, "n/a", ha="center", va="bottom", fontsize=8, transform=at)
        marks["n/a"] = True
    elif math.isnan(value):
        ax.text(x, 0.02, "nan", ha="center", va="bottom", fontsize=8, transform=at)
        marks["nan"] = True
    elif math.isinf(value):
        ax.bar(x, top - base, width, bottom=base, color="white", edgecolor=color, hatch=INF_HATCH + hatch)
        ax.text(x, 0.97, "inf", ha="center", va="top", fontsize=8, transform=at)
        marks["inf"] = True
    else:
        ax.bar(x, value, width, color=color, hatch=hatch or None, edgecolor="white" if hatch else None,
               linewidth=0.6 if hatch else 0)
        label_at = value
        if math.isfinite(low) and math.isfinite(high):
            bars = ax.errorbar(x, value, yerr=[[value - low], [high - value]], fmt="none", ecolor="black",
                               elinewidth=1, capsize=3)
            marks.setdefault("interval", bars)
            label_at = high
        digits = 1 if metric == "perplexity" else 3
        ax.annotate(f"{value:.{digits}f}", (x, label_at), xytext=(0, 2), textcoords="offset points", ha="center",
                    va="bottom", fontsize=7)
    if CUT_HATCH in hatch:
        marks["cut"] = True
    if VALID_HATCH in hatch:
        marks["valid"] = True


def _bar_legend(splits: list, marks: dict) -> list:
    """Legend entries: a swatch per split, then one per mark the figure uses, saying what it means."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(color=f"C{j % 10}", label=split) for j, split in enumerate(splits)]
    if "interval" in marks:
        handles.append(marks["interval"])
        handles[-1].set_label("95% bootstrap interval")
    if marks.get("valid"):
        handles.append(Patch(facecolor="0.55", edgecolor="white", hatch=VALID_HATCH,
                             label="valid*: valid used in fitting\n(not a held-out figure)"))
    if marks.get("cut"):
        handles.append(Patch(facecolor="0.55", edgecolor="white", hatch=CUT_HATCH,
                             label="cut short by the time budget\n(not a finished fit)"))
    if marks.get("inf"):
        handles.append(Patch(facecolor="white", edgecolor="0.35", hatch=INF_HATCH,
                             label="inf: a token given probability 0"))
    if marks.get("n/a"):
        handles.append(Line2D([], [], ls="none", marker="$n/a$", markersize=14, color="black",
                              label="scores, not probabilities"))
    if marks.get("nan"):
        handles.append(Line2D([], [], ls="none", marker="$nan$", markersize=14, color="black",
                              label="a numerical failure (NaN)"))
    return handles


# ---------------------------------------------------------------- learning curves

#: reference lines cycle through these colors and styles together: (color, style) pairs repeat
#: only after len(colors) * len(styles) lines (the lengths have no common factor); solid is the curves'.
REFERENCE_COLORS = ("black", "0.5", "saddlebrown", "darkslateblue", "darkolivegreen", "darkmagenta", "teal")
REFERENCE_STYLES = (":", "--", "-.")


def reference_style(j: int) -> dict:
    """Color and line style of the ``j``-th reference line (distinct for the first 21)."""
    return dict(color=REFERENCE_COLORS[j % len(REFERENCE_COLORS)], ls=REFERENCE_STYLES[j % len(REFERENCE_STYLES)])


def curves_plot(curves: dict[str, pd.DataFrame], path: str | Path, title: str = "",
                references: dict[str, float] | None = None) -> None:
    """Write :func:`curves_figure` as a PNG."""
    save_figure(curves_figure(curves, title, references), path)


def curves_figure(curves: dict[str, pd.DataFrame], title: str = "",
                  references: dict[str, float] | None = None) -> Figure:
    """Training and validation perplexity per epoch, one panel each, for every iteratively trained model.

    Args:
        curves: model label -> DataFrame with columns epoch, train_ppl, valid_ppl and optionally
            ``complete`` (False for an epoch cut short by the time budget).
        title: figure title.
        references: label -> validation perplexity of a model fitted without epochs (an n-gram, say),
            drawn as a horizontal line on the validation panel, each in its own color and style and
            named in the legend; inf and NaN are skipped.

    One y-scale rule for both panels: they share one axis, log when all the values drawn (both
    panels and the references) span more than :data:`LOG_RATIO`, else linear. Every epoch is a
    marker, so a 1-epoch run shows its point; an epoch cut short is an open marker at the end of a
    dashed segment.
    """
    import numpy as np
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    references = {k: float(v) for k, v in (references or {}).items() if v is not None and math.isfinite(v)}
    fig, (train_ax, valid_ax) = new_figure(11, 4.6, ncols=2, sharey=True)
    values = list(references.values())
    max_epoch, any_partial, handles = 1, False, []
    for i, (label, frame) in enumerate(curves.items()):
        color = f"C{i % 10}"
        epochs = frame["epoch"].to_numpy(dtype=float)
        complete = column(frame, "complete", True).astype(bool).to_numpy()
        validated = False
        for ax, col in ((train_ax, "train_ppl"), (valid_ax, "valid_ppl")):
            y = column(frame, col, math.nan).to_numpy(dtype=float)
            ok = np.isfinite(y)
            ax.plot(epochs[complete & ok], y[complete & ok], color=color, marker="o", markersize=3.5, lw=1.4,
                    label=label)
            any_partial |= _partial_epochs(ax, epochs, y, complete, color)
            values += list(y[ok])
            validated = validated or (col == "valid_ppl" and ok.any())
        handles.append(Line2D([], [], color=color, marker="o", markersize=3.5, lw=1.4,
                              label=label if validated else f"{label} (never validated)"))
        max_epoch = max(max_epoch, int(max(frame["epoch"], default=1)))
    if any_partial:
        handles.append(Line2D([], [], color="0.3", ls="--", marker="o", mfc="white", markersize=5, lw=1.2,
                              label="epoch cut short (partial)"))
    if references:
        handles.append(_text_handle("fitted without epochs:"))
    for j, (label, ppl) in enumerate(sorted(references.items(), key=lambda kv: kv[1])):
        handles.append(valid_ax.axhline(ppl, lw=1.2, label=f"{label}: {ppl:.4g}", **reference_style(j)))
    perplexity_axis(valid_ax, values)
    for ax, split in ((train_ax, "training"), (valid_ax, "validation")):
        ax.set_title(f"{split} perplexity")
        ax.set_xlabel("epoch")
        ax.set_xlim(0.5, max_epoch + 0.5)
        if max_epoch <= 12:
            ax.set_xticks(range(1, max_epoch + 1))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=10, steps=[1, 2, 5, 10]))
        ax.grid(which="major", alpha=0.3)
    train_ax.set_ylabel("perplexity" + (" (log scale)" if valid_ax.get_yscale() == "log" else ""))
    _legend_outside(valid_ax, handles, title="model")
    fig.suptitle(title or "learning curves")
    return fig


def _partial_epochs(ax: Axes, epochs, y, complete, color: str) -> bool:
    """Draw each epoch cut short as an open marker, dashed from the last complete point; True if any."""
    import numpy as np

    drawn = False
    for k in np.flatnonzero(~complete & np.isfinite(y)):
        before = np.flatnonzero(complete[:k] & np.isfinite(y[:k]))
        if before.size:
            j = before[-1]
            ax.plot([epochs[j], epochs[k]], [y[j], y[k]], color=color, ls="--", lw=1.2, label="_partial")
        ax.plot([epochs[k]], [y[k]], color=color, ls="none", marker="o", mfc="white", mew=1.4, markersize=5,
                label="_partial")
        drawn = True
    return drawn


# ---------------------------------------------------------------- frequency buckets


def buckets_plot(frame: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """Write :func:`buckets_figure` as a PNG."""
    save_figure(buckets_figure(frame, title), path)


def model_offsets(n_models: int, spread: float = 0.3) -> list[float]:
    """Small x offsets, one per model, centered on 0 and within +-spread/2, so that equal points stay visible."""
    step = min(0.08, spread / max(n_models - 1, 1))
    return [(i - (n_models - 1) / 2) * step for i in range(n_models)]


def buckets_figure(frame: pd.DataFrame, title: str = "") -> Figure:
    """Perplexity by target-token frequency bucket, one line per model, one panel per split.

    Args:
        frame: columns model, split, bucket, n_tokens, nll_nats, perplexity, share_nll; buckets
            (``<unk>``, ``1``, ``2-10``, ...) are drawn in the order they first appear.
        title: figure title.

    Each x tick shows the bucket and how many target tokens fall in it (the same for every model:
    all are scored on the same tokens). Every model has its own marker and a small x offset, so
    models with equal values stay visible. Infinite perplexity (a zero-probability token in the
    bucket) breaks the model's line and is an open triangle in a band along the top, inside the
    axes. The legend sits outside the axes.
    """
    import numpy as np
    from matplotlib.lines import Line2D

    splits = list(dict.fromkeys(frame["split"]))
    fig, axes = new_figure(max(6.0, 5.2 * len(splits)) + 2.0, 4.6, ncols=len(splits), sharey=True)
    finite = [p for p in frame["perplexity"] if math.isfinite(p) and p > 0]
    perplexity_axis(axes[0], finite, pad=0.15)  # the top band, above every finite point, holds the triangles
    models = list(dict.fromkeys(frame["model"]))
    offsets = model_offsets(len(models))
    handles, any_inf = [], False
    for ax, split in zip(axes, splits):
        part = frame[frame["split"] == split]
        buckets = list(dict.fromkeys(part["bucket"]))
        position = {b: i for i, b in enumerate(buckets)}
        for i, model in enumerate(models):
            rows = part[part["model"] == model]
            if rows.empty:
                continue
            style = dict(color=f"C{i % 10}", marker=_MARKERS[i % len(_MARKERS)])
            x = np.array([position[b] for b in rows["bucket"]], dtype=float) + offsets[i]
            ppl = rows["perplexity"].to_numpy(dtype=float)
            ok = np.isfinite(ppl)
            ax.plot(x, np.where(ok, ppl, np.nan), markersize=4.5, lw=1.3, label=model, **style)
            if (~ok).any():  # the line breaks there; the triangle says why
                ax.plot(x[~ok], np.full((~ok).sum(), 0.95), ls="none", marker="^", mfc="none", ms=8, mew=1.5,
                        color=style["color"], transform=ax.get_xaxis_transform(), label="_inf")
                any_inf = True
        tokens = part.drop_duplicates("bucket").set_index("bucket")["n_tokens"]
        ax.set_xticks(range(len(buckets)), [f"{b}\n{token_count(tokens[b])} tok" for b in buckets], fontsize=8)
        ax.set_xlim(-0.5, len(buckets) - 0.5)
        ax.set_xlabel("training count of the target token")
        ax.set_title(f"{split}")
        ax.grid(alpha=0.3)
    for i, model in enumerate(models):
        handles.append(Line2D([], [], color=f"C{i % 10}", marker=_MARKERS[i % len(_MARKERS)], markersize=4.5, lw=1.3,
                              label=model))
    if any_inf:
        handles.append(Line2D([], [], color="0.3", ls="none", marker="^", mfc="none", ms=8, mew=1.5,
                              label="inf: a zero-probability\ntoken in the bucket"))
    axes[0].set_ylabel("perplexity within the bucket" + (" (log scale)" if axes[0].get_yscale() == "log" else ""))
    _legend_outside(axes[-1], handles)
    fig.suptitle(title or "perplexity by target-token frequency")
    return fig


# ---------------------------------------------------------------- data-size sweep


def sweep_plot(frame: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """Write :func:`sweep_figure` as a PNG."""
    save_figure(sweep_figure(frame, title), path)


def sweep_figure(frame: pd.DataFrame, title: str = "") -> Figure:
    """Test perplexity against training-set size, log x, one line with markers per model.

    Args:
        frame: sweep.csv's columns: model, train_tokens, perplexity, and optionally split (only
            ``test`` rows are drawn when it has any), ppl_low/ppl_high (drawn as error bars) and
            status ("infeasible" points: an x on the bottom edge at their size, in the model's color).
        title: figure title.

    The x ticks are the sizes of the sweep (when there are at most eight), so every point has one;
    an infinite perplexity is an open triangle along the top edge.
    """
    import numpy as np
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter, NullLocator

    if "split" in frame and (frame["split"] == "test").any():
        frame = frame[frame["split"] == "test"]
    infeasible = column(frame, "status", "done").astype(str) == "infeasible"
    fig, (ax,) = new_figure(7.8, 4.5)
    handles, marks = [], set()
    low = column(frame, "ppl_low", math.nan).astype(float)
    high = column(frame, "ppl_high", math.nan).astype(float)
    for i, model in enumerate(dict.fromkeys(frame["model"])):
        color = f"C{i % 10}"
        rows = frame[(frame["model"] == model) & ~infeasible].sort_values("train_tokens")
        x = rows["train_tokens"].to_numpy(dtype=float)
        ppl = rows["perplexity"].to_numpy(dtype=float)
        ok = np.isfinite(ppl)
        ax.plot(x, np.where(ok, ppl, np.nan), marker="o", markersize=4, lw=1.4, color=color, label=model)
        handles.append(Line2D([], [], marker="o", markersize=4, lw=1.4, color=color, label=model))
        lo, hi = low[rows.index].to_numpy(), high[rows.index].to_numpy()
        bounded = ok & np.isfinite(lo) & np.isfinite(hi) & (lo <= ppl) & (ppl <= hi)
        if bounded.any():
            ax.errorbar(x[bounded], ppl[bounded], yerr=[ppl[bounded] - lo[bounded], hi[bounded] - ppl[bounded]],
                        fmt="none", ecolor=color, elinewidth=1, capsize=3)
            marks.add("interval")
        if (~ok).any():
            ax.plot(x[~ok], np.full((~ok).sum(), 0.95), ls="none", marker="^", mfc="none", ms=8, mew=1.5,
                    color=color, transform=ax.get_xaxis_transform(), label="_inf")
            marks.add("inf")
        failed = frame[(frame["model"] == model) & infeasible]
        if len(failed):
            ax.plot(failed["train_tokens"].to_numpy(dtype=float), np.full(len(failed), 0.04), ls="none", marker="x",
                    ms=8, mew=2, color=color, transform=ax.get_xaxis_transform(), label="_infeasible")
            marks.add("infeasible")
    ax.set_xscale("log")
    sizes = sorted({float(t) for t in frame["train_tokens"] if math.isfinite(float(t)) and t > 0})
    if sizes:
        ax.set_xlim(sizes[0] / 1.6, sizes[-1] * 1.6)
    if 0 < len(sizes) <= 8:
        ax.xaxis.set_major_locator(FixedLocator(sizes))
        ax.xaxis.set_minor_locator(NullLocator())
    else:
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: token_count(x)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    done = ~infeasible
    perplexity_axis(ax, list(frame.loc[done, "perplexity"]) + list(low[done]) + list(high[done]), pad=0.15)
    ax.set_xlabel("training tokens (log scale)")
    ax.set_ylabel("test perplexity" + (" (log scale)" if ax.get_yscale() == "log" else ""))
    ax.set_title(title or "test perplexity by training-set size")
    ax.grid(which="major", alpha=0.3)
    if "interval" in marks:
        handles.append(Line2D([], [], color="0.3", marker="|", ms=10, ls="none", label="95% bootstrap interval"))
    if "inf" in marks:
        handles.append(Line2D([], [], color="0.3", ls="none", marker="^", mfc="none", ms=8, mew=1.5,
                              label="inf: a zero-probability token"))
    if "infeasible" in marks:
        handles.append(Line2D([], [], color="0.3", ls="none", marker="x", ms=8, mew=2,
                              label="infeasible at that size\n(reason in sweep.csv)"))
    _legend_outside(ax, handles)
    return fig


# ---------------------------------------------------------------- Zipf's law


def zipf_plot(curves: dict[int, np.ndarray], fit_lines: dict[int, dict[str, tuple]], path: str | Path,
              title: str = "") -> None:
    """Write :func:`zipf_figure` as a PNG."""
    save_figure(zipf_figure(curves, fit_lines, title), path)


def zipf_figure(curves: dict[int, np.ndarray], fit_lines: dict[int, dict[str, tuple]], title: str = "") -> Figure:
    """Log-log rank-frequency curves, one per n, with their fitted lines over the ranks each fit covers.

    Args:
        curves: n -> counts sorted in decreasing order (rank 1 first).
        fit_lines: n -> {"kind: details": (ranks, frequencies)} of each fit over its fitted range
            (:func:`lmbench.analysis.zipf.fit_lines`); each kind has one line style for every n.
        title: figure title.

    A fitted line is never drawn above the data: where it would rise above the largest count it
    stops (its note in zipf.csv says when a fit misses the data). The legend has one entry per n,
    with each fit's details, and one per kind of fit.
    """
    import numpy as np
    from matplotlib.lines import Line2D

    fig, (ax,) = new_figure(7.5, 5.0)
    styles: dict[str, str] = {}
    handles = []
    for i, (n, counts) in enumerate(sorted(curves.items())):
        color = f"C{i % 10}"
        ranks = np.arange(1, counts.size + 1)
        ax.loglog(ranks, counts, color=color, lw=1.5, alpha=0.55)
        details = []
        for label, (r, f) in fit_lines.get(n, {}).items():
            kind, _, detail = label.partition(":")
            style = styles.setdefault(kind, ("--", ":", "-.")[len(styles) % 3])
            r, f = _below(np.asarray(r, dtype=float), np.asarray(f, dtype=float), float(counts.max(initial=1)))
            if r.size:
                ax.loglog(r, f, style, color=color, lw=1.8)
            details.append(f"{kind} {detail.strip()}" if detail.strip() else kind)
        handles.append(Line2D([], [], color=color, lw=1.5, alpha=0.55,
                              label=f"{n}-grams" + (f" ({'; '.join(details)})" if details else "")))
    handles += [Line2D([], [], color="0.3", ls=style, lw=1.8, label=f"{kind} fit") for kind, style in styles.items()]
    ax.set_xlabel("rank (log)")
    ax.set_ylabel("frequency (log)")
    ax.set_title(title or "Zipf's law: rank-frequency")
    ax.legend(handles=handles, fontsize=7, loc="lower left")
    ax.grid(which="major", alpha=0.3)
    return fig


def _below(ranks: np.ndarray, freqs: np.ndarray, ceiling: float) -> tuple[np.ndarray, np.ndarray]:
    """The part of a line (ranks, frequencies) at or below ``ceiling``, cut where it crosses it (log-log)."""
    import numpy as np

    order = np.argsort(ranks)
    ranks, freqs = ranks[order], freqs[order]
    keep = freqs <= ceiling
    if keep.all() or not keep.any():
        return ranks[keep], freqs[keep]
    first = int(np.argmax(keep))  # a fitted line falls with rank: above the ceiling up to here, below after
    if first > 0:
        x0, x1 = np.log(ranks[first - 1]), np.log(ranks[first])
        y0, y1 = np.log(freqs[first - 1]), np.log(freqs[first])
        cross = math.exp(x0 + (math.log(ceiling) - y0) * (x1 - x0) / (y1 - y0))
        return np.concatenate([[cross], ranks[first:][keep[first:]]]), np.concatenate([[ceiling],
                                                                                        freqs[first:][keep[first:]]])
    return ranks[keep], freqs[keep]


# ---------------------------------------------------------------- cost


COST_COLUMNS = ("bits_per_byte", "model_bytes", "fit_seconds")


def cost_points(table: pd.DataFrame) -> pd.DataFrame:
    """The rows :func:`cost_figure` draws: test (else valid) rows of models scoring probabilities, finite bits per byte.

    Raises:
        LmbenchError: when the table has no cost columns (a run written before they existed).
    """
    import numpy as np

    missing = [c for c in COST_COLUMNS if c not in table]
    if missing:
        raise LmbenchError(f"the table has no {', '.join(missing)} column(s) (a run written before lmbench measured "
                           f"the cost of a row); re-run it to draw the cost plot")
    rows = table[(table["split"] == _cost_split(table)) & table["comparable"].astype(bool)]
    bpb = rows["bits_per_byte"].to_numpy(dtype=float)
    return rows[np.isfinite(bpb) & (bpb > 0)].drop_duplicates("model")


def _cost_split(table: pd.DataFrame) -> str:
    return "test" if (table["split"] == "test").any() else "valid"


def pareto_front(x, y) -> list[int]:
    """Indices of the points no other point beats on both axes (lower x and lower y), in increasing x."""
    import numpy as np

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    front, best = [], math.inf
    for i in np.lexsort((y, x)):  # by x, ties by y
        if y[i] < best:
            front.append(int(i))
            best = y[i]
    return front


def label_places(x, y, widths, right, near_y: float = 0.045) -> list[tuple[float, bool]]:
    """Where point labels go, (vertical offset in points, runs right of the point), so that none overprints another.

    ``x``, ``y``: the points in axis fractions (0..1); ``widths``: each label's width in the same units
    of x; ``right``: the side each label prefers. A label sits just above its point on its side (offset 3);
    one that would overlap a label already placed tries the other side, then below its point, further down.
    """
    placed = []  # (lo, hi, y offset slot, point y) of the labels drawn so far
    found: list[tuple[float, bool]] = [(3.0, True)] * len(x)
    for k in sorted(range(len(x)), key=lambda i: -y[i]):
        for slot in range(len(x) + 1):
            for side in (right[k], not right[k]):
                lo, hi = (x[k], x[k] + widths[k]) if side else (x[k] - widths[k], x[k])
                if not any(lo < h and l < hi and s == slot and abs(py - y[k]) < near_y for l, h, s, py in placed):
                    break
            else:
                continue
            break
        placed.append((lo, hi, slot, y[k]))
        found[k] = (3.0 if slot == 0 else -9.0 * slot, side)
    return found


def cost_plot(table: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """Write :func:`cost_figure` as a PNG."""
    save_figure(cost_figure(table, title), path)


def cost_figure(table: pd.DataFrame, title: str = "") -> Figure:
    """Test bits per byte against model size (bytes in memory) and against fit time, with the Pareto front.

    Args:
        table: perplexity.csv's rows (bits_per_byte, model_bytes, fit_seconds, family, stopped_by).
        title: figure title.

    One point per model (its test row), labelled, colored by family; x on log scales (sizes and
    times span decades); y, shared by both panels, by the rule of the other figures (log when it
    spans more than :data:`LOG_RATIO`, else linear: bits per byte rarely span a factor of two).
    Bits per byte are the one figure every model shares, pretrained LMs over their own tokens
    included. The Pareto front, the models that no other model beats on both axes, is a step line;
    a model cut short by the time budget is named with a trailing ``^``. Models without a size or
    time (NaN, 0) are left out of that panel and named under it.
    """
    import numpy as np
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    points = cost_points(table)
    fig, axes = new_figure(12.0, 4.8, ncols=2, sharey=True)
    y_all = points["bits_per_byte"].to_numpy(dtype=float)
    cut = cut_short(points).to_numpy()
    names = [f"{m}^" if c else str(m) for m, c in zip(points["model"], cut)]
    families = column(points, "family", "other").astype(str).to_numpy()
    def size_ticks(lo, hi):
        return log_ticks(lo, hi, min_ticks=3)

    def time_ticks(lo, hi):  # round durations where there are enough of them
        ticks = duration_ticks(lo, hi)
        return ticks if len(ticks) >= 3 else size_ticks(lo, hi)

    panels = ((axes[0], "model_bytes", "model size (bytes in memory, log scale)", byte_count, size_ticks),
              (axes[1], "fit_seconds", "fit time (log scale)", seconds_text, time_ticks))
    for ax, col, xlabel, fmt, ticks_of in panels:
        x = points[col].to_numpy(dtype=float)
        ok = np.isfinite(x) & (x > 0)
        if ok.any():
            idx = np.flatnonzero(ok)
            middle = math.sqrt(x[idx].min() * x[idx].max())
            lx = np.log10(x[idx])  # the axis runs over lo / 3 .. hi * 3: in fractions of it
            span = float(np.ptp(lx)) + 2 * math.log10(3)
            fy = y_all[idx] - y_all[idx].min()
            places = label_places((lx - lx.min() + math.log10(3)) / span, fy / max(float(fy.max()), 1e-12),
                                  [len(names[k]) * 0.0105 for k in idx], [x[k] <= middle for k in idx])
            for k, (rise, right) in zip(idx, places):  # names right of the points in the left half, else left
                ax.plot(x[k], y_all[k], ls="none", marker="o", ms=6, color=_FAMILY_COLORS.get(families[k], "C4"))
                ax.annotate(names[k], (x[k], y_all[k]), xytext=(4 if right else -4, rise), textcoords="offset points",
                            ha="left" if right else "right", va="center" if rise != 3 else "baseline", fontsize=7)
            front = [idx[i] for i in pareto_front(x[idx], y_all[idx])]
            fx, fy = list(x[front]), list(y_all[front])
            ax.step(fx + [x[idx].max()], fy + [fy[-1]], where="post", color="0.25", lw=1.2, ls="-",
                    label="Pareto front", zorder=1)
            lo, hi = x[idx].min(), x[idx].max()
            ax.set_xscale("log")
            ax.set_xlim(lo / 3, hi * 3)  # room beside the outer points for their names
            ax.xaxis.set_major_locator(FixedLocator(ticks_of(lo / 3, hi * 3)))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _, fmt=fmt: fmt(v)))
        left_out = [names[k] for k in np.flatnonzero(~ok)]
        ax.set_xlabel(xlabel + (f"\nleft out (no {col}): {', '.join(left_out)}" if left_out else ""))
        ax.grid(which="major", alpha=0.3)
    perplexity_axis(axes[0], list(y_all), pad=0.12)
    axes[0].set_ylabel("test bits per byte" + (" (log scale)" if axes[0].get_yscale() == "log" else ""))
    axes[0].set_title("against size")
    axes[1].set_title("against fit time")
    if not len(points):
        axes[0].text(0.5, 0.5, "no model with finite bits per byte", transform=axes[0].transAxes, ha="center")
    handles = [Line2D([], [], ls="none", marker="o", ms=6, color=_FAMILY_COLORS.get(f, "C4"), label=f)
               for f in dict.fromkeys(families)]
    handles.append(Line2D([], [], color="0.25", lw=1.2, label="Pareto front: no other\nmodel is better on both"))
    if cut.any():
        handles.append(_text_handle("name^: cut short by the\ntime budget"))
    shown = set(points["model"])
    missing = [m for m in dict.fromkeys(table.loc[table["split"] == _cost_split(table), "model"]) if m not in shown]
    if missing:
        handles.append(_text_handle("not drawn (no finite bits\nper byte): " + ", ".join(missing)))
    _legend_outside(axes[1], handles, title="family")
    fig.suptitle(title or "test bits per byte against cost (lower left is better)")
    return fig
