"""The vocabulary: built from the training split only, shared by every model in a run."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import LmbenchError

UNK = "<unk>"
BOS = "<s>"


def factorize(tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of tokens and the distinct tokens in order of appearance (one hashing pass in C)."""
    return pd.factorize(pd.Series(tokens, dtype=object), sort=False)


@dataclass
class Vocabulary:
    """Map tokens to integer ids.

    Layout::

        id:     0       1       2 .. V-1               V
        token:  <unk>   eos     by training frequency   <s> (context padding, never predicted)

    ``len(vocab)`` is V, the number of tokens a model can predict (``<unk>`` and the end-of-line
    token included, ``<s>`` excluded). ``bos_id == V`` lies outside that range on purpose.

    Args:
        itos: token of each id, ``<unk>`` first and the end-of-line token second.
    """

    itos: list[str]
    stoi: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        self.stoi = {tok: i for i, tok in enumerate(self.itos)}

    unk_id = 0
    eos_id = 1

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def eos(self) -> str:
        return self.itos[self.eos_id]

    @property
    def bos_id(self) -> int:
        return len(self.itos)

    @classmethod
    def build(cls, tokens: list[str], eos: str, min_freq: int = 1, max_vocab: int | None = None) -> "Vocabulary":
        """Build from training tokens: keep tokens seen at least ``min_freq`` times, most frequent first.

        Args:
            tokens: the training split's tokens (end-of-line tokens included).
            eos: the end-of-line token.
            min_freq: minimum training count for a token to get its own id.
            max_vocab: cap on len(vocab), ``<unk>`` and the end-of-line token included.

        Returns:
            The vocabulary; ties in frequency are broken alphabetically, so it is deterministic.
        """
        return cls.from_factorized(*factorize(tokens), eos, min_freq, max_vocab)

    @classmethod
    def from_factorized(cls, codes, uniques, eos: str, min_freq: int = 1, max_vocab: int | None = None) -> "Vocabulary":
        """:meth:`build` from the output of :func:`factorize` (so train is hashed once, not twice)."""
        if min_freq < 1:
            raise LmbenchError(f"--min-freq must be at least 1, got {min_freq}")
        if max_vocab is not None and max_vocab < 3:
            raise LmbenchError(f"--max-vocab must be at least 3 (<unk>, end of line, one token), got {max_vocab}")
        counts = np.bincount(codes, minlength=len(uniques))
        words = np.asarray(uniques, dtype=object)
        regular = (counts >= min_freq) & (words != UNK) & (words != eos) & (words != BOS)
        words, counts = words[regular], counts[regular]
        order = np.lexsort((words.astype(str), -counts))
        kept = [str(w) for w in words[order]]
        if max_vocab is not None:
            kept = kept[: max_vocab - 2]
        return cls([UNK, eos] + kept)

    def encode(self, tokens: list[str]) -> tuple[np.ndarray, int]:
        """Map tokens to ids, unknown ones to ``<unk>``.

        Returns:
            (ids as int32 array, number of out-of-vocabulary tokens that were mapped to ``<unk>``).
        """
        return self.encode_factorized(*factorize(tokens))

    def encode_factorized(self, codes, uniques) -> tuple[np.ndarray, int]:
        """:meth:`encode` from the output of :func:`factorize`."""
        lookup = np.array([self.stoi.get(tok, -1) for tok in uniques], dtype=np.int64)
        ids = lookup[codes] if len(codes) else np.zeros(0, dtype=np.int64)
        oov = ids < 0
        ids[oov] = self.unk_id
        return ids.astype(np.int32), int(oov.sum())

    def decode(self, ids) -> list[str]:
        """Tokens for ids (``<s>`` for bos_id)."""
        return [self.itos[i] if i < len(self.itos) else BOS for i in np.asarray(ids).tolist()]

    def to_list(self) -> list[str]:
        return list(self.itos)
