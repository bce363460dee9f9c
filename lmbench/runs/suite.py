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

Every ``[run]`` value is checked against :data:`RUN_SCHEMA` and every ``[models.LABEL]`` table
against the parameter rules (scalars or arrays; ``model`` a name), so a wrong type is one line
naming the key and what it must be, never a traceback. Numbers must be finite: TOML's ``inf`` and
``nan`` and ``--set`` values such as ``Infinity`` or ``NaN`` are refused.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import LmbenchError, unknown_name_error
from ..files import read_text_bytes

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


# ---------------------------------------------------------------- value checks


def is_int(value) -> bool:
    """An integer that is not a boolean (``True`` is an ``int`` in Python, not in TOML)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A finite integer or float, not a boolean."""
    return is_int(value) or (isinstance(value, float) and math.isfinite(value))


def is_finite(value) -> bool:
    """False if value is, or (in arrays and tables) contains, an infinite or NaN float."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(is_finite(v) for v in value)
    if isinstance(value, dict):
        return all(is_finite(v) for v in value.values())
    return True


def describe(value) -> str:
    """A value and its TOML type, for error messages: ``"5" (a string)``."""
    text = repr(value) if not isinstance(value, (dict, list)) else json.dumps(value, default=str)
    if len(text) > 40:
        text = text[:37] + "..."
    if isinstance(value, bool):
        kind = "a boolean"
    elif isinstance(value, int):
        kind = "an integer"
    elif isinstance(value, float):
        kind = "a float" if math.isfinite(value) else "not a finite number"
    elif isinstance(value, str):
        kind = "a string"
    elif isinstance(value, list):
        kind = "an array"
    elif isinstance(value, dict):
        kind = "a table"
    elif isinstance(value, (datetime.date, datetime.time)):
        kind = "a date/time"
    else:
        kind = type(value).__name__
    return f"{text} ({kind})"


@dataclass(frozen=True)
class Rule:
    """What one ``[run]`` key accepts: a check and its description in words."""

    expected: str
    check: Callable[[object], bool]


def _string(value) -> bool:
    return isinstance(value, str)


def _int_at_least(low: int) -> Callable[[object], bool]:
    return lambda value: is_int(value) and value >= low


def _list_of(check: Callable[[object], bool], length: int | None = None, nonempty: bool = False):
    def accepts(value) -> bool:
        if not isinstance(value, list) or (length is not None and len(value) != length) or (nonempty and not value):
            return False
        return all(check(v) for v in value)
    return accepts


_STRING = Rule("a string", _string)
_BOOL = Rule("true or false", lambda value: isinstance(value, bool))

#: Every key a ``[run]`` table may hold and what it accepts (RunConfig fields and shared model options).
RUN_SCHEMA: dict[str, Rule] = {
    "models": Rule('a non-empty array of model names, e.g. models = ["bigram", "trigram-kn"]',
                   _list_of(lambda v: isinstance(v, str) and v.strip() != "", nonempty=True)),
    "corpus": _STRING,
    "tokenizer": _STRING,
    "normalize": _STRING,
    "encoding": _STRING,
    "out": _STRING,
    "device": _STRING,
    "precision": _STRING,
    "bpe_vocab_size": Rule("an integer >= 1", _int_at_least(1)),
    "min_freq": Rule("an integer >= 1", _int_at_least(1)),
    "max_vocab": Rule("an integer >= 3", _int_at_least(3)),
    "seed": Rule("an integer", is_int),
    "seeds": Rule("a non-empty array of integers, e.g. seeds = [0, 1, 2]", _list_of(is_int, nonempty=True)),
    "bootstrap": Rule("an integer >= 0", _int_at_least(0)),
    "epochs": Rule("an integer >= 1", _int_at_least(1)),
    "memory": Rule('a memory size such as "4G"', lambda value: isinstance(value, str) and value.strip() != ""),
    "time_budget": Rule("a finite number of seconds > 0", lambda value: is_number(value) and value > 0),
    "split": Rule("an array of three numbers, e.g. split = [0.8, 0.1, 0.1]", _list_of(is_number, length=3)),
    "save_models": _BOOL,
    "save_scores": _BOOL,
    "overwrite": _BOOL,
    "resume": _BOOL,
    "progress": _BOOL,
    "threads": Rule("an integer >= 1", _int_at_least(1)),
    "fractions": Rule("a non-empty array of numbers in (0, 1], e.g. fractions = [0.1, 0.3, 1]",
                      _list_of(lambda v: is_number(v) and 0 < v <= 1, nonempty=True)),
}


def is_param_value(value) -> bool:
    """A model parameter: a string, boolean, finite number, or an array of them (arrays may nest)."""
    if isinstance(value, list):
        return all(is_param_value(v) for v in value)
    return isinstance(value, (str, bool, int)) or is_number(value)


# ---------------------------------------------------------------- suite files


def read_toml(path: Path) -> dict:
    """A TOML file's tables, from one bounded read of a regular UTF-8 file."""
    data = read_text_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LmbenchError(f"suite file {path} is not valid UTF-8 (byte 0x{data[exc.start:exc.start + 1].hex()} "
                           f"at offset {exc.start}); save it as UTF-8, as TOML requires") from None
    try:
        return tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        raise LmbenchError(f"suite file {path} is not valid TOML ({exc}); see `lmbench run --help`") from None


