"""lmbench: compare n-gram and neural language models on identical data, honestly and fast.

The Python API (importing it is cheap: nothing heavy is loaded until a function is called)::

    lmbench.run(models=[...], corpus=...)        -> RunResult (.table, .scores(), .model(), .plot(), .out_dir)
    lmbench.sweep(models=[...], fractions=[...])  -> RunResult with .sweep (data-size sweep)
    lmbench.load_run(DIR)                         -> RunResult of a finished run
    lmbench.compare(DIR, DIR, ...)                -> merged table and pairwise comparisons
    lmbench.zipf(corpus_or_text)                  -> fits and every n-gram's rank and count
    lmbench.score / generate / export             -> what `lmbench score/generate/export` do
    lmbench.Tokenizer, lmbench.TextModel          -> text in and out of a model's token ids
"""

from .version import __version__  # noqa: E402
from .api import compare, export, generate, list_corpora, list_models, load_run, run, score, sweep, zipf  # noqa: E402

__all__ = ["run", "sweep", "load_run", "compare", "zipf", "score", "generate", "export", "list_models",
           "list_corpora", "Tokenizer", "TextModel", "__version__"]


def __getattr__(name):
    if name == "Tokenizer":
        from .data.tokenizers import Tokenizer

        return Tokenizer
    if name == "TextModel":
        from .scoring.text import TextModel

        return TextModel
    raise AttributeError(f"module 'lmbench' has no attribute {name!r}")


def __dir__():
    """The names tab completion offers, the lazily imported Tokenizer and TextModel included."""
    return sorted(set(globals()) | set(__all__))
