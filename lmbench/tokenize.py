"""Tokenizers: whitespace words or Unicode characters, with optional normalization.

Every line of text becomes its tokens followed by one end-of-line token, which models predict like
any other token: ``</s>`` for words, ``\\n`` for characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
        """The end-of-line token."""
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

    def tokenize(self, lines: list[str]) -> list[str]:
        """Flat token list for many lines, each line followed by the end-of-line token."""
        tokens: list[str] = []
        eos = self.eos
        for line in lines:
            tokens.extend(self.tokenize_line(line))
            tokens.append(eos)
        return tokens

    def detokenize(self, tokens: list[str]) -> str:
        """Join tokens back into text (end-of-line tokens become newlines)."""
        if self.kind == "char":
            return "".join(tokens)
        out = []
        for tok in tokens:
            out.append("\n" if tok == EOS_WORD else tok + " ")
        return "".join(out).replace(" \n", "\n")
