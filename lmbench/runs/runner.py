"""The benchmark runner: one dataset, many models, identical targets, one results table.

Every model of a run is fitted on the same training ids and scored on exactly the same valid and
test ids, built once from one vocabulary. Rows are written as each model finishes, with each
model's per-token scores; when all models are done, the analysis (bootstrap intervals, pairwise
comparisons, frequency buckets, seeds, report) is computed from those scores.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import os
import platform
import sys
import time
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ..version import __version__
from ..data.corpora import DEFAULT_FRACTIONS, load_corpus
from ..data.dataset import Dataset, build_dataset
from ..models.neural.distributed import RankError, World, broadcast_from_main, process_group
from ..errors import LmbenchError, RunInterrupted
from ..models.base import LanguageModel
from ..scoring.metrics import eval_result
from ..models.registry import ModelSpec
from . import files
from .config import RunConfig
from .jobs import Job, expand_jobs, file_stems, model_specs, training_ids
from .table import ResultsTable, format_table
from .resume import Earlier
from .rundir import OutputDir
from .result import RunResult
from ..models.seeding import seed_everything
from ..files import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from ..scoring.splits import SplitScores

EVAL_SPLITS = ("valid", "test")


def load_dataset(config: RunConfig) -> Dataset:
    """Read, tokenize and encode the corpus once for all models."""
    from ..data.tokenizers import Tokenizer

    raw = load_corpus(config.corpus, config.split or DEFAULT_FRACTIONS, config.encoding)
    if config.split is not None and getattr(raw, "presplit", False):
        raise LmbenchError(f"split= (--split) applies to a corpus that is one text, but {config.corpus} comes with "
                           f"its own train/valid/test files; drop --split (split=None)")
    tokenizer = Tokenizer(config.tokenizer or raw.tokenizer, config.normalize or raw.normalize,
                          vocab_size=config.bpe_vocab_size)
    return build_dataset(raw, tokenizer, config.min_freq, config.max_vocab, consume=True)


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
    """Versions of Python and the libraries, read from package metadata (nothing is imported)."""
    return dict(_versions())


@functools.cache
def _versions() -> dict:
    """Read once per process: a metadata lookup scans site-packages."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"lmbench": __version__, "python": platform.python_version(), "platform": platform.platform()}
    for package in ("numpy", "torch", "nltk", "pandas", "scipy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def machine() -> dict:
    """The CPU this run used (neural models add their device in their own ``environment``)."""
    from ..models.neural.devices import cpu_model

    return {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "hostname": platform.node()}


# ---------------------------------------------------------------- the run


class Run:
    """One benchmark run writing into one directory (staged beside an earlier run until it completes)."""

    def __init__(self, config: RunConfig, echo=print, world: World = World()):
        from ..report.plots import check_backend

        self.started = _dt.datetime.now()
        self.config = config
        self.echo = echo
        self.world = world
        self.specs = model_specs(config)
        self.jobs = expand_jobs(self.specs, config)
        check_backend()  # figures come last: a broken matplotlib setup must fail before any fit, not after
        self.dataset = load_dataset(config)
        check_split_sizes(self.dataset, self.specs)
        self.held_out = {split: self.dataset.held_out(split) for split in EVAL_SPLITS}
        mode = "resume" if config.resume else "overwrite" if config.overwrite else "new"
        self.output = OutputDir(config.out or default_out_dir(self.dataset.name), mode)
        self.out = self.output.claim()
        self.stems = file_stems([job.label for job in self.jobs])
        self.table = ResultsTable(self.out / files.PERPLEXITY_CSV)
        self.models_info = {job.label: {"class": job.spec.cls.__name__, "model": job.base_label, "seed": job.seed,
                                        "fraction": job.fraction, "requires": list(job.requires),
                                        "params": _resolved_params(job.spec), "status": "pending"}
                            for job in self.jobs}
        self.scores: dict = {}
        self.curves: dict = {}
        self.needed = {label for job in self.jobs for label in job.requires}
        self.fitted: dict = {}
        self.versions = versions()
        self.status = "running"
        self.earlier = Earlier(self.output.target, self.dataset) if config.resume else None

    def execute(self) -> RunResult:
        """Fit and score every model (a failing model is reported, the others go on), then analyse.

        The run is complete, and an earlier run it replaces is replaced, only once the analysis,
        figures and config.json are all written; anything less keeps the earlier run as it was.
        """
        fitted_all = False
        failure: OSError | LmbenchError | KeyboardInterrupt | None = None
        try:
            self._write_config()
            self._describe_data()
            self._save_targets()
            for job in self.jobs:
                self._run_one(job)
            fitted_all = True
            if self.table.rows:
                self._analyse()
            self.status = "failed" if self.failures() else "complete"
            self._write_config()
        except KeyboardInterrupt:
            self.status = "interrupted"
            if not fitted_all:  # interrupted while fitting: analyse what finished (never swapped in)
                self._analyse_if_possible()
            self._write_config_if_possible()
            failure = KeyboardInterrupt()
        except (OSError, LmbenchError) as exc:  # writing results failed (disk full, folder removed, ...)
            self.status = "failed"
            self._write_config_if_possible()
            failure = exc
        finally:
            self.out = self.output.finish(self.status == "complete")
        if isinstance(failure, KeyboardInterrupt):
            kept = "; the earlier run is kept as it was" if self.output.staging is not None else ""
            raise RunInterrupted(f"results of finished models are kept in {self.out}{kept}") from None
        if failure is not None:  # said once the partial run is where it stays (a staged one is set aside)
            raise self._failure_error(failure) from None
        return RunResult(self.out)

    def _failure_error(self, exc) -> LmbenchError:
        """The one line of a run that could not write its results, naming the folder its finished rows are in."""
        kept = "; the earlier run is kept as it was" if self.output.staging is not None else ""
        if isinstance(exc, LmbenchError):
            return LmbenchError(f"{exc}; finished rows are kept in {self.out}{kept}")
        reason = exc.strerror or exc
        return LmbenchError(f"cannot finish the run in {self.output.target} ({reason}); free some space or choose "
                            f"another --out; finished rows are kept in {self.out}{kept}")

    def _analyse_if_possible(self) -> None:
        try:
            if self.table.rows:
                self._analyse()
        except (OSError, LmbenchError) as exc:
            self.echo(f"lmbench: warning: could not write the analysis of the finished models ({exc})")

    def _write_config_if_possible(self) -> None:
        try:
            self._write_config()
        except (OSError, LmbenchError):
            pass

    def failures(self) -> dict:
        return {label: info["error"] for label, info in self.models_info.items() if info["status"] == "failed"}

    def _run_one(self, job: Job) -> None:
        info = self.models_info[job.label]
        need, have = job.spec.build().min_train_tokens(), int(self._train_ids(job).size)
        if job.fraction < 1 and have < need:  # a sweep point too small for the model: a row with its reason
            info.update(status="infeasible", error=f"{have:,} training tokens at fraction {job.fraction:g}, fewer "
                                                   f"than the {need:,} {job.base_label} needs")
            self.echo(f"[{job.label}] infeasible: {info['error']}")
            self._write_config()
            return
        reused = self.earlier.reuse(job, info, self.stems[job.label], self.out) if self.earlier else None
        if reused is not None:
            rows, model, scores, curve = reused
            self.echo(f"[{job.label}] kept from the earlier run (same configuration and data)")
        else:
            self.echo(f"[{job.label}] fitting ...")
            try:
                rows, model, scores = self._fit_and_score(job)
            except Exception as exc:  # one model's failure must not lose the others
                if self.world.distributed and not isinstance(exc, LmbenchError) and job.spec.build().trains_collectively:
                    raise  # the other ranks may be waiting inside this fit's collectives: end the whole launch
                message = str(exc) if isinstance(exc, LmbenchError) else f"{type(exc).__name__}: {exc}"
                info.update(status="failed", error=message,
                            traceback=None if isinstance(exc, LmbenchError) else traceback.format_exc())
                self.echo(f"[{job.label}] FAILED: {message}")
                self._write_config()
                return
            curve = model.training_curve()
        if job.label in self.needed and model is not None:
            self.fitted[job.label] = model
        self.scores.update({(job.label, split): sc for split, sc in scores.items()})
        if reused is None:
            info.update(status="done", fitted=model.fitted_summary(), n_params=model.n_params,
                        environment=model.environment(), valid_use=model.valid_use())
            saved_bytes = self._save_outputs(job.label, model, scores, curve)
            for row in rows:
                row["saved_bytes"] = saved_bytes
        elif curve is not None:
            self.curves[job.label] = curve
        self.table.add(rows)
        self._write_config()
        summary = ", ".join(f"{r['split']} ppl {_ppl_text(r)}" for r in rows)
        self.echo(f"[{job.label}] done in {rows[0]['fit_seconds']:.2f}s: {summary}")
        if rows[0].get("stopped_by") == "time_budget":
            self.echo(f"[{job.label}] cut short by the time budget: {_cut_short_text(rows[0])}")

    def _save_outputs(self, label: str, model: LanguageModel, scores: dict, curve) -> int:
        """Scores, learning curve and checkpoint, each bound to the run by its sha256 in config.json; returns the checkpoint's bytes."""
        from ..files import sha256_of
        from ..scoring.tokens import save_model_scores

        info, stem = self.models_info[label], self.stems[label]
        if self.config.save_scores:
            save_model_scores(self.out / files.scores_file(stem), {s: sc.logprobs for s, sc in scores.items()},
                              {s: sc.line_offsets for s, sc in scores.items() if sc.own_tokens})
            info["scores"] = files.scores_file(stem)
            info["scores_sha256"] = sha256_of(self.out / files.scores_file(stem))
        if curve:
            (self.out / files.CURVES_DIR).mkdir(exist_ok=True)
            frame = pd.DataFrame(curve)
            atomic_write_text(self.out / files.curve_file(stem), frame.to_csv(index=False))
            self.curves[label] = frame
            info["curve"] = files.curve_file(stem)
        saved_bytes = 0
        if self.config.save_models:
            (self.out / files.MODELS_DIR).mkdir(exist_ok=True)
            path = self.out / files.checkpoint_file(stem)
            model.save(path)
            info["checkpoint"] = files.checkpoint_file(stem)
            info["checkpoint_sha256"] = sha256_of(path)
            saved_bytes = path.stat().st_size
        return saved_bytes

    def _fit_and_score(self, job: Job) -> tuple[list[dict], LanguageModel, dict]:
        from .measure import PeakMemory, model_bytes

        seed_everything(job.seed)
        model = job.spec.build()
        model.label = job.label
        peak = PeakMemory()
        start = time.perf_counter()
        with peak.watch():
            model.attach(self._peers(job))
            model.fit(self._train_ids(job), self.dataset.splits["valid"], vocab=self.dataset.vocab)
        fit_seconds = time.perf_counter() - start
        cost = {"model_bytes": model_bytes(model), "fit_peak_bytes": peak.increase_bytes}
        rows, scores = [], {}
        for split in EVAL_SPLITS:
            row, scores[split] = self._score(job, model, split, fit_seconds)
            rows.append({**row, **cost})
        return rows, model, scores

    def _peers(self, job: Job) -> dict:
        """The fitted models ``job`` is built from (those that finished)."""
        return {need: self.fitted[label] for need, label in zip(job.spec.build().requires(), job.requires)
                if label in self.fitted}

    def _train_ids(self, job: Job) -> np.ndarray:
        return training_ids(self.dataset.splits["train"], self.dataset.vocab.eos_id, job.fraction)

    def _score(self, job: Job, model: LanguageModel, split: str, fit_seconds: float) -> tuple[dict, "SplitScores"]:
        held = self.held_out[split]
        start = time.perf_counter()
        scores = model.score_split(held)
        seconds = time.perf_counter() - start
        stats = self.dataset.stats[split]
        if not scores.own_tokens and scores.logprobs.shape != (stats.n_tokens,):
            raise RuntimeError(f"{job.label} scored {scores.logprobs.size} tokens of {split}, "
                               f"expected {stats.n_tokens}")
        if scores.line_offsets.size != held.line_offsets.size:
            raise RuntimeError(f"{job.label} scored {scores.line_offsets.size - 1} lines of {split}, "
                               f"expected {held.n_lines}")
        result = eval_result(scores.logprobs)
        extras = model.split_extras(self.dataset.splits[split]) if not scores.own_tokens else {}
        if extras:
            self.models_info[job.label].setdefault("extras", {})[split] = extras
        values = result.as_dict()
        values["bits_per_byte"] = result.bits_per_byte(stats.n_bytes)
        if not model.comparable:
            values.update(nll_nats=math.nan, cross_entropy_nats=math.nan, bits_per_token=math.nan,
                          bits_per_byte=math.nan, perplexity=math.nan)
        if result.n_nan:
            warnings.warn(f"{job.label} gave {result.n_nan} {split} token(s) a NaN log-probability (a numerical "
                          f"failure, not a zero probability); its {split} perplexity is NaN", stacklevel=2)
        summary = model.fitted_summary()
        row = {"model": job.label, "split": split, **values, "vocab_size": len(self.dataset.vocab),
               "n_params": model.n_params, "fit_seconds": fit_seconds, "eval_seconds": seconds,
               "comparable": model.comparable, "tuned_on_valid": split == "valid" and bool(model.valid_use()),
               "seed": job.seed, "family": model.family, "train_tokens": int(self._train_ids(job).size),
               "note": _join(_note(model), _extras_note(extras)), "data_sha256": stats.sha256[:16],
               "token_unit": summary.get("token_unit", "own") if scores.own_tokens else "run",
               "stopped_by": summary.get("stopped_by", ""), "epochs_completed": summary.get("epochs_completed"),
               "tokens_trained": summary.get("tokens_trained"),
               "score_tokens_per_s": scores.logprobs.size / seconds if seconds > 0 else math.nan}
        return row, scores

    # ------------------------------------------------------------ analysis after the models

    def _targets(self) -> dict:
        from ..analysis.summary import Targets

        return {split: Targets(h.ids, h.line_offsets, h.line_bytes) for split, h in self.held_out.items()}

    def _train_counts(self) -> np.ndarray:
        from ..analysis.buckets import train_counts

        return train_counts(self.dataset.splits["train"], len(self.dataset.vocab))

    def _save_targets(self) -> None:
        from ..files import sha256_of
        from ..scoring.tokens import save_targets

        if not self.config.save_scores:
            return
        (self.out / files.SCORES_DIR).mkdir(exist_ok=True)
        path = self.out / files.SCORES_DIR / files.TARGETS_NPZ
        save_targets(path, {s: h.ids for s, h in self.held_out.items()},
                     {s: h.line_offsets for s, h in self.held_out.items()}, self._train_counts(),
                     {s: h.line_bytes for s, h in self.held_out.items()})
        self.targets_sha256 = sha256_of(path)

    def _analyse(self) -> None:
        """Intervals, comparisons, buckets, seeds, figures, report.md and results.json, from the per-token scores."""
        from .summarize import analyse, write_analysis

        frame = self.table.frame()
        sweep_of = {j.label: (j.base_label, j.fraction) for j in self.jobs} if self.config.fractions else None
        found = analyse(frame, self.scores, self._targets(), self._train_counts(), self.dataset.vocab.unk_id,
                        bootstrap=self.config.bootstrap, seed=self.config.seed,
                        seed_groups=self._seed_groups(set(frame["model"])), sweep_of=sweep_of,
                        failed={j.label: (j.spec.cls.family, int(self._train_ids(j).size),
                                          self.models_info[j.label]["error"])
                                for j in self.jobs if self.models_info[j.label]["status"] in ("failed", "infeasible")})
        self.table.replace(found.table)
        self.sweep_notes = found.sweep_notes if sweep_of else None
        write_analysis(self.out, found, self.dataset.name, self.curves, self._config_dict("complete"))

    def _seed_groups(self, finished: set) -> dict:
        """Model (and fraction, in a sweep) -> labels of its finished per-seed fits, where there are several."""
        groups: dict = {}
        for job in self.jobs:
            if job.label in finished:
                name = job.base_label + (f"@{job.fraction:g}" if self.config.fractions else "")
                groups.setdefault(name, []).append(job.label)
        return {name: labels for name, labels in groups.items() if len(labels) > 1}

    # ------------------------------------------------------------ what the run records

    def _describe_data(self) -> None:
        d = self.dataset
        parts = ", ".join(f"{name} {st.n_tokens:,} tokens ({st.n_oov:,} OOV)" for name, st in d.stats.items())
        kind = d.tokenizer.kind + (f" ({d.tokenizer.vocab_size:,} BPE subwords learned from train)"
                                   if d.tokenizer.kind == "bpe" else "")
        self.echo(f"corpus {d.name}: {kind} tokens, normalize={d.tokenizer.normalize}, "
                  f"vocabulary {len(d.vocab):,}; {parts}")
        if self.config.fractions:
            self.echo("sweep: every training size shares this vocabulary (of the whole training split) and is "
                      "scored on the same valid and test tokens")
        staged = " (staged until complete)" if self.out != self.output.target else ""
        self.echo(f"writing to {self.output.target}{staged}")

    def _config_dict(self, status: str | None = None) -> dict:
        return {
            "lmbench_version": __version__,
            "status": status or self.status,
            "started": self.started.isoformat(timespec="seconds"),
            "wall_seconds": round((_dt.datetime.now() - self.started).total_seconds(), 2),
            "command": sys.argv,
            "options": asdict(self.config),
            "versions": self.versions,
            "machine": machine(),
            "threads": thread_counts(),
            "distributed": self.world.describe(),
            "data": self.dataset.summary(),
            "targets_sha256": getattr(self, "targets_sha256", None),
            "models": self.models_info,
            "sweep": getattr(self, "sweep_notes", None),
        }

    def _write_config(self) -> None:
        atomic_write_json(self.out / files.CONFIG, self._config_dict())


def thread_counts() -> dict:
    """The CPU threads torch (if imported) and the BLAS libraries use now, for config.json."""
    torch = sys.modules.get("torch")
    found = {"torch": torch.get_num_threads() if torch is not None else None}
    try:
        from threadpoolctl import threadpool_info

        found["blas"] = sorted({info.get("num_threads") for info in threadpool_info() if info.get("num_threads")})
    except ImportError:  # pragma: no cover
        found["blas"] = None
    return found


def follow_run(config: RunConfig, expected: dict, world: World) -> None:
    """What a rank other than 0 does in a data-parallel run: fit the collectively trained models with rank 0.

    It builds the same data and jobs as :class:`Run` (and stops if its data differs from rank 0's,
    ``expected``: :func:`data_fingerprints`) and, in the same order and with the same seeds, takes
    part in the fit of every model that :attr:`~lmbench.models.base.LanguageModel.trains_collectively`;
    it scores nothing and writes nothing. An invalid model (LmbenchError, raised alike on every rank)
    is left to rank 0 to report; any other error ends this process, and torchrun then stops the run.
    """
    specs = model_specs(config)
    dataset = load_dataset(config)
    found = data_fingerprints(dataset)
    if found != expected:
        differ = ", ".join(key for key in expected if found.get(key) != expected[key])
        raise RankError(f"rank {world.rank} built other data than rank 0 ({differ} differ); every machine must "
                        f"read the same corpus files with the same options")
    check_split_sizes(dataset, specs)
    for job in expand_jobs(specs, config):
        seed_everything(job.seed)
        model = job.spec.build()
        if not model.trains_collectively:
            continue
        model.label = job.label
        try:
            model.fit(training_ids(dataset.splits["train"], dataset.vocab.eos_id, job.fraction),
                      dataset.splits["valid"], vocab=dataset.vocab)
        except LmbenchError:
            continue


def _resolved_params(spec: ModelSpec) -> dict:
    """Every constructor parameter of the model with the value it will be built with."""
    return spec.build().get_params()


#: fitted_summary keys that have columns of their own (how a fit ended), so the note leaves them out.
FIT_COLUMNS = ("stopped_by", "epochs_completed", "tokens_trained", "last_epoch_partial", "token_unit")


def _note(model: LanguageModel) -> str:
    if not model.comparable:
        return model.not_comparable_reason
    parts = [f"{k}={_short(v)}" for k, v in model.fitted_summary().items() if k not in FIT_COLUMNS]
    return "; ".join(parts + ([model.valid_use()] if model.valid_use() else []))


def _extras_note(extras: dict) -> str:
    """Scalar model-specific figures of a split as ``name=value`` (lists stay in config.json)."""
    return "; ".join(f"{k}={_short(v)}" for k, v in extras.items() if isinstance(v, float))


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cut_short_text(row: dict) -> str:
    """How much of a fit cut short was done: its epochs and training tokens."""
    done = row.get("epochs_completed")
    seen = row.get("tokens_trained")
    parts = []
    if done is not None:
        parts.append(f"{done} complete epoch{'s' * (done != 1)}")
    if seen is not None:
        parts.append(f"{seen:,} training tokens seen (the split has {row['train_tokens']:,})")
    return ", ".join(parts) or "see config.json"


def _ppl_text(row: dict) -> str:
    if not row["comparable"]:
        return "n/a"
    return "inf" if math.isinf(row["perplexity"]) else f"{row['perplexity']:.2f}"


def _start_with_followers(config: RunConfig, echo, world: World) -> Run:
    """Rank 0 sets the run up (checks, output directory) and tells the other ranks whether it could."""
    try:
        run = Run(config, echo, world)
    except BaseException:
        broadcast_from_main(None)
        raise
    broadcast_from_main(data_fingerprints(run.dataset))
    return run


def data_fingerprints(dataset: Dataset) -> dict:
    """sha256 of every split's ids and the vocabulary size: equal on every rank, or the ranks train on different data."""
    return {"vocab_size": len(dataset.vocab), **{split: st.sha256 for split, st in dataset.stats.items()}}


def run_benchmark(config: RunConfig, echo=print, quiet: bool = False) -> RunResult | None:
    """Validate, build the shared data, then fit and score every model (see :class:`Run`).

    Args:
        config: the run.
        echo: where progress lines and the final table go (None: nowhere).
        quiet: no warnings either (otherwise each is one line on stderr, on rank 0 only).

    Under torchrun every process calls this: rank 0 runs the benchmark and returns its result, the
    other ranks help train the neural models (:func:`follow_run`) and return None.
    """
    from ..errors import one_line_warnings
    from ..models.neural.distributed import launched_rank

    echo = echo or _silent
    with one_line_warnings(show=not quiet and launched_rank() == 0), thread_limit(config.threads):
        result = _run_benchmark(config, echo)
    if result is not None:
        _print_summary(result, echo)
    return result


def _silent(*args, **kwargs) -> None:
    """An echo that prints nothing."""


@contextmanager
def thread_limit(threads: int | None) -> Iterator[None]:
    """Within the block, torch (if imported) and the BLAS libraries use ``threads`` CPU threads (None: unchanged)."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    saved = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=threads):
        if torch is not None:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(saved)


def _print_summary(result: RunResult, echo) -> None:
    """The table, the sweep's crossovers and the seed summary, as the command line prints them."""
    if len(result.table):
        echo("")
        echo(format_table(result.table))
    for line in result.config.get("sweep") or []:
        echo(line)
    seeds = result.seeds
    if seeds is not None and len(seeds):
        echo("\nacross seeds (mean, sample standard deviation):")
        echo(seeds[["model", "split", "n_seeds", "ppl_mean", "ppl_std", "ppl_min", "ppl_max"]]
             .to_string(index=False, float_format=lambda x: f"{x:.4f}"))


def _run_benchmark(config: RunConfig, echo) -> RunResult | None:
    with process_group() as world:
        if not world.is_main:
            expected = broadcast_from_main(None)
            if expected is None:
                raise LmbenchError("rank 0 could not start the run; it reports why")
            return follow_run(config, expected, world)
        run = Run(config, echo, world) if not world.distributed else _start_with_followers(config, echo, world)
        return run.execute()
