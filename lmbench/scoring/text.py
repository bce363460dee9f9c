"""Scoring new text with a fitted model, as KenLM's ``query`` does: per line, per token, and in total.

The text is tokenized with the run's tokenizer and encoded with the model's vocabulary (unknown
tokens become ``<unk>`` and are counted as OOV), then scored exactly as a held-out split is: n-gram
models restart their context at every line, neural models read the text as one stream.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

from ..data.dataset import encode_lines
from ..errors import LmbenchError

LN10 = math.log(10.0)


@dataclass(frozen=True)
class TextScores:
    """Scores of a text.

    Attributes:
        tokens: every scored token as text (end-of-line tokens included), (N,).
        ids: their vocabulary ids (N,).
        logprobs: natural-log probability of each (N,), ``-inf`` for probability zero.
        oov: whether each token was out of the vocabulary (scored as ``<unk>``) (N,).
        line_offsets: (L+1,), line i is tokens offsets[i]:offsets[i+1].
    """

    tokens: list
    ids: np.ndarray
    logprobs: np.ndarray
    oov: np.ndarray
    line_offsets: np.ndarray

    @property
    def n_tokens(self) -> int:
        return int(self.ids.size)

    @property
    def nll_nats(self) -> float:
        return float(-self.logprobs.sum())

    @property
    def perplexity(self) -> float:
        """exp(NLL / N) over every token, OOV tokens scored as ``<unk>`` (KenLM: "including OOVs")."""
        from ..models.base import exp_or_inf

        return exp_or_inf(self.nll_nats / self.n_tokens) if self.n_tokens else math.nan

    @property
    def perplexity_without_oov(self) -> float:
        """exp(NLL / N) over in-vocabulary tokens only (KenLM: "excluding OOVs")."""
        from ..models.base import exp_or_inf

        kept = self.logprobs[~self.oov]
        return exp_or_inf(float(-kept.sum()) / kept.size) if kept.size else math.nan

    def lines(self):
        """One row per line: ln and log10 probability, token count and OOV count (a pandas DataFrame)."""
        import pandas as pd

        from .lines import line_sums

        ln = line_sums(self.logprobs, self.line_offsets)
        return pd.DataFrame({"line": np.arange(1, ln.size + 1), "log10_prob": ln / LN10, "ln_prob": ln,
                             "n_tokens": np.diff(self.line_offsets),
                             "n_oov": line_sums(self.oov.astype(np.float64), self.line_offsets).astype(np.int64)})

    def per_token(self):
        """One row per token: line, token, id, ln and log10 probability, OOV flag (a pandas DataFrame)."""
        import pandas as pd

        line = np.repeat(np.arange(1, self.line_offsets.size), np.diff(self.line_offsets))
        return pd.DataFrame({"line": line, "token": self.tokens, "id": self.ids, "ln_prob": self.logprobs,
                             "log10_prob": self.logprobs / LN10, "oov": self.oov})


def read_stdin_bytes(limit: int = 1 << 30) -> bytes:
    """Standard input as bytes (for ``lmbench score -``): at most ``limit`` bytes, text only."""
    data = sys.stdin.buffer.read(limit + 1)
    if len(data) > limit:
        raise LmbenchError(f"standard input is larger than {limit >> 20} MiB; score a file instead")
    if not data.strip():
        raise LmbenchError("standard input is empty; pipe text in or give a FILE")
    if b"\x00" in data[:8192]:
        raise LmbenchError("standard input looks binary (it contains NUL bytes); give plain text")
    return data


def score_lines(model, tokenizer, lines: list[str]) -> TextScores:
    """Score lines of text with a fitted model and the tokenizer of its run."""
    if not lines:
        raise LmbenchError("the text to score is empty; give at least one line")
    vocab = model.vocab_
    ids, _ = encode_lines(lines, tokenizer, vocab)
    per_line = [tokenizer.tokenize_line(line) + [tokenizer.eos] for line in lines]
    tokens = [tok for toks in per_line for tok in toks]
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in per_line])]).astype(np.int64)
    import pandas as pd

    known = pd.Index(list(vocab.stoi)).get_indexer(tokens) >= 0  # one hashed lookup for all tokens
    oov = (ids == vocab.unk_id) & ~known
    oov[offsets[1:] - 1] = False  # end-of-line tokens are never OOV
    logprobs = np.asarray(model.logprobs(ids), dtype=np.float64)
    return TextScores(tokens, ids, logprobs, oov, offsets)


def score_text(model, tokenizer, text: str) -> TextScores:
    """Score a text (lines separated by newlines; a final newline does not add an empty line)."""
    from ..data.corpora import text_lines

    return score_lines(model, tokenizer, text_lines(text.replace("\r\n", "\n")))
