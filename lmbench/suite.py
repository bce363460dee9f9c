"""Benchmark suites in TOML, and ``--set label.param=value`` overrides.

A suite file describes a whole run::

    [run]                                   # any `lmbench run` option, by its long name
    corpus = "ptb"
    models = ["bigram-add1", "trigram-addk", "small-lstm"]
    seed = 1

    [models.trigram-addk]                   # parameters of a registry model
    k = 0.01

    [models.small-lstm]                     # a custom label: `model` names the registry entry
    model = "deep-lstm"
    hidden_size = 200

Options given on the command line win over the file; ``--set`` wins over ``[models.*]`` tables.
TOML is read with the standard library (``tomllib``), so suites need no extra dependency.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from .errors import LmbenchError, unknown_name_error

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def load_suite(path: str | Path, run_fields) -> tuple[dict, dict]:
    """Read a suite file.

    Args:
        path: the TOML file.
        run_fields: the option names a ``[run]`` table may set.

    Returns:
        (run options, {label: parameter overrides}).
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LmbenchError(f"suite file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LmbenchError(f"suite file {path} is not valid TOML ({exc}); see `lmbench run --help`") from None
    for key in data:
        if key not in ("run", "models"):
            raise unknown_name_error(f"table in {path.name}", key, ["run", "models"])
    run = data.get("run", {})
    for key in run:
        if key not in run_fields:
            raise unknown_name_error(f"[run] option in {path.name}", key, sorted(run_fields))
    models = data.get("models", {})
    for label, params in models.items():
        if not isinstance(params, dict):
            raise LmbenchError(f"[models.{label}] in {path.name} must be a table of parameters")
    return run, models


def parse_value(text: str):
    """A command-line value as JSON (numbers, true/false/null, lists) or else a plain string."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(items) -> dict:
    """``["lstm.hidden_size=200", ...]`` -> ``{"lstm": {"hidden_size": 200}}``."""
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        label, dot, param = key.rpartition(".")
        if not sep or not dot or not label or not param:
            raise LmbenchError(f"--set expects MODEL.PARAM=VALUE (e.g. trigram-addk.k=0.01), got {item!r}")
        out.setdefault(label.strip(), {})[param.strip()] = parse_value(value)
    return out


def merge_params(base: dict, extra: dict) -> dict:
    """Per-label parameter dicts merged, ``extra`` winning."""
    merged = {label: dict(params) for label, params in base.items()}
    for label, params in extra.items():
        merged.setdefault(label, {}).update(params)
    return merged


def run_field_names(config_cls) -> set[str]:
    return {f.name for f in dataclasses.fields(config_cls)} - {"params", "shared_params"}
