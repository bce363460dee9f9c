"""``report.md``: a run summarized for a reader, from the run's tables (nothing is recomputed).

The page opens with a one-sentence conclusion and the command line, then the data, the results,
how each neural fit ended, what each model costs, the sweep (for a sweep), the pairwise
comparisons, where the differences come from, seeds, figures and the method.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path

import pandas as pd

from ..files import atomic_write_text

CUT_SHORT = "time_budget"  # perplexity.csv's stopped_by of a fit cut short by the time budget


def write_report(path: Path, config: dict, table: pd.DataFrame, compare: pd.DataFrame, buckets: pd.DataFrame,
                 seeds: pd.DataFrame, figures: list[str], sweep: pd.DataFrame | None = None) -> None:
    """Write the report to ``path`` from the run's tables; ``figures`` are file names beside it."""
    atomic_write_text(path, report_text(config, table, compare, buckets, seeds, figures, sweep))


def report_text(config: dict, table: pd.DataFrame, compare: pd.DataFrame, buckets: pd.DataFrame,
                seeds: pd.DataFrame, figures: list[str], sweep: pd.DataFrame | None = None) -> str:
    """The markdown of :func:`write_report`."""
    sections = [_header(config, table, compare), _data(config), _results(table, config), _sweep(config, sweep),
                _training(table, config), _cost(table), _comparisons(compare), _buckets(buckets, table), _seeds(seeds),
                _figures(figures), _method(config)]
    return "\n\n".join(s for s in sections if s) + "\n"


# ---------------------------------------------------------------- the top of the page


def is_sweep(config: dict) -> bool:
    """True for a data-size sweep (the run fitted every model on fractions of the training split)."""
    return bool(config.get("options", {}).get("fractions")) or bool(config.get("sweep"))


def _header(config: dict, table: pd.DataFrame, compare: pd.DataFrame) -> str:
    data = config["data"]
    if is_sweep(config):  # the conclusion of a sweep is about its largest training size
        fraction = {m: info.get("fraction", 1.0) for m, info in config.get("models", {}).items()}
        largest = max(fraction.values(), default=1.0)
        table = table[[fraction.get(m, largest) == largest for m in table["model"]]]
    kind = "sweep" if is_sweep(config) else "run"
    return (f"# lmbench {kind}: {data['name']}\n\n{conclusion(table, compare)}\n\n"
            f"Status **{config['status']}**, started {config['started']}, {config['wall_seconds']:.0f} s, "
            f"lmbench {config['lmbench_version']}.\n\n{_command(config)}")


def _command(config: dict) -> str:
    """The command line that made the run (or, from Python, its options)."""
    argv = [str(a) for a in config.get("command") or []]
    if argv and Path(argv[0]).name in ("lmbench", "__main__.py") and len(argv) > 1:
        return "```bash\n" + shlex.join(["lmbench"] + argv[1:]) + "\n```"
    options = {k: v for k, v in config.get("options", {}).items() if v not in (None, {}, [], False)}
    shown = ", ".join(f"{k}={v!r}" for k, v in options.items())
    return f"Run from Python ({shlex.join(argv) or 'no command line'}) with {shown}."


def conclusion(table: pd.DataFrame, compare: pd.DataFrame) -> str:
    """One sentence: the best model on test and whether its gap to the runner-up is significant.

    By perplexity when every model scores the run's tokens; by bits per byte (the one figure all
    share) when some model scores its own tokens (a pretrained LM). Significant means that the
    95% paired-bootstrap interval of the ratio in compare.csv excludes 1.
    """
    rows = table[(table["split"] == "test") & table["comparable"].astype(bool)]
    own = _own(rows)
    metric, what = ("bits_per_byte", "bits per byte") if own.any() else ("perplexity", "perplexity")
    values = rows[metric].astype(float)
    rows = rows[values.map(math.isfinite)].sort_values(metric, kind="stable")
    if rows.empty:
        return f"**Conclusion:** no model has a finite test {what}."
    best = rows.iloc[0]
    head = f"**Conclusion:** {_name(best)} has the lowest test {what} ({_num(best[metric], 4 if own.any() else 2)})"
    if len(rows) == 1:
        return head + ", the only model with a finite one."
    runner = rows.iloc[1]
    gap = (f"{_num(best[metric] / runner[metric], 3)} times {_name(runner)}'s "
           f"({_num(runner[metric], 4 if own.any() else 2)})")
    low, high, ratio_of = _interval_of_ratio(compare, best["model"], runner["model"])
    if low is None or not (math.isfinite(low) and math.isfinite(high)):
        return head + f", {gap}; the gap is not tested for significance (no bootstrap interval: --bootstrap 0)."
    verdict = "not significant" if low <= 1.0 <= high else "significant"
    relation = "contains" if verdict == "not significant" else "excludes"
    return head + (f", {gap}; the gap is {verdict}: the 95% paired-bootstrap interval of the {ratio_of} ratio, "
                   f"[{_num(low, 3)}, {_num(high, 3)}], {relation} 1.")


