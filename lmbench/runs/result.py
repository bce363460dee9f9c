"""A run directory as a Python object: its table, per-token scores, analysis tables and models.

``lmbench.run(...)`` returns a :class:`RunResult` and ``lmbench.load_run(DIR)`` opens one written
earlier; the CLI's ``generate``, ``export``, ``score`` and ``compare`` read runs through it too.
Everything is read lazily and checked: a missing, corrupt or foreign ``config.json`` is a one-line
error, never a traceback.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

from ..errors import LmbenchError, unknown_name_error
from . import files


class RunResult:
    """The results of one run, read from its directory.

    Args:
        out_dir: the directory ``lmbench run`` wrote.

    Attributes:
        out_dir: that directory.
    """

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)

    def __repr__(self) -> str:
        return f"RunResult({str(self.out_dir)!r}, models={self.models}, status={self.status!r})"

    # ------------------------------------------------------------ what the run recorded

    @cached_property
    def config(self) -> dict:
        """config.json: options, versions, data fingerprints, each model's parameters and files."""
        path = self.out_dir / files.CONFIG
        if not self.out_dir.is_dir():
            raise LmbenchError(f"no lmbench run at {self.out_dir} (not a directory); pass the directory `lmbench run` wrote")
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LmbenchError(f"no lmbench run at {self.out_dir} (config.json not found); "
                               f"pass the directory `lmbench run` wrote") from None
        except (OSError, ValueError):
            raise LmbenchError(f"{path} is not valid JSON; is this an lmbench run directory?") from None
        _check_config(config, path)
        return config

    @property
    def status(self) -> str:
        return self.config.get("status", "unknown")

    @property
    def models(self) -> list[str]:
        """Labels of the run's models, in run order."""
        return list(self.config["models"])

    @property
    def failures(self) -> dict:
        """label -> error message of every model that failed."""
        return {m: i.get("error", "") for m, i in self.config["models"].items() if i.get("status") == "failed"}

    @property
    def table(self):
        """perplexity.csv as a pandas DataFrame (empty if no model finished)."""
        import pandas as pd

        from .table import COLUMNS

        path = self.out_dir / files.PERPLEXITY_CSV
        if not path.exists():
            return pd.DataFrame(columns=COLUMNS)
        return _read_csv(path)

    @property
    def compare(self):
        """compare.csv (every pair of models per split), or None if the run has none."""
        return self._optional_csv(files.COMPARE_CSV)

    @property
    def buckets(self):
        """buckets.csv (perplexity by training frequency of the target), or None."""
        return self._optional_csv(files.BUCKETS_CSV)

    @property
    def seeds(self):
        """seeds.csv (mean and spread across seeds), or None."""
        return self._optional_csv(files.SEEDS_CSV)

    @property
    def sweep(self):
        """sweep.csv of a data-size sweep (model, family, fraction, train_tokens, split, perplexity, ...), or None."""
        return self._optional_csv(files.SWEEP_CSV)

    @property
    def results(self) -> dict | None:
        """results.json (every model's figures and the comparisons, for programs), or None for a run without one."""
        path = self.out_dir / files.RESULTS_JSON
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise LmbenchError(f"{path} is not valid JSON; it is damaged: re-run the run that wrote it") from None

    #: what :meth:`plot` draws.
    PLOTS = ("perplexity", "curves", "buckets", "sweep", "cost")

    def plot(self, kind: str = "perplexity"):
        """One of the run's figures as a matplotlib Figure (a notebook shows it inline).

        Args:
            kind: "perplexity" (held-out perplexity with intervals), "curves" (learning curves of the
                neural models), "buckets" (perplexity by training frequency of the target), "sweep"
                (test perplexity against training size, for a sweep), "cost" (bits per byte against
                model size and fit time).
        """
        from ..report import plots
        from .summarize import reference_lines

        if kind not in self.PLOTS:
            raise unknown_name_error("plot", str(kind), list(self.PLOTS))
        name = self.config["data"]["name"]
        table = self.table
        if kind == "perplexity":
            return plots.perplexity_figure(table, f"{name}: held-out perplexity (95% bootstrap intervals)")
        if kind == "cost":
            return plots.cost_figure(table, f"{name}: test bits per byte against cost")
        if kind == "curves":
            curves = self.curves()
            if not curves:
                raise LmbenchError(f"{self.out_dir} has no learning curves (no model of the run is trained iteratively)")
            return plots.curves_figure(curves, f"{name}: learning curves", references=reference_lines(table, curves))
        frame = self.buckets if kind == "buckets" else self.sweep
        if frame is None:
            raise LmbenchError(f"{self.out_dir} has no {kind} table"
                               + (" (not a data-size sweep)" if kind == "sweep" else ""))
        if kind == "buckets":
            return plots.buckets_figure(frame, f"{name}: perplexity by training frequency of the target")
        return plots.sweep_figure(frame, f"{name}: test perplexity by training size")

    def curves(self) -> dict:
        """label -> learning curve (a DataFrame per neural model: epoch, train_ppl, valid_ppl, ...)."""
        return {label: _read_csv(self.out_dir / info["curve"]) for label, info in self.config["models"].items()
                if info.get("curve") and (self.out_dir / info["curve"]).exists()}

    def _optional_csv(self, name: str):
        path = self.out_dir / name
        return _read_csv(path) if path.exists() else None

    @cached_property
    def tokenizer(self):
        """The run's tokenizer (same tokenization and normalization as its models saw)."""
        from ..data.tokenizers import Tokenizer

        try:
            return Tokenizer(**self.config["data"]["tokenizer"])
        except (KeyError, TypeError):
            raise LmbenchError(f"{self.out_dir}/config.json does not describe a tokenizer; "
                               f"is this an lmbench run directory?") from None

    @property
    def split_fingerprints(self) -> dict:
        """split -> sha256 of its token ids: runs whose fingerprints agree scored identical targets."""
        return {name: info.get("sha256") for name, info in self.config["data"].get("splits", {}).items()}

    # ------------------------------------------------------------ per-token scores and models

    def scores(self, model: str, split: str = "test"):
        """Per-token log-probabilities of a model on a held-out split.

        Returns:
            :class:`lmbench.scoring.tokens.TokenScores` with ``logprobs`` (float64, N), ``ids`` (N)
            and ``line_offsets`` (L+1); ``-scores.logprobs.sum()`` equals the table's ``nll_nats``.
        """
        from ..scoring.tokens import read_scores

        info = self._model_info(model)
        if not info.get("scores"):
            raise LmbenchError(f"{model} of {self.out_dir} has no saved scores (run without --no-save-scores)")
        targets = self.out_dir / files.SCORES_DIR / files.TARGETS_NPZ
        scores = self.out_dir / files.SCORES_DIR / Path(info["scores"]).name
        self._check_bound(targets, self.config.get("targets_sha256"))
        self._check_bound(scores, info.get("scores_sha256"))
        return read_scores(targets, scores, split)

    def _check_bound(self, path: Path, sha256: str | None) -> None:
        """Refuse a file that is not the one this run wrote (its sha256, recorded in config.json, differs).

        Every file is read once for it, large checkpoints too (a second sequential read beside their
        CRC-32 check). Runs of lmbench 0.2 recorded no checksums and are not checked.
        """
        from ..files import sha256_of

        if sha256 is None or not path.is_file():
            return
        if sha256_of(path) != sha256:
            raise LmbenchError(f"{path} is not the file this run wrote (its sha256 differs from the one in "
                               f"config.json): it was replaced or damaged; re-run the run that wrote it")

    def model(self, name: str):
        """A saved model of the run with the run's tokenizer (:class:`lmbench.scoring.text.TextModel`).

        Text in and out (``score_text``, ``score``/``logscore``, ``generate``) and everything of the
        model itself (``logprobs``, ``n_params``, ...); the bare model is its ``.model``.
        """
        from ..scoring.text import TextModel

        saved = self.config["models"].get(name, {}).get("checkpoint") if isinstance(name, str) else None
        if not saved and isinstance(name, str) and name.startswith("hf:"):
            return TextModel(self._pretrained(name), self.tokenizer)  # any pretrained LM, on the run's text
        return TextModel(self._load_model(name), self.tokenizer)

    def _pretrained(self, name: str):
        """A pretrained causal LM named ``hf:...``, loaded to read text normalized as this run does."""
        from ..data.vocab import Vocabulary
        from ..models.registry import resolve

        model = resolve(name).build()
        model.label = name
        return model.fit(None, None, vocab=Vocabulary(["<unk>", self.tokenizer.eos]))

    def generate(self, model: str, prefix: str = "", length: int = 100, **options) -> str:
        """Continue a text prefix with a model of the run (see :meth:`lmbench.scoring.text.TextModel.generate`)."""
        return self.model(model).generate(prefix, length, **options)

    def _load_model(self, name: str):
        """The bare model of a label, with the models it is built from attached (a mixture's components)."""
        from ..models.checkpoint import load_model

        info = self._model_info(name)
        if not info.get("checkpoint"):
            raise LmbenchError(f"{name} of {self.out_dir} has no saved model (runs made with --no-save-models "
                               f"keep none, and failed models have none)")
        path = self.out_dir / info["checkpoint"]
        self._check_bound(path, info.get("checkpoint_sha256"))
        model = load_model(path)
        model.label = name
        needs = model.requires()
        if needs:  # e.g. a mixture: load the models it is built from
            labels = info.get("requires") or needs
            model.attach({need: self._load_model(label) for need, label in zip(needs, labels)})
        return model

    def _model_info(self, name: str) -> dict:
        models = self.config["models"]
        if name not in models:
            raise unknown_name_error(f"model of the run {self.out_dir}", name, list(models) or ["(none)"])
        return models[name]


def _check_config(config, path: Path) -> None:
    """A config.json must be an object with the keys lmbench writes."""
    if not isinstance(config, dict) or "lmbench_version" not in config:
        raise LmbenchError(f"{path} was not written by lmbench; pass a directory made by `lmbench run`")
    if not isinstance(config.get("models"), dict) or not isinstance(config.get("data"), dict):
        raise LmbenchError(f"{path} is damaged (no models or data section); re-run the benchmark")
    for label, info in config["models"].items():
        if not isinstance(info, dict):
            raise LmbenchError(f"{path} is damaged (model {label!r} is not described); re-run the benchmark")


def _read_csv(path: Path):
    import pandas as pd

    try:
        return pd.read_csv(path, keep_default_na=False, na_values=["", "nan", "NaN"])
    except (OSError, ValueError) as exc:
        raise LmbenchError(f"cannot read {path} ({exc}); it is damaged") from None


def load_run(path: str | Path) -> RunResult:
    """Open a run directory written by ``lmbench run`` (see :class:`RunResult`)."""
    result = RunResult(path)
    result.config  # noqa: B018  (validate now: a wrong path fails here, not later)
    return result
