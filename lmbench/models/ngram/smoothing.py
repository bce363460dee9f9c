"""Smoothing strategies: the per-order terms (alpha, gamma) a smoothing method supplies to an n-gram model.

nltk.lm's ``Smoothing.alpha_gamma``, vectorized over windows of n-grams: Chen & Goodman's (1998)
recursion P(w | h) = alpha(h w) + gamma(h) P(w | h'). Tables, storage, forms, checkpoints and the
registry come from :class:`~lmbench.models.ngram.model.SmoothedNGram`; see docs/smoothing.md.
"""

from __future__ import annotations

import warnings

import numpy as np

from .counts import NGramCounts, count_of_counts
from .tables import FORMS

#: strategies by name (:attr:`Smoothing.name`), filled as their classes are defined.
STRATEGIES: dict[str, type] = {}


class Smoothing:
    """Per-order terms (alpha, gamma) of a smoothed n-gram model; subclasses implement :meth:`terms`.

    Constructor arguments are the method's hyperparameters (JSON values: they are saved in
    checkpoints). Fitted hyperparameters are attributes ending in ``_`` listed in ``fitted_keys``;
    they are saved with the counts, so that a loaded model rebuilds the same tables without
    estimating again.
    """

    #: the name a :class:`~lmbench.models.ngram.model.SmoothedNGram` and its checkpoints use for the strategy.
    name: str = ""
    #: whether :meth:`order_counts` reads N1+(. g) (counting on disk then computes it).
    continuation: bool = False
    #: the forms of tables the method defines.
    forms: tuple = FORMS
    #: fitted hyperparameters (attributes) saved in checkpoints.
    fitted_keys: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            STRATEGIES[cls.name] = cls

    def check(self, order: int) -> None:
        """Raise LmbenchError for bad hyperparameters (before any data is read)."""

    def order_counts(self, counts: NGramCounts, k: int, x0: int, x1: int) -> np.ndarray:
        """The counts the terms of order k are made of, for the k-grams x0:x1 (default: raw counts)."""
        return counts.read(counts.counts[k], x0, x1)

    def estimate(self, counts: NGramCounts, valid_ids, eos_id: int) -> None:
        """Set the fitted hyperparameters from the counts (and the validation split, which may be None)."""

    def terms(self, k: int, a: np.ndarray, context: np.ndarray, n_contexts: int) -> tuple[np.ndarray, np.ndarray]:
        """(alpha, gamma) of order k for a window of k-grams holding whole contexts.

        Args:
            k: the order (1: unigrams, one empty context).
            a: :meth:`order_counts` of the window's k-grams.
            context: the context of each k-gram, numbered 0..n_contexts-1 within the window.
            n_contexts: how many contexts (gamma has one entry each; a context without continuations
                must get gamma 1).
        """
        raise NotImplementedError

    def fitted_summary(self) -> dict:
        """Fitted hyperparameters for results and config.json."""
        return {}

    def valid_use(self) -> str:
        """How estimation used the validation split ("" if it did not)."""
        return ""


def counts_of_counts(counts: NGramCounts, smoothing: Smoothing, k: int, max_count: int) -> np.ndarray:
    """n_r for r = 0..max_count of the strategy's counts of order k, in one streaming pass."""
    n = np.zeros(max_count + 1, dtype=np.int64)
    for x0, x1 in counts.item_windows(k):
        n += count_of_counts(smoothing.order_counts(counts, k, x0, x1), max_count)
    return n


def one_line_warning(message: str) -> None:
    """Warn with one line (the CLI prints it as ``lmbench: warning: ...``)."""
    warnings.warn(message, stacklevel=3)


def format_orders(orders: list) -> str:
    return ", ".join(f"{k}-grams" for k in orders)
