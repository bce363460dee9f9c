"""The benchmark runner: one dataset, many models, identical targets, one results table.

Every model of a run is fitted on the same training ids and scored on exactly the same valid and
test ids, built once from one vocabulary. Rows are written as each model finishes.
"""

from __future__ import annotations

import datetime as _dt
import math
import platform
import re
import sys
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .corpora import DEFAULT_FRACTIONS, load_corpus
from .data import Dataset, build_dataset
from .errors import LmbenchError
from .models.base import LanguageModel
from .plots import curves_plot, perplexity_plot
from .registry import ModelSpec, accepted_params, resolve
from .results import ResultsTable, format_table
from .seeding import seed_everything
from .textio import atomic_write_json, atomic_write_text, check_writable_dir
from .tokenize import Tokenizer

EVAL_SPLITS = ("valid", "test")


@dataclass
class RunConfig:
    """Everything that defines a run; written to config.json.

    Args:
        models: model labels (registry names, or custom labels defined in ``params``).
        corpus: corpus name, ``nltk:...`` id, file or directory.
        tokenizer: "word" or "char"; None: the corpus default.
        normalize: "none", "lower" or "d2l"; None: the corpus default.
        min_freq: minimum training count for the vocabulary.
        max_vocab: vocabulary cap (``<unk>`` and end of line included).
        split: train/valid/test fractions for corpora that are one text.
        encoding: text encoding of files.
        out: output directory; None: ``results/<corpus>-<timestamp>``.
        seed: the seed set before fitting each model.
        params: per-label parameter overrides ({label: {param: value}}).
        shared_params: values given to every model that accepts the parameter (e.g. epochs).
        save_models: save each fitted model under ``out/models/``.
    """

    models: list[str]
    corpus: str = "timemachine"
    tokenizer: str | None = None
    normalize: str | None = None
    min_freq: int = 1
    max_vocab: int | None = None
    split: tuple = DEFAULT_FRACTIONS
    encoding: str = "utf-8"
    out: str | None = None
    seed: int = 0
    params: dict = field(default_factory=dict)
    shared_params: dict = field(default_factory=dict)
    save_models: bool = True


@dataclass
class RunResult:
    out_dir: Path
    table: object
    failures: dict


def model_specs(config: RunConfig) -> list[ModelSpec]:
    """Resolve labels and overrides, and check every model's parameters, before any data is read."""
    if not config.models:
        raise LmbenchError("no models given; e.g. --models bigram,trigram-add1")
    if len(set(config.models)) != len(config.models):
        raise LmbenchError(f"a model is listed twice in {','.join(config.models)}; list each once")
    specs = []
    for label in config.models:
        spec = resolve(label, config.params.get(label))
        shared = {k: v for k, v in config.shared_params.items()
                  if k in accepted_params(spec.cls) and k not in (config.params.get(label) or {})}
        spec = ModelSpec(spec.label, spec.cls, {**spec.params, **shared})
        try:
            spec.build().check_params()
        except LmbenchError as exc:
            raise LmbenchError(f"{label}: {exc}") from None
        specs.append(spec)
    return specs


def load_dataset(config: RunConfig) -> Dataset:
    """Read, tokenize and encode the corpus once for all models."""
    raw = load_corpus(config.corpus, config.split, config.encoding)
    tokenizer = Tokenizer(config.tokenizer or raw.tokenizer, config.normalize or raw.normalize)
    return build_dataset(raw, tokenizer, config.min_freq, config.max_vocab)


def check_split_sizes(dataset: Dataset, specs: list[ModelSpec]) -> None:
    """Every split needs real tokens; training must be long enough for every model."""
    for name, ids in dataset.splits.items():
        if not (ids != dataset.vocab.eos_id).any():
            raise LmbenchError(f"the {name} split of {dataset.name} has no tokens besides line ends; "
                               f"use a longer corpus or other --split fractions")
    n_train = dataset.splits["train"].size
    for spec in specs:
        need = spec.build().min_train_tokens()
        if n_train < need:
            raise LmbenchError(f"the train split has {n_train} tokens, too few for {spec.label} (needs {need}); "
                               f"use a longer corpus or smaller model settings")


