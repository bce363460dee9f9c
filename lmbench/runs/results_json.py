"""``results.json``: a run's figures for programs, in the spirit of lm-evaluation-harness's results file.

Schema ``lmbench-results/1`` (every number as in perplexity.csv and compare.csv; ``inf`` as the string
"inf", NaN as null)::

    {"schema": "lmbench-results/1", "lmbench_version": ..., "status": ..., "command": [...],
     "config": {run options}, "data": {split: {n_tokens, n_lines, n_bytes, n_oov, sha256}},
     "results": {model: {"family", "n_params", "token_unit", "params": {...}, "fit": {stopped_by,
                 epochs_completed, tokens_trained, fit_seconds}, "cost": {model_bytes, saved_bytes,
                 fit_peak_bytes},
                 "valid" / "test": {n_tokens, nll_nats, perplexity, perplexity_ci95: [low, high],
                                    bits_per_token, bits_per_byte, n_zero_prob, n_nan, tuned_on_valid,
                                    score_tokens_per_s}}},
     "comparisons": [{split, model_a, model_b, metric, ratio, ratio_ci95: [low, high], p_a_better,
                      p_b_better, n_resamples}]}
"""

from __future__ import annotations

import math

import pandas as pd

SCHEMA = "lmbench-results/1"
SPLIT_FIELDS = ("n_tokens", "nll_nats", "perplexity", "bits_per_token", "bits_per_byte", "n_zero_prob", "n_nan",
                "tuned_on_valid", "score_tokens_per_s")


def results_document(config: dict, table: pd.DataFrame, compare: pd.DataFrame) -> dict:
    """The results.json document of a run (see the module docstring)."""
    results = {}
    for model, rows in table.groupby("model", sort=False):
        first = rows.iloc[0]
        info = config.get("models", {}).get(model, {})
        entry = {"family": _value(first.get("family")), "n_params": _value(first.get("n_params")),
                 "token_unit": _value(first.get("token_unit", "run")), "params": info.get("params", {}),
                 "fit": {k: _value(first.get(k)) for k in ("stopped_by", "epochs_completed", "tokens_trained",
                                                           "fit_seconds")},
                 "cost": {k: _value(first.get(k)) for k in ("model_bytes", "saved_bytes", "fit_peak_bytes")}}
        for _, row in rows.iterrows():
            split = {k: _value(row.get(k)) for k in SPLIT_FIELDS}
            split["perplexity_ci95"] = [_value(row.get("ppl_low")), _value(row.get("ppl_high"))]
            entry[row["split"]] = split
        results[model] = entry
    comparisons = []
    for _, row in (compare if compare is not None else pd.DataFrame()).iterrows():
        metric = row.get("metric") if isinstance(row.get("metric"), str) else "perplexity"
        ratio = row.get("ppl_ratio") if metric == "perplexity" else row.get("bpb_ratio")
        comparisons.append({"split": row["split"], "model_a": row["model_a"], "model_b": row["model_b"],
                            "metric": metric, "ratio": _value(ratio),
                            "ratio_ci95": [_value(row.get("ratio_low")), _value(row.get("ratio_high"))],
                            "p_a_better": _value(row.get("p_a_better")), "p_b_better": _value(row.get("p_b_better")),
                            "n_resamples": _value(row.get("n_resamples"))})
    data = {name: {k: s.get(k) for k in ("n_tokens", "n_lines", "n_bytes", "n_oov", "sha256")}
            for name, s in config.get("data", {}).get("splits", {}).items()}
    return {"schema": SCHEMA, "lmbench_version": config.get("lmbench_version"), "status": config.get("status"),
            "command": config.get("command"), "config": config.get("options"), "data": data,
            "results": results, "comparisons": comparisons}


def _value(value):
    """A JSON value: numpy scalars as Python numbers, NaN as None, infinities as "inf" / "-inf"."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value
