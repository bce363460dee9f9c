"""The Python API: run a benchmark, open a finished run, compute Zipf statistics.

Every function here is what a CLI command calls, so a notebook and the command line give the same
results::

    import lmbench
    result = lmbench.run(models=["bigram-add1", "5gram-kn"], corpus="timemachine", out="results/demo")
    result.table                      # perplexity.csv as a DataFrame
    result.scores("5gram-kn", "test") # per-token log-probabilities, ids and line offsets
    result.model("5gram-kn").score_text("the time traveller")
"""

from __future__ import annotations

from dataclasses import fields

from .errors import LmbenchError, unknown_name_error

#: options given to every model that accepts them, as `lmbench run --epochs/--time-budget/--device` do.
SHARED_OPTIONS = ("epochs", "time_budget", "device", "memory", "precision")


def run(models, corpus: str = "timemachine", *, params: dict | None = None, quiet: bool = False, **options):
    """Fit models on a corpus's train split and score them on its valid and test splits.

    Args:
        models: model labels, a list or a comma-separated string (see ``lmbench models``).
        corpus: a corpus name, ``nltk:...``, a text file or a train/valid/test directory.
        params: per-model parameter overrides, ``{"trigram-addk": {"k": 0.01}}``.
        quiet: print nothing (by default progress lines and the table are printed).
        **options: any :class:`lmbench.runs.runner.RunConfig` field (out, tokenizer, seed, seeds,
            bootstrap, save_models, ...) and epochs, time_budget, device, precision for neural
            models (memory for n-gram tables).

    Returns:
        :class:`lmbench.runs.result.RunResult` of the run directory; None on the ranks other than 0 of
        a script launched with torchrun (they help train the neural models; rank 0 writes the run).
    """
    from .runs.runner import RunConfig, run_benchmark

    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    allowed = {f.name for f in fields(RunConfig)} - {"models", "corpus", "params", "shared_params"}
    for key in options:
        if key not in allowed and key not in SHARED_OPTIONS:
            raise unknown_name_error("option of lmbench.run", key, sorted(allowed | set(SHARED_OPTIONS)))
    shared = {k: options.pop(k) for k in SHARED_OPTIONS if options.get(k) is not None}
    options = {k: v for k, v in options.items() if k not in SHARED_OPTIONS}
    if "split" in options and options["split"] is not None:
        options["split"] = tuple(options["split"])
    config = RunConfig(models=list(models), corpus=corpus, params=dict(params or {}), shared_params=shared, **options)
    return run_benchmark(config, echo=(lambda *a, **k: None) if quiet else print)


def sweep(models, corpus: str = "timemachine", *, fractions=(0.01, 0.03, 0.1, 0.3, 1.0), **options):
    """A data-size sweep: :func:`run` with every model fitted on growing prefixes of the training lines.

    All sizes share the vocabulary of the whole training split and the same valid and test targets.
    The result's ``sweep`` table (sweep.csv) has one row per model, fraction and split, and
    ``config["sweep"]`` says from which size each neural model beats the best n-gram.
    """
    return run(models, corpus, fractions=list(fractions), **options)


def load_run(path):
    """Open a directory written by ``lmbench run`` (see :class:`lmbench.runs.result.RunResult`)."""
    from .runs.result import load_run as _load

    return _load(path)


def zipf(source, **options):
    """Zipf statistics of a corpus name, file or literal text: (fits DataFrame, top-ranks DataFrame).

    Keyword options: tokenizer, normalize, max_n, min_count, top, encoding (as ``lmbench zipf``).
    """
    from .analysis.zipf import zipf_tables

    if not isinstance(source, str) or not source:
        raise LmbenchError("zipf needs a corpus name, a file path or a non-empty text")
    return zipf_tables(source, **options)