def _interval_of_ratio(compare: pd.DataFrame, best: str, runner: str):
    """(low, high, "perplexity" or "bits-per-byte") of best over runner on test in compare.csv; Nones without the pair.

    Models over the same tokens are compared by perplexity, others by bits per byte; on the same
    tokens and bytes both ratios are above 1 in the same resamples, so either decides significance.
    """
    if compare is None or not len(compare):
        return None, None, None
    test = compare[compare["split"] == "test"]
    for a, b, flip in ((best, runner, False), (runner, best, True)):
        pair = test[(test["model_a"] == a) & (test["model_b"] == b)]
        if len(pair):
            row = pair.iloc[0]
            ratio_of = "bits-per-byte" if str(row.get("metric", "perplexity")) == "bits_per_byte" else "perplexity"
            low, high = float(row["ratio_low"]), float(row["ratio_high"])
            if flip:
                low, high = _inverse(high), _inverse(low)
            return low, high, ratio_of
    return None, None, None


# ---------------------------------------------------------------- data and results


def _data(config: dict) -> str:
    data = config["data"]
    tok = data["tokenizer"]
    rows = [{"split": name, "tokens": _int(s["n_tokens"]), "lines": _int(s["n_lines"]), "bytes": _int(s.get("n_bytes")),
             "OOV": _int(s["n_oov"]), "sha256": s["sha256"][:16]} for name, s in data["splits"].items()]
    return (f"## Data\n\n{tok['kind']} tokens, normalize={tok['normalize']}, vocabulary {data['vocab_size']:,} "
            f"(built from train only; `<unk>` and end of line included). Every model is scored on the same "
            f"target tokens of valid and test.\n\n" + _markdown(pd.DataFrame(rows)))


def _results(table: pd.DataFrame, config: dict) -> str:
    comparable = table["comparable"].astype(bool)
    own, cut, tuned = _own(table), _cut(table), _col(table, "tuned_on_valid", False).astype(bool)
    shown = pd.DataFrame({
        "model": [f"{m}^" if c else m for m, c in zip(table["model"], cut)],
        "split": [f"{s}*" if t else s for s, t in zip(table["split"], tuned)],
        "N": [f"{_int(n)} (own)" if o else _int(n) for n, o in zip(table["n_tokens"], own)],
        "perplexity": [(_num(p) + (" (own)" if o else "")) if c else "n/a"
                       for p, c, o in zip(table["perplexity"], comparable, own)],
        "95% interval": [_interval(lo, hi) for lo, hi in zip(_col(table, "ppl_low", math.nan),
                                                            _col(table, "ppl_high", math.nan))],
        "bits/token": [_num(b, 4) for b in table["bits_per_token"]],
        "bits/byte": [_num(b, 4) for b in table["bits_per_byte"]],
        "zero-prob": [_int(n) for n in table["n_zero_prob"]],
    })
    if not any(shown["95% interval"]):
        shown = shown.drop(columns="95% interval")
    b = config["options"].get("bootstrap", 0)
    notes = [f"Intervals: paired bootstrap over lines, {b} resamples." if b else
             "No intervals (--bootstrap 0): the differences below are not tested for significance."]
    if tuned.any():
        notes.append("`valid*`: valid was used to fit this model (tuning or early stopping); that row is not held out.")
    for model in dict.fromkeys(table.loc[cut, "model"]):
        done = _done_text(table[table["model"] == model].iloc[0])
        notes.append(f"`{model}^`: cut short by the time budget ({done}): "
                     "not a finished fit, so its figures are not what the model reaches.")
    if own.any():
        notes.append("(own): over the model's own tokens, not the run's: its perplexity is not comparable with the "
                     "others; compare bits/byte.")
    return "## Results\n\n" + _markdown(shown) + "\n\n" + " ".join(notes)


