"""The vocabulary: built from the training split only, shared by every model in a run."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import LmbenchError

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

    The end of line (``eos_id``) is structural: :func:`lmbench.data.dataset.encode_lines` puts it after
    each line, and no spelling maps to it. ``itos[eos_id]`` is only its display form, so a word
    spelled ``</s>`` (or ``<s>``) in the text is an ordinary word: ``stoi`` maps it to its own id
    when training saw it often enough, else it is out of vocabulary. A word spelled ``<unk>`` is
    the unknown token (PTB and WikiText write their unknown words so).

    Args:
        itos: token of each id, ``<unk>`` first, the end-of-line display form second, then
            distinct regular tokens (one of which may be spelled like the end of line).
    """

    itos: list[str]
    stoi: dict[str, int] = field(init=False, repr=False)

    unk_id = 0
    eos_id = 1

    def __post_init__(self):
        self.stoi = {tok: i for i, tok in enumerate(self.itos) if i != self.eos_id}
        if len(self.itos) < 2 or self.itos[self.unk_id] != UNK or len(self.stoi) != len(self.itos) - 1:
            raise LmbenchError(f"not a vocabulary: it must list {UNK}, the end of line, then distinct tokens "
                               f"(got {len(self.itos)} entries starting {self.itos[:3]!r}); is the saved model damaged?")

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def eos(self) -> str:
        """How the end-of-line token is displayed."""
        return self.itos[self.eos_id]

    @property
    def bos_id(self) -> int:
        return len(self.itos)

    @classmethod
    def build(cls, tokens: list[str], eos: str, min_freq: int = 1, max_vocab: int | None = None) -> "Vocabulary":
        """Build from training tokens: keep tokens seen at least ``min_freq`` times, most frequent first.

        Args:
            tokens: the training split's tokens, without line ends (they are structural and always
                get ``eos_id``); a token equal to ``eos`` is an ordinary word.
            eos: how the end-of-line token is displayed (``itos[eos_id]``).
            min_freq: minimum training count for a token to get its own id.
            max_vocab: cap on len(vocab), ``<unk>`` and the end-of-line token included.

        Returns:
            The vocabulary; ties in frequency are broken alphabetically, so it is deterministic.
        """
        return cls.from_factorized(*factorize(tokens), eos, min_freq, max_vocab)

    @classmethod
    def from_factorized(cls, codes, uniques, eos: str, min_freq: int = 1, max_vocab: int | None = None) -> "Vocabulary":
        """:meth:`build` from the output of :func:`factorize` (so train is hashed once, not twice)."""
        return cls.from_counts(np.bincount(codes, minlength=len(uniques)), uniques, eos, min_freq, max_vocab)

    @classmethod
    def from_counts(cls, counts, uniques, eos: str, min_freq: int = 1, max_vocab: int | None = None) -> "Vocabulary":
        """:meth:`build` from each distinct token's training count (``counts`` aligned with ``uniques``)."""
        if min_freq < 1:
            raise LmbenchError(f"--min-freq must be at least 1, got {min_freq}")
        if max_vocab is not None and max_vocab < 3:
            raise LmbenchError(f"--max-vocab must be at least 3 (<unk>, end of line, one token), got {max_vocab}")
        counts = np.asarray(counts, dtype=np.int64)
        words = np.asarray(uniques, dtype=object)
        regular = (counts >= min_freq) & (words != UNK)
        words, counts = words[regular], counts[regular]
        order = np.lexsort((words.astype(str), -counts))
        kept = [str(w) for w in words[order]]
        if max_vocab is not None:
            kept = kept[: max_vocab - 2]
        return cls([UNK, eos] + kept)

    def encode(self, tokens: list[str]) -> tuple[np.ndarray, int]:
        """Map tokens to ids, unknown ones to ``<unk>``, none to ``eos_id``.

        Line ends are not tokens: encode text with :func:`lmbench.data.dataset.encode_lines`, which adds them.

        Returns:
            (ids as int32 array, number of out-of-vocabulary tokens that were mapped to ``<unk>``).
        """
        return self.encode_factorized(*factorize(tokens))

    def lookup(self, uniques) -> np.ndarray:
        """The id of each distinct token, -1 where the vocabulary lacks it (one dict lookup each), int32."""
        return np.array([self.stoi.get(tok, -1) for tok in uniques], dtype=np.int32)

    def encode_factorized(self, codes, uniques) -> tuple[np.ndarray, int]:
        """:meth:`encode` from the output of :func:`factorize` (one dict lookup per distinct token)."""
        lookup = self.lookup(uniques)
        ids = lookup[codes] if len(codes) else np.zeros(0, dtype=np.int32)
        oov = ids < 0
        ids[oov] = self.unk_id
        return ids, int(oov.sum())

    def decode(self, ids) -> list[str]:
        """Display tokens for ids (``<s>`` for bos_id); ``eos_id`` and a word spelled like it look alike."""
        return [self.itos[i] if i < len(self.itos) else BOS for i in np.asarray(ids).tolist()]

    def to_list(self) -> list[str]:
        return list(self.itos)
