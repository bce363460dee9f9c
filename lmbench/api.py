"""The Python API: every command of the CLI is one function here, and these docstrings say what each does.

    import lmbench
    result = lmbench.run(["bigram-add1", "5gram-kn"], corpus="timemachine", out="results/demo")
    result.table                          # perplexity.csv as a DataFrame
    result.scores("5gram-kn", "test")     # per-token log-probabilities, ids and line offsets
    result.model("5gram-kn").score_text("the time traveller")
    result.plot("perplexity")             # the figure, shown inline in a notebook

Importing this module loads nothing heavy; each function imports what it needs when called.
"""

from __future__ import annotations

from .runs.config import Default, option_default

_D = {name: Default(option_default(name)) for name in (
    "corpus", "tokenizer", "normalize", "bpe_vocab_size", "min_freq", "max_vocab", "split", "encoding", "out",
    "overwrite", "resume", "seed", "seeds", "save_models", "save_scores", "bootstrap", "threads")}
_SHARED = Default(None)


def run(models=None, corpus=_D["corpus"], *, params: dict | None = None, config=None,
        tokenizer=_D["tokenizer"], normalize=_D["normalize"], bpe_vocab_size=_D["bpe_vocab_size"],
        min_freq=_D["min_freq"], max_vocab=_D["max_vocab"], split=_D["split"], encoding=_D["encoding"],
        out=_D["out"], overwrite=_D["overwrite"], resume=_D["resume"], seed=_D["seed"], seeds=_D["seeds"],
        save_models=_D["save_models"], save_scores=_D["save_scores"], bootstrap=_D["bootstrap"],
        threads=_D["threads"], epochs=_SHARED, time_budget=_SHARED, device=_SHARED, memory=_SHARED,
        precision=_SHARED, progress: bool = True, verbose: bool = False, quiet: bool = False, fractions=None,
        **misspelled):
    """Fit models on a corpus's train split and score them on exactly the same valid and test tokens.

    Args:
        models: model names, a list or a comma-separated string (``lmbench.list_models()``).
        corpus: a corpus name (``timemachine``, ``ptb``, ``wikitext-2``), ``nltk:NAME``, ``hf:NAME[/CONFIG]``,
            a text file or a folder with train/valid/test files (a str or pathlib.Path).
        params: per-model parameter overrides, ``{"trigram-addk": {"k": 0.01}}`` (``--set`` on the command line).
        config: a TOML suite file; its ``[run]`` values apply to the options not given here.
        tokenizer: "word", "char" or "bpe"; None: the corpus's own.
        normalize: "none", "lower" or "d2l"; None: the corpus's own.
        bpe_vocab_size: subwords learned with tokenizer "bpe" (None: 8000).
        min_freq, max_vocab: the vocabulary's minimum training count and cap (``<unk>`` and end of line included).
        split: train/valid/test fractions of a corpus that is one text (None: 0.8, 0.1, 0.1).
        encoding: text encoding of corpus files.
        out: the run directory (None: ``results/<corpus>-<time>``).
        overwrite: replace an earlier run in ``out`` once this run completes.
        resume: keep the models of an earlier run in ``out`` whose configuration and data are unchanged.
        seed, seeds: the seed set before each fit; several seeds fit every neural model once per seed.
        save_models, save_scores: keep checkpoints and per-token scores in the run directory.
        bootstrap: resamples of the paired bootstrap over lines (0: no intervals or comparisons).
        threads: CPU threads of torch and BLAS (None: their defaults).
        epochs, time_budget, device, memory, precision: given to every model that takes them (neural
            training epochs, the seconds a whole fit may take, "auto"/"cpu"/"cuda"/"mps", the n-gram
            memory budget such as "4G", "float32"/"tf32"/"bfloat16").
        progress: progress bars while training and scoring (in a notebook or a terminal).
        verbose: print what the command line prints (progress lines, the table).
        quiet: show nothing, warnings included.
        fractions: a data-size sweep (see :func:`sweep`).
        misspelled: any other keyword is an error that names the closest option.

    Returns:
        :class:`lmbench.runs.result.RunResult` of the run directory (``.table``, ``.scores()``,
        ``.model()``, ``.plot()``, ...); None on the ranks other than 0 of a torchrun launch.
    """
    from .runs.config import build_config
    from .runs.runner import run_benchmark

    if misspelled:
        from inspect import signature

        from .errors import unknown_name_error

        known = [p for p in signature(run).parameters if p != "misspelled"]
        raise unknown_name_error("option of lmbench.run", next(iter(misspelled)), known)
    options = dict(models=models, corpus=corpus, tokenizer=tokenizer, normalize=normalize,
                   bpe_vocab_size=bpe_vocab_size, min_freq=min_freq, max_vocab=max_vocab, split=split,
                   encoding=encoding, out=out, overwrite=overwrite, resume=resume, seed=seed, seeds=seeds,
                   save_models=save_models, save_scores=save_scores, bootstrap=bootstrap, threads=threads,
                   epochs=epochs, time_budget=time_budget, device=device, memory=memory, precision=precision,
                   fractions=fractions)
    if not progress or quiet:
        options["progress"] = False
    if models is None:
        options.pop("models")
    run_config = build_config(options, config, params)
    return run_benchmark(run_config, echo=_print_escaped if verbose and not quiet else None, quiet=quiet)