def _training(table: pd.DataFrame, config: dict) -> str:
    """How each model trained by epochs ended: epochs asked for and completed, why it stopped, tokens seen."""
    rows = []
    for model, part in table.groupby("model", sort=False):
        row = part.iloc[0]
        info = config.get("models", {}).get(model, {})
        epochs = (info.get("params") or {}).get("epochs")
        stopped = str(_col(part, "stopped_by", "").iloc[0])
        if epochs is None and not stopped:
            continue
        rows.append({"model": f"{model}^" if stopped == CUT_SHORT else model, "epochs": _int(epochs),
                     "epochs completed": _int(row.get("epochs_completed")), "stopped by": _stopped_text(stopped),
                     "tokens trained": _int(row.get("tokens_trained")),
                     "training split tokens": _int(row.get("train_tokens"))})
    if not rows:
        return ""
    note = ("`stopped by`: epochs (all epochs ran), early_stopping (validation stopped improving), time_budget "
            "(--time-budget ended the fit)")
    if any(r["model"].endswith("^") for r in rows):
        note += "; a fit cut short by the time budget is not a finished fit: more time would change its figures"
    return "## Training\n\n" + _markdown(pd.DataFrame(rows)) + "\n\n" + note + "."


def _cost(table: pd.DataFrame) -> str:
    """Per model: parameters, bytes in memory and on disk, fit time, peak fit memory, scoring speed."""
    if "model_bytes" not in table:
        return ""
    test = table[table["split"] == "test"] if (table["split"] == "test").any() else table
    test = test.drop_duplicates("model")
    shown = pd.DataFrame({
        "model": [f"{m}^" if c else m for m, c in zip(test["model"], _cut(test))],
        "parameters": [_int(n) for n in _col(test, "n_params", None)],
        "model bytes": [_bytes(b) for b in _col(test, "model_bytes", None)],
        "saved bytes": [_bytes(b) for b in _col(test, "saved_bytes", None)],
        "fit time": [_seconds(s) for s in _col(test, "fit_seconds", None)],
        "peak fit memory": [_bytes(b) for b in _col(test, "fit_peak_bytes", None)],
        "scoring tokens/s": [_int(round(t)) if _finite(t) else "" for t in _col(test, "score_tokens_per_s", None)],
    })
    return ("## Cost\n\nModel bytes: the arrays and tensors the fitted model holds in memory; saved bytes: its "
            "checkpoint; peak fit memory: the largest resident memory during the fit above what the process held "
            "before it; scoring tokens/s: test tokens scored per second (cost.png: bits per byte against size and "
            "fit time, with the Pareto front).\n\n" + _markdown(shown))


def _sweep(config: dict, sweep: pd.DataFrame | None) -> str:
    if not is_sweep(config):
        return ""
    parts = ["## Data-size sweep\n\nEvery size is scored on the same valid and test tokens with the vocabulary of "
             "the whole training split (sweep.csv, sweep.png)."]
    parts += ["\n".join(f"* {n}" for n in config.get("sweep") or [])]
    if sweep is not None and len(sweep) and "status" in sweep:
        failed = sweep[sweep["status"] == "infeasible"].drop_duplicates(["model", "fraction"])
        if len(failed):
            shown = pd.DataFrame({"model": failed["model"], "fraction": [f"{f:g}" for f in failed["fraction"]],
                                  "train tokens": [_int(t) for t in failed["train_tokens"]],
                                  "reason": failed["reason"]})
            parts.append("Infeasible points (not fitted; the sweep went on):\n\n" + _markdown(shown))
    return "\n\n".join(p for p in parts if p)


def _comparisons(compare: pd.DataFrame) -> str:
    test = compare[compare["split"] == "test"] if compare is not None and len(compare) else pd.DataFrame()
    if not len(test):
        return ""
    by_bytes = _col(test, "metric", "perplexity").astype(str) == "bits_per_byte"
    parts = ["## Pairwise comparisons (test)\n\nP(A better) is the fraction of bootstrap resamples in which A is "
             "better; an interval that excludes 1 is a difference the line-level noise does not explain."]
    same = test[~by_bytes]
    if len(same):
        parts.append("By perplexity (both models over the run's tokens); a ratio below 1 means A has the lower "
                     "perplexity:\n\n" + _markdown(_pairs(same, "ppl A / ppl B", same["ppl_ratio"])))
    across = test[by_bytes]
    if len(across):
        parts.append("By bits per byte (the models use different tokens, so their perplexities are not comparable; "
                     "the ratio is of total NLL on the same resampled lines); a ratio below 1 means A has fewer "
                     "bits per byte:\n\n" + _markdown(_pairs(across, "bits/byte A / B", across["bpb_ratio"])))
    return "\n\n".join(parts)


