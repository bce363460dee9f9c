"""Shared splits: one tokenization, one vocabulary (from train only), one id array per split.

A split is a flat int32 array; every line of text contributes its tokens and one end-of-line
token, so line boundaries are recoverable from the array itself::

    text:   "the cat\\nsat\\n"
    ids:    [ the, cat, </s>, sat, </s> ]     (as integers; </s> is vocab.eos_id)
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np

from .corpora import SPLITS, RawCorpus
from .tokenize import Tokenizer
from .vocab import Vocabulary, factorize


@dataclass(frozen=True)
class SplitStats:
    """What a run records about each split so that two runs can be shown to use identical data."""

    n_tokens: int
    n_lines: int
    n_oov: int
    n_unk: int
    sha256: str


@dataclass
class Dataset:
    """Tokenized, encoded splits of one corpus with their shared vocabulary."""

    name: str
    tokenizer: Tokenizer
    vocab: Vocabulary
    splits: dict[str, np.ndarray]
    stats: dict[str, SplitStats]
    source: dict

    def summary(self) -> dict:
        """JSON-ready description for config.json."""
        return {
            "name": self.name,
            "source": self.source,
            "tokenizer": asdict(self.tokenizer),
            "vocab_size": len(self.vocab),
            "splits": {name: asdict(st) for name, st in self.stats.items()},
        }


def fingerprint(ids: np.ndarray) -> str:
    """sha256 of the id array as little-endian int32."""
    return hashlib.sha256(np.ascontiguousarray(ids, dtype="<i4").tobytes()).hexdigest()


def build_dataset(raw: RawCorpus, tokenizer: Tokenizer, min_freq: int = 1, max_vocab: int | None = None) -> Dataset:
    """Tokenize every split, build the vocabulary from train only, and encode.

    Args:
        raw: the corpus lines per split.
        tokenizer: how lines become tokens.
        min_freq: minimum training count to enter the vocabulary.
        max_vocab: cap on the vocabulary size (``<unk>`` and end of line included).

    Returns:
        The Dataset every model of a run shares.
    """
    factorized = {name: factorize(tokenizer.tokenize(raw.splits[name])) for name in SPLITS}
    vocab = Vocabulary.from_factorized(*factorized["train"], tokenizer.eos, min_freq, max_vocab)
    splits, stats = {}, {}
    for name in SPLITS:
        ids, n_oov = vocab.encode_factorized(*factorized[name])
        splits[name] = ids
        stats[name] = SplitStats(
            n_tokens=int(ids.size),
            n_lines=len(raw.splits[name]),
            n_oov=n_oov,
            n_unk=int((ids == vocab.unk_id).sum()),
            sha256=fingerprint(ids),
        )
    return Dataset(raw.name, tokenizer, vocab, splits, stats, raw.source)