def _print_escaped(line: str) -> None:
    """``print``, with what stdout's encoding lacks (the undecodable bytes of a file name) as backslash escapes."""
    import sys

    try:
        print(line)
    except UnicodeEncodeError:
        encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
        print(line.encode(encoding, "backslashreplace").decode(encoding))


def sweep(models=None, corpus=_D["corpus"], *, fractions=(0.01, 0.03, 0.1, 0.3, 1.0), params: dict | None = None,
          config=None, tokenizer=_D["tokenizer"], normalize=_D["normalize"], bpe_vocab_size=_D["bpe_vocab_size"],
          min_freq=_D["min_freq"], max_vocab=_D["max_vocab"], split=_D["split"], encoding=_D["encoding"],
          out=_D["out"], overwrite=_D["overwrite"], resume=_D["resume"], seed=_D["seed"], seeds=_D["seeds"],
          save_models=_D["save_models"], save_scores=_D["save_scores"], bootstrap=_D["bootstrap"],
          threads=_D["threads"], epochs=_SHARED, time_budget=_SHARED, device=_SHARED, memory=_SHARED,
          precision=_SHARED, progress: bool = True, verbose: bool = False, quiet: bool = False, **misspelled):
    """A data-size sweep: every model fitted on the first ``fractions`` of the training lines.

    All sizes share the vocabulary of the whole training split and the same valid and test targets.
    The result's ``sweep`` table (sweep.csv) has one row per model, fraction and split; an infeasible
    point (a training prefix too short for a model) is a row with its reason, and the sweep goes on.

    Args:
        fractions: fractions of the training lines, each in (0, 1] (labels ``MODEL@FRACTION``).
        models, corpus, params, config, tokenizer, normalize, bpe_vocab_size, min_freq, max_vocab, split,
            encoding, out, overwrite, resume, seed, seeds, save_models, save_scores, bootstrap, threads,
            epochs, time_budget, device, memory, precision, progress, verbose, quiet: as for :func:`run`.
        misspelled: any other keyword is an error that names the closest option.

    Returns:
        :class:`lmbench.runs.result.RunResult`, with ``.sweep`` (sweep.csv) and ``.plot("sweep")``.
    """
    options = {k: v for k, v in locals().items() if k not in ("fractions", "misspelled")}
    if misspelled:
        from inspect import signature

        from .errors import unknown_name_error

        known = [p for p in signature(sweep).parameters if p != "misspelled"]
        raise unknown_name_error("option of lmbench.sweep", next(iter(misspelled)), known)
    try:
        fractions = fractions if isinstance(fractions, str) else list(fractions)
    except TypeError:
        pass  # not a sequence: the run's checks say what fractions= needs
    return run(**options, fractions=fractions)


def load_run(path):
    """Open a directory written by :func:`run` (a :class:`lmbench.runs.result.RunResult`)."""
    from .runs.result import load_run as _load

    return _load(path)


