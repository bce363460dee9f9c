"""A corpus as lines per split, and how one text is cut into train/valid/test (shared by every corpus reader)."""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LmbenchError

SPLITS = ("train", "valid", "test")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


@dataclass
class RawCorpus:
    """Untokenized lines of each split, where they came from, and the corpus's default tokenization.

    ``presplit``: the corpus came with its own train/valid/test files (a directory, ``ptb``,
    ``wikitext-2``); False when its lines were split by fractions (so ``--split`` applies).
    """

    name: str
    splits: dict[str, list[str]]
    source: dict = field(default_factory=dict)
    tokenizer: str = "word"
    normalize: str = "none"
    presplit: bool = False


def text_lines(text: str) -> list[str]:
    """Split text into lines on LF only (a final newline does not start an empty line)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def split_lines(lines: list[str], fractions=DEFAULT_FRACTIONS, what: str = "the text") -> dict[str, list[str]]:
    """Cut lines into contiguous train/valid/test parts, deterministically.

    Args:
        lines: all lines, in order.
        fractions: (train, valid, test) fractions, each positive, summing to 1; None keeps the
            text whole (everything in train, for analyses such as Zipf's law).
        what: a description of the source for error messages.

    Returns:
        {"train": ..., "valid": ..., "test": ...}; boundaries at round(L*f_train) and
        round(L*(f_train + f_valid)).
    """
    if fractions is None:
        return {"train": lines, "valid": [], "test": []}
    check_fractions(fractions)
    n = len(lines)
    b1 = round(n * fractions[0])
    b2 = round(n * (fractions[0] + fractions[1]))
    parts = {"train": lines[:b1], "valid": lines[b1:b2], "test": lines[b2:]}
    for name, part in parts.items():
        if not part:
            raise LmbenchError(
                f"{what} has only {n} lines, too few to split {format_fractions(fractions)}: "
                f"{name} would be empty; use a longer text or a directory with train/valid/test files"
            )
    return parts


def check_fractions(fractions) -> None:
    """Raise unless there are three positive fractions summing to 1."""
    if len(fractions) != 3 or not all(math.isfinite(f) and f > 0 for f in fractions) \
            or abs(sum(fractions) - 1) > 1e-6:
        raise LmbenchError(
            f"split fractions must be three positive numbers summing to 1, got {format_fractions(fractions)}; "
            f"e.g. --split 0.8,0.1,0.1"
        )


def format_fractions(fractions) -> str:
    if fractions is None:
        return "whole text"
    return "/".join(f"{100 * f:g}" for f in fractions)


def check_distinct_splits(where: str, sha256: dict[str, str], paths: dict[str, Path] | None = None) -> None:
    """Refuse two splits that are the same file (a link) or hold identical bytes.

    Args:
        where: the corpus, for the message.
        sha256: {split: sha256 of its file's bytes}.
        paths: {split: file}, when the splits are separate files.
    """
    for a, b in itertools.combinations(sha256, 2):
        if paths and os.path.samefile(paths[a], paths[b]):
            raise LmbenchError(f"{where}: the {a} and {b} splits are the same file ({paths[a].name} and "
                               f"{paths[b].name}, linked); give each split its own file")
        if sha256[a] == sha256[b]:
            raise LmbenchError(f"{where}: the {a} and {b} splits have identical content (sha256 {sha256[a][:12]}); "
                               f"a model would be scored on the text it was fitted on; give each split its own text")
