"""Language models over token ids: the shared interface, the n-gram and neural families, the registry.

Importing this package loads nothing heavy; each name below is imported on first use.
"""

import importlib

_EXPORTS = {
    "LanguageModel": ".base", "EvalResult": "..scoring.metrics", "NGramModel": ".ngram.mle", "MLE": ".ngram.mle",
    "AddK": ".ngram.mle", "KneserNey": ".ngram.interpolated", "WittenBell": ".ngram.interpolated",
    "AbsoluteDiscount": ".ngram.interpolated", "Katz": ".ngram.katz", "JelinekMercer": ".ngram.jelinek_mercer",
    "StupidBackoff": ".ngram.stupid_backoff", "SmoothedNGram": ".ngram.model", "Smoothing": ".ngram.smoothing",
    "TorchLM": ".neural.shell", "RecurrentLM": ".neural.recurrent", "TransformerLM": ".neural.transformer",
    "MixtureLM": ".mixture", "PretrainedLM": ".pretrained", "load_model": ".checkpoint", "save_model": ".checkpoint",
}
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