def compare(*paths, allow_different_data: bool = False, bootstrap: int = 1000, seed: int = 0, out=None):
    """One table of several runs; models of runs over identical data are compared with the paired bootstrap.

    Args:
        paths: run directories.
        allow_different_data: list runs over different data in separate groups instead of refusing.
        bootstrap: resamples (0: no intervals or comparisons).
        seed: the bootstrap's seed.
        out: also write the merged perplexity.csv and compare.csv into this new directory.

    Returns:
        :class:`lmbench.runs.compare.ComparedRuns` (``.table``, ``.compare``, ``.n_groups``).
    """
    from .runs.compare import compare_runs, write_compared

    merged = compare_runs(list(paths), allow_different_data=allow_different_data, n_resamples=bootstrap, seed=seed)
    if out is not None:
        write_compared(out, merged)
    return merged


def zipf(source, *, tokenizer: str | None = None, normalize: str | None = None, max_n: int = 3,
         min_count: int = 10, top: int = 20, encoding: str = "utf-8", out=None):
    """Rank-frequency statistics and Zipf fits of a corpus name, a file or a literal text.

    Args:
        source: anything ``corpus`` of :func:`run` takes (all splits are used), or a text string.
        tokenizer, normalize: as for :func:`run` (default: the corpus's own; "word" and "none" for a text).
        max_n: count 1..max_n-grams.
        min_count: the lowest count the least-squares fit uses (the hapax tail is left out).
        top: n-grams per n in ``.top`` (and zipf_ranks.csv).
        encoding: text encoding of corpus files.
        out: also write zipf.csv, zipf_ranks.csv and zipf.png into this directory (True:
            ``results/<name>-zipf``).

    Returns:
        :class:`lmbench.analysis.zipf.ZipfTables`: ``.fits`` (one row per n), ``.ranks`` (every n-gram:
        n, rank, count, ngram: plot it on log-log axes), ``.top`` (the ``top`` first of each n).
    """
    from .runs.zipf import zipf_run

    return zipf_run(source, tokenizer=tokenizer, normalize=normalize, max_n=max_n, min_count=min_count, top=top,
                    encoding=encoding, out=out)


def score(run, model: str, text: str | None = None, *, file=None, encoding: str = "utf-8"):
    """Score new text with a saved model of a run, as KenLM's ``query`` does.

    Args:
        run: the run directory.
        model: a model label of that run.
        text: the text (lines separated by newlines); or instead
        file: a text file to read (``"-"``: standard input), in ``encoding``.

    Returns:
        :class:`lmbench.scoring.text.TextScores` (``.lines()``, ``.per_token()``, ``.summary()``, ...).
    """
    from .errors import LmbenchError
    from .scoring.text import read_text_source

    scorer = load_run(run).model(model)
    if (text is None) == (file is None):
        raise LmbenchError("score() takes the text to score or a file=, one of them")
    return scorer.score_text(text if file is None else read_text_source(file, encoding))


def generate(run, model: str, prefix: str = "", length: int = 100, *, temperature: float = 1.0,
             top_k: int | None = None, greedy: bool = False, seed: int = 0) -> str:
    """Continue a text prefix with a saved model of a run (d2l's warm-up prefix); returns prefix + continuation."""
    return load_run(run).generate(model, prefix, length, temperature=temperature, top_k=top_k, greedy=greedy,
                                  seed=seed)


def export(run, model: str, path) -> None:
    """Write a saved n-gram model of a run as an ARPA file for KenLM and SRILM (``.gz``: compressed)."""
    from .models.ngram.arpa import write_arpa
    from .runs.config import check_path

    write_arpa(load_run(run).model(model).model, check_path("path", path))


def list_models(long: bool = False) -> str:
    """The model registry as text: names, descriptions, parameters (and with ``long`` the papers)."""
    from .models.registry import format_models

    return format_models(long=long)


def list_corpora():
    """The named and NLTK corpora: where each is found and the token counts a run reports (two DataFrames)."""
    import pandas as pd

    from .data.corpora import describe_corpora, describe_nltk_corpora

    return pd.DataFrame(describe_corpora()), pd.DataFrame(describe_nltk_corpora())
