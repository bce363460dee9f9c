"""Tokenizers: whitespace words or Unicode characters, with optional normalization.

Every line of text becomes its tokens followed by one end-of-line token, which models predict like
any other token. The end of line is structural: :func:`lmbench.data.encode_lines` inserts its id
after each line, and it is never recognized by spelling. Its display form is ``</s>`` for words
and ``\\n`` for characters, but a word spelled ``</s>`` (or ``<s>``) inside a line is an ordinary
word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .errors import LmbenchError

EOS_WORD = "</s>"
EOS_CHAR = "\n"
TOKENIZERS = ("word", "char")
NORMALIZATIONS = ("none", "lower", "d2l")

# d2l replaces every run of non-letters by one space ([^A-Za-z]+). Letters here are Unicode letters,
# which is identical on ASCII text and keeps Chinese, Greek, accented Latin, ... intact.
_NON_LETTERS = re.compile(r"[\W\d_]+")


@dataclass(frozen=True)
class Tokenizer:
    """Turn lines of text into token lists.

    Args:
        kind: "word" (split on whitespace) or "char" (one token per Unicode code point).
        normalize: "none"; "lower" (lower-case); "d2l" (lower-case, every run of non-letters becomes
            one space, leading and trailing spaces stripped, as in Dive into Deep Learning).
    """

    kind: str = "word"
    normalize: str = "none"

    def __post_init__(self):
        if self.kind not in TOKENIZERS:
            raise LmbenchError(f"unknown tokenizer {self.kind!r}; use one of: {', '.join(TOKENIZERS)}")
        if self.normalize not in NORMALIZATIONS:
            raise LmbenchError(f"unknown normalization {self.normalize!r}; use one of: {', '.join(NORMALIZATIONS)}")

    @property
    def eos(self) -> str:
        """How the end-of-line token is displayed (never used to recognize it)."""
        return EOS_CHAR if self.kind == "char" else EOS_WORD

    def normalize_line(self, line: str) -> str:
        """Apply the normalization to one line (without its newline)."""
        if self.normalize == "lower":
            return line.lower()
        if self.normalize == "d2l":
            return _NON_LETTERS.sub(" ", line).strip().lower()
        return line

    def tokenize_line(self, line: str) -> list[str]:
        """Tokens of one line, without the end-of-line token."""
        line = self.normalize_line(line)
        return list(line) if self.kind == "char" else line.split()

    def split_normalized(self, normalized: list[str]) -> tuple[list[str], np.ndarray]:
        """Tokens of lines already passed through :meth:`normalize_line`, without line ends.

        Returns:
            (the tokens of all lines, flat; tokens per line (n_lines,) int64). The line ends are
            not in the list: they are structural, inserted by :func:`lmbench.data.encode_lines`.
        """
        if self.kind == "char":
            lengths = np.fromiter(map(len, normalized), dtype=np.int64, count=len(normalized))
            return list("".join(normalized)), lengths
        tokens: list[str] = []
        ends = []
        for line in normalized:                     # one split per line; the tokens are copied in C
            tokens.extend(line.split())
            ends.append(len(tokens))
        return tokens, np.diff(np.array(ends, dtype=np.int64), prepend=0)

    def tokenize(self, lines: list[str]) -> list[str]:
        """Flat token list for many lines, each line followed by the end-of-line display token.

        For display and counting only: in this list a literal ``</s>`` cannot be told from a line
        end, so never encode it; encode text with :func:`lmbench.data.encode_lines`.
        """
        tokens: list[str] = []
        eos = self.eos
        for line in lines:
            tokens.extend(self.tokenize_line(line))
            tokens.append(eos)
        return tokens

    def detokenize(self, tokens: list[str]) -> str:
        """Join display tokens back into text (``</s>`` and ``\\n`` become newlines; display only)."""
        if self.kind == "char":
            return "".join(tokens)
        out = []
        for tok in tokens:
            out.append("\n" if tok == EOS_WORD else tok + " ")
        return "".join(out).replace(" \n", "\n")