def _pairs(rows: pd.DataFrame, ratio_name: str, ratio) -> pd.DataFrame:
    return pd.DataFrame({
        "A": rows["model_a"], "B": rows["model_b"], ratio_name: [_num(r, 4) for r in ratio],
        "95% interval": [_interval(lo, hi, 4) for lo, hi in zip(rows["ratio_low"], rows["ratio_high"])],
        "P(A better)": [_num(p, 3) for p in rows["p_a_better"]],
        "P(B better)": [_num(p, 3) for p in rows["p_b_better"]],
    })


def _buckets(buckets: pd.DataFrame, table: pd.DataFrame) -> str:
    test = buckets[buckets["split"] == "test"] if buckets is not None and len(buckets) else pd.DataFrame()
    if not len(test):
        return ""
    order = list(dict.fromkeys(test["bucket"]))
    models = [m for m in dict.fromkeys(table["model"]) if m in set(test["model"])]
    models += [m for m in dict.fromkeys(test["model"]) if m not in models]
    ppl = test.pivot(index="model", columns="bucket", values="perplexity").reindex(index=models, columns=order)
    share = test.pivot(index="model", columns="bucket", values="share_nll").reindex(index=models, columns=order)
    counts = test.drop_duplicates("bucket").set_index("bucket")["n_tokens"][order]
    ppl = ppl.map(_num)
    share = share.map(_pct)
    header = pd.DataFrame([{b: f"{n:,}" for b, n in counts.items()}], index=["tokens"])
    code = {b: f"`{b}`" for b in order}  # `<unk>` would read as an HTML tag
    text = ("## Where the differences come from (test)\n\nPerplexity by training count of the target token "
            "(`<unk>`: out of vocabulary), models in the order of the table:\n\n"
            + _markdown(_drop_empty(pd.concat([header, ppl])).rename(columns=code).reset_index(names="model")))
    share = _drop_empty(share)
    if len(share):
        text += ("\n\nShare of each model's total NLL (a model with an infinite total has no shares):\n\n"
                 + _markdown(share.rename(columns=code).reset_index(names="model")))
    return text


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


# ---------------------------------------------------------------- cells


def _markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a GitHub markdown table (no extra dependency)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _drop_empty(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with at least one non-empty cell."""
    return frame[[any(str(v) for v in row) for row in frame.itertuples(index=False)]]


def _col(frame: pd.DataFrame, name: str, default) -> pd.Series:
    if name not in frame:
        return pd.Series([default] * len(frame), index=frame.index, dtype=object)
    return frame[name].astype(object).where(frame[name].notna(), default)


def _own(frame: pd.DataFrame) -> pd.Series:
    unit = _col(frame, "token_unit", "run").astype(str)
    return (unit != "run") & (unit != "")


def _cut(frame: pd.DataFrame) -> pd.Series:
    return _col(frame, "stopped_by", "").astype(str) == CUT_SHORT


def _name(row) -> str:
    return f"{row['model']} (cut short by the time budget)" if str(row.get("stopped_by", "")) == CUT_SHORT \
        else str(row["model"])


def _stopped_text(stopped: str) -> str:
    return {"time_budget": "time_budget (cut short)"}.get(stopped, stopped)


def _done_text(row) -> str:
    parts = []
    if _finite(row.get("epochs_completed")):
        done = int(row["epochs_completed"])
        parts.append(f"{done} complete epoch{'s' * (done != 1)}")
    if _finite(row.get("tokens_trained")):
        parts.append(f"{int(row['tokens_trained']):,} training tokens seen")
    return ", ".join(parts) or "see stopped_by in perplexity.csv"


def _finite(value) -> bool:
    try:
        return value is not None and not isinstance(value, bool) and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _int(value) -> str:
    return f"{int(value):,}" if _finite(value) else ""


def _num(value, digits: int = 2) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    if math.isnan(value):
        return ""
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def _pct(value) -> str:
    return "" if not isinstance(value, float) or math.isnan(value) else f"{100 * value:.1f}%"


def _bytes(value) -> str:
    if not _finite(value):
        return ""
    value = float(value)
    for scale, suffix in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if value >= scale:
            return f"{value / scale:.3g} {suffix}"
    return f"{value:.0f} B"


def _seconds(value) -> str:
    return f"{float(value):.2f} s" if _finite(value) else ""


def _interval(low, high, digits: int = 2) -> str:
    if any(not isinstance(v, float) or math.isnan(v) for v in (low, high)):
        return ""
    return f"[{_num(low, digits)}, {_num(high, digits)}]"


def _inverse(value: float) -> float:
    """1 / value, with 1/0 = inf, 1/inf = 0 and NaN kept."""
    if value == 0:
        return math.inf
    return 0.0 if math.isinf(value) else 1.0 / value

