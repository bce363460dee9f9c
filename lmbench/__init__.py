"""lmbench: compare n-gram and neural language models on identical data, honestly and fast.

The Python API (importing it is cheap: nothing heavy is loaded until a function is called)::

    lmbench.run(models=[...], corpus=..., **options)  -> RunResult (.table, .scores(), .model(), .out_dir)
    lmbench.sweep(models=[...], fractions=[...])      -> RunResult with .sweep (data-size sweep)
    lmbench.load_run(DIR)                             -> RunResult of a finished run
    lmbench.compare(DIR, DIR, ...)                    -> merged table and pairwise comparisons
    lmbench.zipf(path_or_text)                        -> (fits, top ranks) DataFrames
"""

__version__ = "0.2.0"


def run(models, corpus="timemachine", **options):
    """Fit and score models on shared splits; see :func:`lmbench.api.run`."""
    from .api import run as _run

    return _run(models, corpus, **options)


def sweep(models, corpus="timemachine", **options):
    """Data-size sweep (fractions of the training lines, shared vocabulary); see :func:`lmbench.api.sweep`."""
    from .api import sweep as _sweep

    return _sweep(models, corpus, **options)


def load_run(path):
    """Open a finished run directory; see :func:`lmbench.api.load_run`."""
    from .api import load_run as _load_run

    return _load_run(path)


def compare(*paths, allow_different_data=False, bootstrap=1000, seed=0):
    """Merge runs over identical data and compare their models; see :func:`lmbench.runs.compare.compare_runs`."""
    from .runs.compare import compare_runs

    return compare_runs(list(paths), allow_different_data=allow_different_data, n_resamples=bootstrap, seed=seed)


def zipf(source, **options):
    """Rank-frequency statistics and Zipf fits; see :func:`lmbench.api.zipf`."""
    from .api import zipf as _zipf

    return _zipf(source, **options)
