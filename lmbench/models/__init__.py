"""Language models: the shared interface and its n-gram and neural implementations."""

from .base import EvalResult, LanguageModel
from .ngram import MLE, AddK, NGramModel

__all__ = ["EvalResult", "LanguageModel", "NGramModel", "MLE", "AddK"]