def check_run_table(run, run_fields, where: str) -> None:
    """Raise one line for the first unknown key or wrongly typed value of a ``[run]`` table."""
    if not isinstance(run, dict):
        raise LmbenchError(f"run in {where} must be a table ([run]), got {describe(run)}")
    for key, value in run.items():
        if key not in run_fields:
            raise unknown_name_error(f"[run] option in {where}", key, sorted(run_fields))
        rule = RUN_SCHEMA.get(key)
        if rule is None:    # a run option without a schema entry yet: at least a finite TOML value
            ok, expected = is_param_value(value), "a string, boolean, finite number or an array of them"
        else:
            ok, expected = rule.check(value), rule.expected
        if not ok:
            raise LmbenchError(f"[run] {key} in {where} must be {expected}, got {describe(value)}")


def check_model_tables(models, where: str) -> None:
    """Raise one line for the first ``[models.LABEL]`` that is not a table of parameter values."""
    if not isinstance(models, dict):
        raise LmbenchError(f"models in {where} must be tables [models.LABEL] of parameters, got {describe(models)}; "
                           f"list the models to run as models = [...] under [run]")
    for label, params in models.items():
        if not isinstance(params, dict):
            raise LmbenchError(f"[models.{label}] in {where} must be a table of parameters, got {describe(params)}")
        for name, value in params.items():
            if name == "model" and not (isinstance(value, str) and value.strip()):
                raise LmbenchError(f"[models.{label}] model in {where} must be a registry name (a string), "
                                   f"e.g. model = \"deep-lstm\", got {describe(value)}")
            if not is_param_value(value):
                raise LmbenchError(f"[models.{label}] {name} in {where} must be a string, boolean, finite number "
                                   f"or an array of them, got {describe(value)}")


def load_suite(path: str | Path, run_fields) -> tuple[dict, dict]:
    """Read and validate a suite file.

    Args:
        path: the TOML file.
        run_fields: the option names a ``[run]`` table may set (each checked with :data:`RUN_SCHEMA`).

    Returns:
        (run options, {label: parameter overrides}).

    Raises:
        LmbenchError: one line naming the file, the key and the expected type.
    """
    path = Path(path)
    data = read_toml(path)
    for key in data:
        if key not in ("run", "models"):
            raise unknown_name_error(f"table in {path.name}", key, ["run", "models"])
    run, models = data.get("run", {}), data.get("models", {})
    check_run_table(run, set(run_fields), path.name)
    check_model_tables(models, path.name)
    return run, models


# ---------------------------------------------------------------- --set


_NON_FINITE_WORDS = {sign + word for sign in ("", "+", "-") for word in ("inf", "infinity", "nan")}


def parse_value(text: str, item: str | None = None):
    """A command-line value as JSON (numbers, true/false/null, lists) or else a plain string.

    Args:
        text: the value.
        item: the whole assignment, for the error message.

    Raises:
        LmbenchError: for ``Infinity``, ``NaN``, ``inf`` and the like, or numbers too large to be
            finite (``1e999``), alone or inside a list.
    """
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    if lowered in _NON_FINITE_WORDS or not is_finite(value):
        raise LmbenchError(f"--set {item or text}: {text.strip()} is not a finite number; give a finite value")
    return value


def parse_assignments(items) -> dict:
    """``["lstm.hidden_size=200", ...]`` -> ``{"lstm": {"hidden_size": 200}}``."""
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        label, dot, param = key.rpartition(".")
        if not sep or not dot or not label or not param:
            raise LmbenchError(f"--set expects MODEL.PARAM=VALUE (e.g. trigram-addk.k=0.01), got {item!r}")
        out.setdefault(label.strip(), {})[param.strip()] = parse_value(value, item)
    return out


def merge_params(base: dict, extra: dict) -> dict:
    """Per-label parameter dicts merged, ``extra`` winning."""
    merged = {label: dict(params) for label, params in base.items()}
    for label, params in extra.items():
        merged.setdefault(label, {}).update(params)
    return merged


def run_field_names(config_cls) -> set[str]:
    """The RunConfig fields a suite's ``[run]`` table may set."""
    return {f.name for f in dataclasses.fields(config_cls)} - {"params", "shared_params"}
