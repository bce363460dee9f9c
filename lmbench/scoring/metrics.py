"""Corpus-level scores from per-token log-probabilities: NLL, cross-entropy, bits, perplexity (one of each).

Perplexity is exp(total NLL in nats / N), never a mean of per-sentence perplexities; a token given
probability zero makes it infinite and is counted; NaN (a numerical failure) is kept apart from zero.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

LN2 = math.log(2.0)
#: the largest x whose exp is a finite float64 (to the precision that matters for a perplexity).
MAX_EXP = 709.78


def exp_or_inf(x):
    """exp(x) of a cross-entropy in nats that overflows to inf (never OverflowError); NaN stays NaN.

    A scalar gives a Python float (``math.exp``), an array an array (``np.exp``, elementwise).
    """
    if np.ndim(x) == 0:
        x = float(x)
        if math.isnan(x):
            return math.nan
        return math.inf if x >= MAX_EXP else math.exp(x)
    with np.errstate(over="ignore"):
        return np.exp(np.asarray(x, dtype=np.float64))


@dataclass(frozen=True)
class EvalResult:
    """Corpus-level scores of one model on one split.

    ``n_zero_prob`` counts tokens given probability zero (they make ``nll_nats`` and the perplexity
    infinite), ``n_nan`` tokens whose log-probability was NaN (they make the total NaN).
    """

    n_tokens: int
    nll_nats: float
    n_zero_prob: int
    n_nan: int = 0

    @property
    def cross_entropy_nats(self) -> float:
        return self.nll_nats / self.n_tokens

    @property
    def bits_per_token(self) -> float:
        return self.cross_entropy_nats / LN2

    @property
    def perplexity(self) -> float:
        return exp_or_inf(self.cross_entropy_nats)

    def bits_per_byte(self, n_bytes: int) -> float:
        """Total NLL in bits over the bytes of the text scored (comparable across tokenizations)."""
        return self.nll_nats / (LN2 * n_bytes)

    def as_dict(self) -> dict:
        return {**asdict(self), "cross_entropy_nats": self.cross_entropy_nats,
                "bits_per_token": self.bits_per_token, "perplexity": self.perplexity}


def eval_result(logprobs: np.ndarray) -> EvalResult:
    """Summarize per-token natural-log probabilities (``-inf``: probability zero; NaN: not a probability)."""
    logprobs = np.asarray(logprobs, dtype=np.float64)
    n_nan = int(np.isnan(logprobs).sum())
    n_zero = int(np.isneginf(logprobs).sum())
    nll = math.nan if n_nan else math.inf if n_zero else float(-logprobs.sum())
    return EvalResult(n_tokens=int(logprobs.size), nll_nats=nll, n_zero_prob=n_zero, n_nan=n_nan)
