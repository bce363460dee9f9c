"""PNG figures: perplexity by model, learning curves, frequency buckets, data-size sweeps, Zipf curves.

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


def new_figure(width: float, height: float, ncols: int = 1, sharey: bool = False) -> tuple[Figure, list[Axes]]:
    """A Figure with ``ncols`` side-by-side axes, attached to an Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, sharey=sharey, squeeze=False)[0]
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


# ---------------------------------------------------------------- perplexity by model


def perplexity_plot(frame: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """Write :func:`perplexity_figure` as a PNG."""
    save_figure(perplexity_figure(frame, title), path)


def perplexity_figure(frame: pd.DataFrame, title: str = "") -> Figure:
    """Grouped bars of held-out perplexity per model and split, log scale.

    Infinite perplexities (zero-probability tokens) are drawn as hatched bars reaching the top
    and labelled "inf"; rows that are not comparable (not a probability) are labelled "n/a".
    When the frame has ``ppl_low``/``ppl_high`` (bootstrap 95% intervals), they are error bars.
    """
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, NullFormatter

    models = list(dict.fromkeys(frame["model"]))
    splits = list(dict.fromkeys(frame["split"]))
    usable = frame[frame["comparable"].astype(bool)]
    finite = [p for p in usable["perplexity"] if math.isfinite(p)]
    for col in ("ppl_low", "ppl_high"):
        if col in frame:
            finite += [p for p in usable[col] if p is not None and math.isfinite(p) and p > 0]
    top = max(finite) * 3 if finite else 10.0
    bottom = max(min(finite) / 2, 1.0) if finite else 1.0
    fig, (ax,) = new_figure(max(6, 1.1 * len(models) + 2), 4.5)
    width = 0.8 / len(splits)
    for j, split in enumerate(splits):
        for i, model in enumerate(models):
            row = frame[(frame["model"] == model) & (frame["split"] == split)]
            if not row.empty:
                _bar(ax, i + (j - (len(splits) - 1) / 2) * width, width, row.iloc[0], top, bottom, f"C{j}")
    ax.set_yscale("log")
    plain = FuncFormatter(lambda y, _: plain_number(y))
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain if top / bottom < 100 else NullFormatter())
    ax.set_ylim(bottom, top)
    ax.set_xticks(range(len(models)), models, rotation=30, ha="right")
    ax.set_ylabel("perplexity (log scale)")
    ax.set_title(title or "held-out perplexity (lower is better)")
    handles = [Patch(color=f"C{j}", label=split) for j, split in enumerate(splits)]
    ax.legend(handles=handles, title="95% bootstrap interval" if "ppl_low" in frame else None, fontsize=8,
              title_fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    return fig


def _bar(ax: Axes, x: float, width: float, row, top: float, bottom: float, color: str) -> None:
    ppl = row["perplexity"]
    if not row["comparable"]:
        ax.text(x, bottom * 1.1, "n/a", ha="center", va="bottom", fontsize=8)
    elif math.isnan(ppl):
        ax.text(x, bottom * 1.1, "nan", ha="center", va="bottom", fontsize=8)
    elif math.isinf(ppl):
        ax.bar(x, top, width, bottom=0, color="white", edgecolor=color, hatch="//")
        ax.text(x, top / 1.5, "inf", ha="center", va="top", fontsize=8)
    else:
        ax.bar(x, ppl, width, color=color)
        low, high = row.get("ppl_low", math.nan), row.get("ppl_high", math.nan)
        label_at = ppl
        if _is_interval(low, high, ppl):
            ax.errorbar(x, ppl, yerr=[[ppl - low], [high - ppl]], fmt="none", ecolor="black", elinewidth=1,
                        capsize=3)
            label_at = high
        ax.text(x, label_at * 1.05, f"{ppl:.1f}", ha="center", va="bottom", fontsize=7)


def _is_interval(low, high, ppl: float) -> bool:
    try:
        return math.isfinite(low) and math.isfinite(high) and 0 < low <= ppl <= high
    except TypeError:
        return False


# ---------------------------------------------------------------- learning curves


def curves_plot(curves: dict[str, pd.DataFrame], path: str | Path, title: str = "",
                references: dict[str, float] | None = None) -> None:
    """Write :func:`curves_figure` as a PNG."""
    save_figure(curves_figure(curves, title, references), path)


def curves_figure(curves: dict[str, pd.DataFrame], title: str = "",
                  references: dict[str, float] | None = None) -> Figure:
    """Training and validation perplexity per epoch, one panel each, for every iteratively trained model.

    Args:
        curves: model label -> DataFrame with columns epoch, train_ppl, valid_ppl.
        title: figure title.
        references: label -> validation perplexity of a model trained in one step (an n-gram, say),
            drawn as a labelled horizontal line on the validation panel; inf and NaN are skipped.

    Both panels share one y axis (log when the values span a wide range, else linear) so train
    and validation can be compared; every epoch is a marker, so a 1-epoch run shows its point.
    """
    from matplotlib.ticker import MaxNLocator

    references = {k: float(v) for k, v in (references or {}).items() if v is not None and math.isfinite(v)}
    fig, (train_ax, valid_ax) = new_figure(11, 4.6, ncols=2, sharey=True)
    values = list(references.values())
    max_epoch = 1
    for i, (label, frame) in enumerate(curves.items()):
        style = dict(color=f"C{i % 10}", marker="o", markersize=3.5, lw=1.4, label=label)
        train_ax.plot(frame["epoch"], frame["train_ppl"], **style)
        valid_ax.plot(frame["epoch"], frame["valid_ppl"], **style)
        values += list(frame["train_ppl"]) + list(frame["valid_ppl"])
        max_epoch = max(max_epoch, int(max(frame["epoch"], default=1)))
    for j, (label, ppl) in enumerate(sorted(references.items(), key=lambda kv: kv[1])):
        valid_ax.axhline(ppl, color=f"{0.15 + 0.2 * (j % 3):.2f}", ls=(":", "--", "-.")[j % 3], lw=1.2,
                         label=f"{label}: {ppl:.4g} (one step)")
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
    valid_ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0,
                    title="model", title_fontsize=8)
    fig.suptitle(title or "learning curves")
    return fig