def default_out_dir(dataset_name: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path("results") / f"{dataset_name}-{stamp}"
    n = 2
    while out.exists():
        out, n = Path("results") / f"{dataset_name}-{stamp}-{n}", n + 1
    return out


def versions() -> dict:
    import nltk
    import pandas
    import scipy
    import torch

    return {"lmbench": __version__, "python": platform.python_version(), "platform": platform.platform(),
            "numpy": np.__version__, "torch": torch.__version__, "nltk": nltk.__version__,
            "pandas": pandas.__version__, "scipy": scipy.__version__}


class Run:
    """One benchmark run writing into one directory."""

    def __init__(self, config: RunConfig, echo=print):
        self.started = _dt.datetime.now()
        self.config = config
        self.echo = echo
        self.specs = model_specs(config)
        self.dataset = load_dataset(config)
        check_split_sizes(self.dataset, self.specs)
        self.out = check_writable_dir(config.out or default_out_dir(self.dataset.name))
        if (self.out / "perplexity.csv").exists():
            warnings.warn(f"{self.out} holds an earlier run; its results files are replaced by this run's")
        self.table = ResultsTable(self.out / "perplexity.csv")
        self.models_info = {s.label: {"class": s.cls.__name__, "params": s.params, "status": "pending"}
                            for s in self.specs}
        self.curves: dict = {}
        self.versions = versions()
        self.status = "running"

    def execute(self) -> RunResult:
        """Fit and score every model; a failing model is reported and the others go on."""
        self._write_config()
        self._describe_data()
        try:
            for spec in self.specs:
                self._run_one(spec)
            self.status = "failed" if self.failures() else "complete"
        except KeyboardInterrupt:
            self.status = "interrupted"
            raise
        finally:
            self._write_config()
            self._write_plots()
        return RunResult(self.out, self.table.frame(), self.failures())

    def _write_plots(self) -> None:
        if self.table.rows:
            perplexity_plot(self.table.frame(), self.out / "perplexity.png", f"{self.dataset.name}: held-out perplexity")
        if self.curves:
            curves_plot(self.curves, self.out / "curves.png", f"{self.dataset.name}: learning curves")

    def failures(self) -> dict:
        return {label: info["error"] for label, info in self.models_info.items() if info["status"] == "failed"}

    def _run_one(self, spec: ModelSpec) -> None:
        info = self.models_info[spec.label]
        self.echo(f"[{spec.label}] fitting ...")
        try:
            rows, model = self._fit_and_score(spec)
        except Exception as exc:  # one model's failure must not lose the others
            message = str(exc) if isinstance(exc, LmbenchError) else f"{type(exc).__name__}: {exc}"
            info.update(status="failed", error=message,
                        traceback=None if isinstance(exc, LmbenchError) else traceback.format_exc())
            self.echo(f"[{spec.label}] FAILED: {message}")
            self._write_config()
            return
        self.table.add(rows)
        self._write_curve(spec.label, model)
        info.update(status="done", fitted=model.fitted_summary(), n_params=model.n_params)
        if self.config.save_models:
            (self.out / "models").mkdir(exist_ok=True)
            info["checkpoint"] = self._checkpoint_name(spec.label)
            model.save(self.out / info["checkpoint"])
        self._write_config()
        summary = ", ".join(f"{r['split']} ppl {_ppl_text(r)}" for r in rows)
        self.echo(f"[{spec.label}] done in {rows[0]['fit_seconds']:.2f}s: {summary}")

    def _checkpoint_name(self, label: str) -> str:
        """``models/<label>.pt`` with characters unsafe in file names replaced (``arpa:/x`` labels)."""
        stem = file_stem(label)
        taken = {info.get("checkpoint") for info in self.models_info.values()}
        name, n = f"models/{stem}.pt", 2
        while name in taken:
            name, n = f"models/{stem}-{n}.pt", n + 1
        return name

    def _write_curve(self, label: str, model: LanguageModel) -> None:
        curve = model.training_curve()
        if curve:
            (self.out / "curves").mkdir(exist_ok=True)
            frame = pd.DataFrame(curve)
            atomic_write_text(self.out / "curves" / f"{file_stem(label)}.csv", frame.to_csv(index=False))
            self.curves[label] = frame

    def _fit_and_score(self, spec: ModelSpec) -> tuple[list[dict], LanguageModel]:
        seed_everything(self.config.seed)
        model = spec.build()
        splits = self.dataset.splits
        start = time.perf_counter()
        model.fit(splits["train"], splits["valid"], vocab=self.dataset.vocab)
        fit_seconds = time.perf_counter() - start
        rows = [self._score(spec.label, model, split, fit_seconds) for split in EVAL_SPLITS]
        return rows, model

    def _score(self, label: str, model: LanguageModel, split: str, fit_seconds: float) -> dict:
        start = time.perf_counter()
        result = model.evaluate(self.dataset.splits[split])
        seconds = time.perf_counter() - start
        expected = self.dataset.stats[split].n_tokens
        if result.n_tokens != expected:
            raise RuntimeError(f"{label} scored {result.n_tokens} tokens of {split}, expected {expected}")
        scores = result.as_dict()
        if not model.comparable:
            scores.update(nll_nats=math.nan, cross_entropy_nats=math.nan, bits_per_token=math.nan, perplexity=math.nan)
        return {"model": label, "split": split, **scores, "vocab_size": len(self.dataset.vocab),
                "n_params": model.n_params, "fit_seconds": fit_seconds, "eval_seconds": seconds,
                "comparable": model.comparable, "note": _note(model),
                "data_sha256": self.dataset.stats[split].sha256[:16]}

    def _describe_data(self) -> None:
        d = self.dataset
        parts = ", ".join(f"{name} {st.n_tokens:,} tokens ({st.n_oov:,} OOV)" for name, st in d.stats.items())
        self.echo(f"corpus {d.name}: {d.tokenizer.kind} tokens, normalize={d.tokenizer.normalize}, "
                  f"vocabulary {len(d.vocab):,}; {parts}")
        self.echo(f"writing to {self.out}")

    def _write_config(self) -> None:
        atomic_write_json(self.out / "config.json", {
            "lmbench_version": __version__,
            "status": self.status,
            "started": self.started.isoformat(timespec="seconds"),
            "wall_seconds": round((_dt.datetime.now() - self.started).total_seconds(), 2),
            "command": sys.argv,
            "options": asdict(self.config),
            "versions": self.versions,
            "data": self.dataset.summary(),
            "models": self.models_info,
        })


def file_stem(label: str) -> str:
    """A model label as a file name (``arpa:/x/y.arpa`` -> ``arpa__x_y.arpa``)."""
    return re.sub(r"[^\w.+-]", "_", label)


def _note(model: LanguageModel) -> str:
    if not model.comparable:
        return model.not_comparable_reason
    return "; ".join(f"{k}={_short(v)}" for k, v in model.fitted_summary().items())


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _ppl_text(row: dict) -> str:
    if not row["comparable"]:
        return "n/a"
    return "inf" if math.isinf(row["perplexity"]) else f"{row['perplexity']:.2f}"


def run_benchmark(config: RunConfig, echo=print) -> RunResult:
    """Validate, build the shared data, then fit and score every model (see :class:`Run`)."""
    result = Run(config, echo).execute()
    echo("")
    echo(format_table(result.table))
    return result
