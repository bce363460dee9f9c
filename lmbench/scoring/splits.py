"""What scoring a held-out split (:class:`lmbench.data.dataset.HeldOut`) gives back, per unit and per line.

Models over the run's vocabulary score the split's ids; a model with its own tokenizer (a pretrained
LM) scores the same lines of text with its own tokens. Either way the result carries per-line sums,
so the paired bootstrap can resample the same lines for every model of a run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SplitScores:
    """A model's natural-log probabilities on a split, per scored unit, with the lines they belong to.

    Attributes:
        logprobs: float64 (M,), one per unit: the run's tokens (M = N) or the model's own tokens.
        line_offsets: (L+1,) the units of line i are ``logprobs[line_offsets[i]:line_offsets[i+1]]``.
        own_tokens: True when the units are the model's own tokens, not the run's (its per-token
            perplexity is over its own tokens and is not comparable with the run's; bits per byte is).
    """

    logprobs: np.ndarray
    line_offsets: np.ndarray
    own_tokens: bool = False

    def line_nll_nats(self) -> np.ndarray:
        """Negative log-likelihood of every line (L,), ``inf`` where a line holds a probability zero."""
        from .lines import line_sums

        return -line_sums(self.logprobs, self.line_offsets)
