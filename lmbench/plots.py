"""PNG figures: perplexity by model, Zipf rank-frequency curves."""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .textio import atomic_write_bytes  # noqa: E402


def save_figure(fig, path: str | Path) -> None:
    """Render a figure to PNG and write it atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def perplexity_plot(frame: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """Grouped bars of held-out perplexity per model and split, log scale.

    Infinite perplexities (zero-probability tokens) are drawn as hatched bars reaching the top
    and labelled "inf"; rows that are not comparable (not a probability) are labelled "n/a".
    """
    models = list(dict.fromkeys(frame["model"]))
    splits = list(dict.fromkeys(frame["split"]))
    finite = [p for p, c in zip(frame["perplexity"], frame["comparable"]) if c and math.isfinite(p)]
    top = max(finite) * 3 if finite else 10.0
    bottom = max(min(finite) / 2, 1.0) if finite else 1.0
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(models) + 2), 4.5))
    width = 0.8 / len(splits)
    for j, split in enumerate(splits):
        for i, model in enumerate(models):
            row = frame[(frame["model"] == model) & (frame["split"] == split)]
            if row.empty:
                continue
            _bar(ax, i + (j - (len(splits) - 1) / 2) * width, width, row.iloc[0], top, bottom, f"C{j}")
    ax.set_yscale("log")
    plain = FuncFormatter(lambda y, _: f"{y:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain if top / bottom < 100 else NullFormatter())
    ax.set_ylim(bottom, top)
    ax.set_xticks(range(len(models)), models, rotation=30, ha="right")
    ax.set_ylabel("perplexity (log scale)")
    ax.set_title(title or "held-out perplexity (lower is better)")
    ax.legend(handles=[Patch(color=f"C{j}", label=split) for j, split in enumerate(splits)])
    ax.grid(axis="y", which="both", alpha=0.3)
    save_figure(fig, path)


def _bar(ax, x, width, row, top, bottom, color) -> None:
    if not row["comparable"]:
        ax.text(x, bottom * 1.1, "n/a", ha="center", va="bottom", fontsize=8)
    elif math.isinf(row["perplexity"]):
        ax.bar(x, top, width, bottom=0, color="white", edgecolor=color, hatch="//")
        ax.text(x, top / 1.5, "inf", ha="center", va="top", fontsize=8)
    else:
        ax.bar(x, row["perplexity"], width, color=color)
        ax.text(x, row["perplexity"] * 1.05, f"{row['perplexity']:.1f}", ha="center", va="bottom", fontsize=7)


def zipf_plot(curves: dict[int, np.ndarray], fits: dict[int, dict], path: str | Path, title: str = "") -> None:
    """Log-log rank-frequency curves, one per n, with their fitted Zipf lines dashed.

    Args:
        curves: n -> counts sorted in decreasing order (rank 1 first).
        fits: n -> {"alpha", "intercept", "rank_min", "rank_max"} (natural-log intercept).
        path: where to write the PNG.
        title: figure title.
    """
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, (n, counts) in enumerate(sorted(curves.items())):
        ranks = np.arange(1, counts.size + 1)
        ax.loglog(ranks, counts, color=f"C{i}", lw=1.5, label=f"{n}-grams")
        fit = fits[n]
        if fit.get("alpha") is not None and math.isfinite(fit["alpha"]):
            r = np.array([fit["rank_min"], fit["rank_max"]], dtype=float)
            ax.loglog(r, np.exp(fit["intercept"]) * r ** -fit["alpha"], "--", color=f"C{i}", lw=1.2,
                      label=f"fit n={n}: alpha={fit['alpha']:.2f}")
    ax.set_xlabel("rank (log)")
    ax.set_ylabel("frequency (log)")
    ax.set_title(title or "Zipf's law: rank-frequency")
    ax.legend(fontsize=8)
    ax.grid(which="both", alpha=0.3)
    save_figure(fig, path)


def curves_plot(curves: dict, path: str | Path, title: str = "") -> None:
    """Train (dashed) and validation (solid) perplexity per epoch for every iteratively trained model.

    Args:
        curves: model label -> DataFrame with columns epoch, train_ppl, valid_ppl.
        path: where to write the PNG.
        title: figure title.
    """
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, (label, frame) in enumerate(curves.items()):
        ax.plot(frame["epoch"], frame["valid_ppl"], "-", color=f"C{i}", label=f"{label} valid")
        ax.plot(frame["epoch"], frame["train_ppl"], "--", color=f"C{i}", alpha=0.6, label=f"{label} train")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda y, _: f"{y:g}" if str(f"{y:g}")[0] in "25" else ""))
    ax.set_xlabel("epoch")
    ax.set_ylabel("perplexity (log scale)")
    ax.set_title(title or "learning curves")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(which="both", alpha=0.3)
    save_figure(fig, path)
