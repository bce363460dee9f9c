"""``report.md``: a run summarized for a reader (data, table with intervals, comparisons, buckets, figures)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..files import atomic_write_text


def write_report(path: Path, config: dict, table: pd.DataFrame, compare: pd.DataFrame, buckets: pd.DataFrame,
                 seeds: pd.DataFrame, figures: list[str]) -> None:
    """Write the report to ``path`` from the run's tables (nothing is recomputed); ``figures`` are file names beside it."""
    sections = [_header(config), _data(config), _results(table, config), _sweep(config), _comparisons(compare),
                _buckets(buckets), _seeds(seeds), _figures(figures), _method(config)]
    atomic_write_text(path, "\n\n".join(s for s in sections if s) + "\n")


def _header(config: dict) -> str:
    data = config["data"]
    return (f"# lmbench run: {data['name']}\n\n"
            f"Status **{config['status']}**, started {config['started']}, {config['wall_seconds']:.0f} s, "
            f"lmbench {config['lmbench_version']}.")


def _data(config: dict) -> str:
    data = config["data"]
    tok = data["tokenizer"]
    rows = [{"split": name, "tokens": s["n_tokens"], "lines": s["n_lines"], "bytes": s.get("n_bytes", ""),
             "OOV": s["n_oov"], "sha256": s["sha256"][:16]} for name, s in data["splits"].items()]
    return (f"## Data\n\n{tok['kind']} tokens, normalize={tok['normalize']}, vocabulary {data['vocab_size']:,} "
            f"(built from train only; `<unk>` and end of line included). Every model is scored on the same "
            f"target tokens of valid and test.\n\n" + _markdown(pd.DataFrame(rows)))


def _results(table: pd.DataFrame, config: dict) -> str:
    shown = pd.DataFrame({
        "model": table["model"], "split": table["split"], "N": table["n_tokens"],
        "perplexity": [_num(p) if c else "n/a" for p, c in zip(table["perplexity"], table["comparable"])],
        "95% interval": [_interval(lo, hi) for lo, hi in zip(table["ppl_low"], table["ppl_high"])],
        "bits/token": [_num(b, 4) for b in table["bits_per_token"]],
        "bits/byte": [_num(b, 4) for b in table["bits_per_byte"]],
        "zero-prob": table["n_zero_prob"],
        "tuned on valid": ["yes" if t else "" for t in table["tuned_on_valid"]],
    })
    b = config["options"].get("bootstrap", 0)
    note = (f"Intervals: paired bootstrap over lines, {b} resamples." if b else "No bootstrap (--bootstrap 0).")
    return f"## Results\n\n{_markdown(shown)}\n\n{note} A valid row marked *tuned on valid* is not a held-out figure."


def _sweep(config: dict) -> str:
    notes = config.get("sweep")
    if not notes:
        return ""
    return ("## Data-size sweep\n\nEvery size is scored on the same valid and test tokens with the vocabulary of the "
            "whole training split (sweep.csv, sweep.png).\n\n" + "\n".join(f"* {n}" for n in notes))


def _comparisons(compare: pd.DataFrame) -> str:
    test = compare[compare["split"] == "test"] if len(compare) else compare
    if not len(test):
        return ""
    shown = pd.DataFrame({
        "A": test["model_a"], "B": test["model_b"], "ppl A / ppl B": [_num(r, 4) for r in test["ppl_ratio"]],
        "95% interval": [_interval(lo, hi, 4) for lo, hi in zip(test["ratio_low"], test["ratio_high"])],
        "P(A better)": [_num(p, 3) for p in test["p_a_better"]],
        "P(B better)": [_num(p, 3) for p in test["p_b_better"]],
    })
    return ("## Pairwise comparisons (test)\n\nA ratio below 1 means A has the lower perplexity. P(A better) is the "
            "fraction of bootstrap resamples in which A's perplexity is lower; an interval that excludes 1 is a "
            f"difference the line-level noise does not explain.\n\n{_markdown(shown)}")


def _buckets(buckets: pd.DataFrame) -> str:
    test = buckets[buckets["split"] == "test"] if len(buckets) else buckets
    if not len(test):
        return ""
    order = list(dict.fromkeys(test["bucket"]))
    ppl = test.pivot(index="model", columns="bucket", values="perplexity")[order]
    share = test.pivot(index="model", columns="bucket", values="share_nll")[order]
    counts = test.drop_duplicates("bucket").set_index("bucket")["n_tokens"][order]
    ppl = ppl.map(_num) if hasattr(ppl, "map") else ppl.applymap(_num)
    share = share.map(_pct) if hasattr(share, "map") else share.applymap(_pct)
    header = pd.DataFrame([{b: f"{n:,}" for b, n in counts.items()}], index=["tokens"])
    code = {b: f"`{b}`" for b in order}  # `<unk>` would read as an HTML tag
    return ("## Where the differences come from (test)\n\nPerplexity by training count of the target token "
            "(`<unk>`: out of vocabulary):\n\n"
            + _markdown(pd.concat([header, ppl]).rename(columns=code).reset_index(names="model"))
            + "\n\nShare of each model's total NLL:\n\n" + _markdown(share.rename(columns=code).reset_index(names="model")))


def _seeds(seeds: pd.DataFrame) -> str:
    if seeds is None or not len(seeds):
        return ""
    shown = seeds.assign(ppl=[f"{m:.2f} ± {s:.2f}" for m, s in zip(seeds["ppl_mean"], seeds["ppl_std"])])
    return ("## Across seeds\n\nMean ± standard deviation (ddof 1) of perplexity over training seeds.\n\n"
            + _markdown(shown[["model", "split", "n_seeds", "seeds", "ppl", "ppl_min", "ppl_max"]]))


def _figures(figures: list[str]) -> str:
    return "## Figures\n\n" + "\n".join(f"![{f}]({f})" for f in figures) if figures else ""


def _method(config: dict) -> str:
    return ("## Method\n\nPerplexity = exp(total NLL in nats / N) over every target token, end-of-line tokens "
            "included. Tokens given probability zero make a perplexity infinite and are counted, never dropped. "
            "Bits per byte divide the total NLL by ln 2 times the UTF-8 bytes of the split as the tokenizer saw "
            "it (one byte per line end), so runs with different tokenizations of the same text can be compared. "
            f"Bootstrap seed {config['options'].get('seed', 0)}; lines are the resampling unit.")


def _markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a GitHub markdown table (no extra dependency)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _num(value, digits: int = 2) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    if math.isnan(value):
        return ""
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def _pct(value) -> str:
    return "" if not isinstance(value, float) or math.isnan(value) else f"{100 * value:.1f}%"


def _interval(low, high, digits: int = 2) -> str:
    if any(not isinstance(v, float) or math.isnan(v) for v in (low, high)):
        return ""
    return f"[{_num(low, digits)}, {_num(high, digits)}]"
