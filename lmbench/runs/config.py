"""What defines a run: the options (:class:`RunConfig`, the one source of their defaults) and their checks.

The command line and the Python API build a run's configuration the same way (:func:`build_config`):
defaults, then a suite file (:mod:`lmbench.runs.suite`), then the options given explicitly. This
module imports nothing heavy, so ``import lmbench`` and ``help(lmbench.run)`` stay instant.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from ..errors import LmbenchError, check_seed, is_finite_number, is_whole, unknown_name_error

#: options given to every model that accepts them (``--epochs``, ``--time-budget``, ... of the command line).
SHARED_OPTIONS = ("epochs", "time_budget", "device", "memory", "precision", "progress")


@dataclass
class RunConfig:
    """Everything that defines a run; written to config.json.

    Args:
        models: model labels (registry names, or custom labels defined in ``params``).
        corpus: corpus name, ``nltk:...`` id, ``hf:NAME[/CONFIG]`` dataset, file or directory.
        tokenizer: "word", "char" or "bpe" (subwords learned from the training split); None: the corpus default.
        normalize: "none", "lower" or "d2l"; None: the corpus default.
        bpe_vocab_size: subwords BPE learns with tokenizer "bpe" (None: 8000).
        min_freq: minimum training count for the vocabulary.
        max_vocab: vocabulary cap (``<unk>`` and end of line included).
        split: train/valid/test fractions for corpora that are one text; None: 0.8/0.1/0.1. Refused
            for corpora that come split.
        encoding: text encoding of files.
        out: output directory; None: ``results/<corpus>-<timestamp>``.
        overwrite: replace an earlier run in ``out`` once this one completes.
        resume: keep the models of an earlier run in ``out`` whose configuration and data are unchanged
            and fit only the others; the result is that of a fresh run.
        seed: the seed set before fitting each model.
        seeds: fit every stochastic (neural) model once per seed (labels ``MODEL@seedS``); None: ``[seed]``.
        fractions: a data-size sweep: every model fitted on the first fraction of the training lines for
            each fraction (labels ``MODEL@FRACTION``), all scored on the same targets.
        params: per-label parameter overrides ({label: {param: value}}).
        shared_params: values given to every model that accepts the parameter (:data:`SHARED_OPTIONS`).
        save_models: save each fitted model under ``out/models/``.
        save_scores: save per-token log-probabilities under ``out/scores/``.
        bootstrap: resamples of the paired bootstrap over lines (0: no intervals or comparisons).
        threads: CPU threads of torch and the BLAS libraries (None: their defaults), as KenLM's ``-T``.
    """

    models: list[str]
    corpus: str = "timemachine"
    tokenizer: str | None = None
    normalize: str | None = None
    bpe_vocab_size: int | None = None
    min_freq: int = 1
    max_vocab: int | None = None
    split: tuple | None = None
    encoding: str = "utf-8"
    out: str | None = None
    overwrite: bool = False
    resume: bool = False
    seed: int = 0
    seeds: list[int] | None = None
    fractions: list[float] | None = None
    params: dict = field(default_factory=dict)
    shared_params: dict = field(default_factory=dict)
    save_models: bool = True
    save_scores: bool = True
    bootstrap: int = 1000
    threads: int | None = None


def option_default(name: str):
    """The default of a RunConfig field."""
    spec = {f.name: f for f in fields(RunConfig)}[name]
    return spec.default_factory() if spec.default is MISSING else spec.default


class Default:
    """A default value in a function signature that can be told from the same value given explicitly.

    Shown as the value itself (``help(lmbench.run)`` reads ``bootstrap=1000``); :func:`build_config`
    lets a suite file override only the options whose value is still a Default.
    """

    def __init__(self, value):
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


def given(value) -> bool:
    return not isinstance(value, Default)


def flag(name: str) -> str:
    """How an option is named for both audiences: ``bootstrap=`` (Python) / ``--bootstrap`` (command line)."""
    return f"{name}= (--{name.replace('_', '-')})"


# ---------------------------------------------------------------- building


def build_config(options: dict, suite=None, params: dict | None = None) -> RunConfig:
    """Defaults, then the suite file, then the options given explicitly (values that are not :class:`Default`).

    Args:
        options: run options and shared model options by name (``models``, ``corpus``, ``epochs``, ...).
        suite: a TOML suite file (see :mod:`lmbench.runs.suite`), or None.
        params: per-label parameter overrides; they win over the suite's ``[models.*]`` tables.
    """
    from .suite import load_suite, merge_params

    names = {f.name for f in fields(RunConfig)} - {"params", "shared_params"}
    unknown = [k for k in options if k not in names and k not in SHARED_OPTIONS]
    if unknown:
        raise unknown_name_error("run option", unknown[0], sorted(names | set(SHARED_OPTIONS)))
    values, suite_params = {}, {}
    if suite is not None:
        values, suite_params = load_suite(check_path("config", suite), names | set(SHARED_OPTIONS))
    for key, value in options.items():
        if given(value):
            values[key] = value
        elif key not in values and value.value is not None:
            values[key] = value.value
    models = values.get("models")
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    values["models"] = list(models) if models is not None else []
    for key in ("corpus", "out"):
        if isinstance(values.get(key), os.PathLike):
            values[key] = os.fspath(values[key])
    if values.get("split") is not None and isinstance(values["split"], list):
        values["split"] = tuple(values["split"])
    shared = {k: values.pop(k) for k in SHARED_OPTIONS if k in values}
    if params is not None and not isinstance(params, dict):
        raise LmbenchError(f"params= must be a dict {{label: {{parameter: value}}}}, got {type(params).__name__}")
    config = RunConfig(**values, shared_params={k: v for k, v in shared.items() if v is not None},
                       params=merge_params(suite_params, params or {}))
    check_config(config)
    return config


def check_path(name: str, value) -> Path:
    """A str or os.PathLike option as a Path; a one-line error for anything else."""
    if isinstance(value, (str, os.PathLike)) and str(value):
        return Path(value)
    raise LmbenchError(f"{flag(name)} must be a path (a str or pathlib.Path), got {value!r}")


# ---------------------------------------------------------------- checking


def check_config(config: RunConfig) -> None:
    """Raise a one-line error for option values no run can use (before any data is read)."""
    if not config.models:
        raise LmbenchError("no models given; e.g. models=['bigram', 'trigram-add1'] (--models bigram,trigram-add1)")
    if not all(isinstance(m, str) and m for m in config.models):
        raise LmbenchError(f"{flag('models')} must be model names (strings), got {config.models!r}")
    if len(set(config.models)) != len(config.models):
        raise LmbenchError(f"a model is listed twice in {','.join(config.models)}; list each once")
    if not isinstance(config.corpus, str) or not config.corpus:
        raise LmbenchError(f"{flag('corpus')} must be a corpus name or a path, got {config.corpus!r}")
    for name in ("tokenizer", "normalize", "out"):
        value = getattr(config, name)
        if value is not None and not isinstance(value, str):
            raise LmbenchError(f"{flag(name)} must be a string, got {value!r}")
    if not isinstance(config.encoding, str):
        raise LmbenchError(f"{flag('encoding')} must be a codec name such as utf-8, got {config.encoding!r}")
    for name in ("overwrite", "resume", "save_models", "save_scores"):
        if not isinstance(getattr(config, name), bool):
            raise LmbenchError(f"{flag(name)} must be True or False, got {getattr(config, name)!r}")
    if config.overwrite and config.resume:
        raise LmbenchError(f"{flag('resume')} keeps an earlier run's models and {flag('overwrite')} replaces the "
                           f"run: give one of them")
    check_seed(config.seed, flag("seed"))
    if config.seeds is not None:
        if not isinstance(config.seeds, (list, tuple)) or not config.seeds or len(set(config.seeds)) != len(config.seeds):
            raise LmbenchError(f"{flag('seeds')} needs distinct seeds, e.g. [0, 1, 2] (--seeds 0,1,2); got {config.seeds}")
        for seed in config.seeds:
            check_seed(seed, flag("seeds"))
    if not is_whole(config.bootstrap) or config.bootstrap < 0:
        raise LmbenchError(f"{flag('bootstrap')} must be a whole number >= 0 (0 turns it off), got {config.bootstrap!r}")
    for name, low in (("min_freq", 1), ("max_vocab", 3), ("bpe_vocab_size", 1), ("threads", 1)):
        value = getattr(config, name)
        if value is not None and (not is_whole(value) or value < low):
            raise LmbenchError(f"{flag(name)} must be a whole number >= {low}, got {value!r}")
    if config.bpe_vocab_size is not None and config.tokenizer != "bpe":
        raise LmbenchError(f"{flag('bpe_vocab_size')} applies to tokenizer='bpe' only; add tokenizer='bpe' "
                           f"(--tokenizer bpe) or drop it")
    if config.split is not None:
        from ..data.raw import check_fractions

        if not isinstance(config.split, (list, tuple)) or not all(isinstance(f, (int, float)) for f in config.split):
            raise LmbenchError(f"{flag('split')} must be three fractions, e.g. (0.8, 0.1, 0.1), got {config.split!r}")
        check_fractions(tuple(config.split))
    if config.fractions is not None:
        fractions = config.fractions
        if not isinstance(fractions, (list, tuple)) or not fractions \
                or any(not is_finite_number(f) or not 0 < f <= 1 for f in fractions) \
                or len(set(fractions)) != len(fractions):
            raise LmbenchError(f"{flag('fractions')} needs distinct numbers in (0, 1], e.g. [0.01, 0.1, 1] "
                               f"(--fractions 0.01,0.1,1); got {fractions}")
    for label, overrides in config.params.items():
        if label not in config.models:
            raise unknown_name_error("model label in params= (--set or [models.*])", label, config.models,
                                     hint="parameters must name a model of models=")
        if not isinstance(overrides, dict):
            raise LmbenchError(f"params for {label} must be a dict {{parameter: value}}, got {overrides!r}")
