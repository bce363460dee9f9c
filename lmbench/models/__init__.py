"""Language models: the shared interface and its n-gram and neural implementations."""

from .base import EvalResult, LanguageModel
from .interpolated import AbsoluteDiscount, KneserNey, WittenBell
from .jelinek_mercer import JelinekMercer
from .katz import Katz
from .ngram import MLE, AddK, NGramModel
from .stupid_backoff import StupidBackoff

__all__ = ["EvalResult", "LanguageModel", "NGramModel", "MLE", "AddK", "KneserNey", "WittenBell",
           "AbsoluteDiscount", "Katz", "JelinekMercer", "StupidBackoff"]