# ---------------------------------------------------------------- frequency buckets


def buckets_plot(frame: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """Write :func:`buckets_figure` as a PNG."""
    save_figure(buckets_figure(frame, title), path)


def buckets_figure(frame: pd.DataFrame, title: str = "") -> Figure:
    """Perplexity by target-token frequency bucket, one line per model, one panel per split.

    Args:
        frame: columns model, split, bucket, n_tokens, nll_nats, perplexity, share_nll; buckets
            (``<unk>``, ``1``, ``2-10``, ...) are drawn in the order they first appear.
        title: figure title.

    Each x tick shows the bucket and how many target tokens fall in it (the same for every model:
    all are scored on the same tokens). Infinite perplexity (a zero-probability token in the
    bucket) breaks the model's line and is drawn as an open triangle on the top edge.
    """
    import numpy as np

    splits = list(dict.fromkeys(frame["split"]))
    fig, axes = new_figure(max(6.0, 5.2 * len(splits)), 4.6, ncols=len(splits), sharey=True)
    finite = [p for p in frame["perplexity"] if math.isfinite(p) and p > 0]
    perplexity_axis(axes[0], finite, pad=0.15)
    top = axes[0].get_ylim()[1]
    models = list(dict.fromkeys(frame["model"]))
    for ax, split in zip(axes, splits):
        part = frame[frame["split"] == split]
        buckets = list(dict.fromkeys(part["bucket"]))
        position = {b: i for i, b in enumerate(buckets)}
        for i, model in enumerate(models):
            rows = part[part["model"] == model]
            if rows.empty:
                continue
            x = np.array([position[b] for b in rows["bucket"]])
            ppl = rows["perplexity"].to_numpy(dtype=float)
            ok = np.isfinite(ppl)
            ax.plot(x, np.where(ok, ppl, np.nan), marker="o", markersize=4, lw=1.4, color=f"C{i % 10}", label=model)
            if (~ok).any():  # the line breaks there; the triangle says why
                ax.plot(x[~ok], np.full((~ok).sum(), top), ls="none", marker="^", mfc="none", ms=8, mew=1.5,
                        color=f"C{i % 10}", clip_on=False, label=f"{model}: inf (a zero-probability token)")
        tokens = part.drop_duplicates("bucket").set_index("bucket")["n_tokens"]
        ax.set_xticks(range(len(buckets)), [f"{b}\n{token_count(tokens[b])} tok" for b in buckets], fontsize=8)
        ax.set_xlim(-0.4, len(buckets) - 0.6)
        ax.set_xlabel("training count of the target token")
        ax.set_title(f"{split}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("perplexity within the bucket" + (" (log scale)" if axes[0].get_yscale() == "log" else ""))
    entries = {label: handle for ax in axes for handle, label in zip(*ax.get_legend_handles_labels())}
    axes[-1].legend(entries.values(), entries.keys(), fontsize=8)
    fig.suptitle(title or "perplexity by target-token frequency")
    return fig


# ---------------------------------------------------------------- data-size sweep


def sweep_plot(frame: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """Write :func:`sweep_figure` as a PNG."""
    save_figure(sweep_figure(frame, title), path)


def sweep_figure(frame: pd.DataFrame, title: str = "") -> Figure:
    """Test perplexity against training-set size, log x, one line with markers per model.

    Args:
        frame: columns model, train_tokens, perplexity (and optionally split: only ``test`` rows
            are drawn when it has any).
        title: figure title.
    """
    from matplotlib.ticker import FuncFormatter, NullFormatter

    if "split" in frame and (frame["split"] == "test").any():
        frame = frame[frame["split"] == "test"]
    fig, (ax,) = new_figure(6.5, 4.5)
    for i, (model, rows) in enumerate(frame.groupby("model", sort=False)):
        rows = rows.sort_values("train_tokens")
        ax.plot(rows["train_tokens"], rows["perplexity"], marker="o", markersize=4, lw=1.4, color=f"C{i % 10}",
                label=model)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: token_count(x)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    perplexity_axis(ax, list(frame["perplexity"]))
    ax.set_xlabel("training tokens (log scale)")
    ax.set_ylabel("test perplexity" + (" (log scale)" if ax.get_yscale() == "log" else ""))
    ax.set_title(title or "test perplexity by training-set size")
    ax.grid(which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


# ---------------------------------------------------------------- Zipf's law


def zipf_plot(curves: dict[int, np.ndarray], fit_lines: dict[int, dict[str, tuple]], path: str | Path,
              title: str = "") -> None:
    """Write :func:`zipf_figure` as a PNG."""
    save_figure(zipf_figure(curves, fit_lines, title), path)


def zipf_figure(curves: dict[int, np.ndarray], fit_lines: dict[int, dict[str, tuple]], title: str = "") -> Figure:
    """Log-log rank-frequency curves, one per n, with their fitted lines.

    Args:
        curves: n -> counts sorted in decreasing order (rank 1 first).
        fit_lines: n -> {legend label: (ranks, frequencies)} of each fit over its fitted range;
            the first is drawn dashed, the second dotted.
        title: figure title.
    """
    import numpy as np

    fig, (ax,) = new_figure(7.5, 5.0)
    for i, (n, counts) in enumerate(sorted(curves.items())):
        color = f"C{i % 10}"
        ranks = np.arange(1, counts.size + 1)
        ax.loglog(ranks, counts, color=color, lw=1.5, alpha=0.55, label=f"{n}-grams (observed)")
        for style, (label, (r, f)) in zip(("--", ":"), fit_lines.get(n, {}).items()):
            ax.loglog(r, f, style, color=color, lw=1.8, label=label)
    ax.set_xlabel("rank (log)")
    ax.set_ylabel("frequency (log)")
    ax.set_title(title or "Zipf's law: rank-frequency")
    ax.legend(fontsize=7)
    ax.grid(which="major", alpha=0.3)
    return fig
