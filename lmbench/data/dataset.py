"""Shared splits: one tokenization, one vocabulary (from train only), one id array per split.

A split is a flat int32 array; every line of text contributes its tokens and one end-of-line
token, so line boundaries are recoverable from the array itself::

    text:   "the cat\\nsat\\n"
    ids:    [ the, cat, </s>, sat, </s> ]     (as integers; </s> is vocab.eos_id)

The end of line is structural: :func:`encode_lines` inserts ``vocab.eos_id`` after each line's
tokens. A word spelled ``</s>`` or ``<s>`` in the text is an ordinary word (its own id, or
``<unk>``); a word spelled ``<unk>`` is the unknown token.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import LmbenchError
from .raw import SPLITS, RawCorpus
from .tokenizers import Tokenizer, fit_tokenizer
from .vocab import Vocabulary, factorize


@dataclass(frozen=True)
class SplitStats:
    """What a run records about each split so that two runs can be shown to use identical data.

    Attributes:
        n_tokens: ids in the split, one end of line per line included (the tokens models predict).
        n_lines: lines of text (= end-of-line ids).
        n_oov: tokens mapped to ``<unk>`` because the vocabulary lacks them (a literal ``<unk>``
            in the text is not counted).
        n_unk: ids equal to ``<unk>`` (n_oov plus the text's own ``<unk>`` words).
        n_bytes: UTF-8 bytes of the text as the tokenizer saw it: each line after normalization
            (:meth:`Tokenizer.normalize_line`) plus one byte per line end, so total NLL in bits /
            n_bytes is bits per byte, comparable across tokenizations of the same normalized text.
        sha256: :func:`fingerprint` of the ids.
        text_sha256: sha256 of the normalized text (each line and one "\\n"): equal for runs over the same
            text whatever their tokenizer or vocabulary (their models compare by bits per byte).
    """

    n_tokens: int
    n_lines: int
    n_oov: int
    n_unk: int
    n_bytes: int
    sha256: str
    text_sha256: str = ""


@dataclass(frozen=True)
class HeldOut:
    """A split as every model of a run sees it.

    Attributes:
        name: "valid" or "test".
        ids: the run's token ids (N,), one end-of-line id per line included.
        line_offsets: (L+1,) line i is ``ids[line_offsets[i]:line_offsets[i+1]]``.
        lines: the text of each line after the run's normalization, without its end (L,).
        line_bytes: UTF-8 bytes of each line plus one for its end (L,); their sum is the split's bytes.
    """

    name: str
    ids: np.ndarray
    line_offsets: np.ndarray
    lines: tuple
    line_bytes: np.ndarray

    @property
    def n_bytes(self) -> int:
        return int(self.line_bytes.sum())

    @property
    def n_lines(self) -> int:
        return int(self.line_offsets.size - 1)


def line_offsets(ids: np.ndarray, eos_id: int) -> np.ndarray:
    """Start of every line and the end of the last one, from the end-of-line tokens of a split.

    Args:
        ids: a split, int array (N,); each line ends with ``eos_id``. Tokens after the last
            end-of-line token, if any, form a final line of their own.
        eos_id: the end-of-line id.

    Returns:
        offsets, int64 (L+1,): offsets[0] == 0, offsets[-1] == N, line i = ids[offsets[i]:offsets[i+1]].
        An empty split gives ``[0]`` (no lines).
    """
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise LmbenchError(f"token ids must be a flat array (N,), got shape {ids.shape}; pass one split")
    ends = np.flatnonzero(ids == eos_id) + 1  # (L,) one past each end-of-line token
    tail = [ids.size] if ids.size and (ends.size == 0 or ends[-1] != ids.size) else []
    return np.concatenate(([0], ends, tail)).astype(np.int64)  # (L+1,)



@dataclass
class Dataset:
    """Tokenized, encoded splits of one corpus with their shared vocabulary."""

    name: str
    tokenizer: Tokenizer
    vocab: Vocabulary
    splits: dict[str, np.ndarray]
    stats: dict[str, SplitStats]
    source: dict
    #: the normalized text of every line of the held-out splits (what models with their own tokenizer read).
    texts: dict = field(default_factory=dict, repr=False)
    #: UTF-8 bytes of every line of the held-out splits plus one for its end.
    line_bytes: dict = field(default_factory=dict, repr=False)

    def held_out(self, name: str) -> "HeldOut":
        """A held-out split as every model of the run sees it."""
        ids = self.splits[name]
        return HeldOut(name, ids, line_offsets(ids, self.vocab.eos_id), self.texts.get(name, ()),
                       self.line_bytes.get(name, np.zeros(0, np.int64)))

    def summary(self) -> dict:
        """JSON-ready description for config.json."""
        return {
            "name": self.name,
            "source": self.source,
            "tokenizer": self.tokenizer.to_dict(),
            "vocab_size": len(self.vocab),
            "splits": {name: asdict(st) for name, st in self.stats.items()},
        }


@dataclass
class _Tokenized:
    """Lines after tokenization, hashed block by block into one numbering of their distinct tokens.

    Attributes:
        blocks: int32 codes (indices into ``uniques``) of the tokens of each block of
            :data:`BLOCK_LINES` lines, in order.
        uniques: the distinct tokens, in order of first appearance (object array).
        counts: occurrences of each distinct token (int64, aligned with ``uniques``).
        lengths: tokens per line (n_lines,).
        n_bytes: UTF-8 bytes of the normalized lines plus one per line end.
    """

    blocks: list
    uniques: np.ndarray
    counts: np.ndarray
    lengths: np.ndarray
    n_bytes: int
    texts: list | None = None
    line_bytes: np.ndarray | None = None
    text_sha256: str = ""


#: lines tokenized (and encoded) at a time: the tokens of a large split never exist as Python
#: strings all at once, only as int32 codes.
BLOCK_LINES = 10_000


def fingerprint(ids: np.ndarray) -> str:
    """sha256 of the id array as little-endian int32 (hashed in place, not copied)."""
    return hashlib.sha256(np.ascontiguousarray(ids, dtype="<i4").view(np.uint8)).hexdigest()


def utf8_bytes(normalized: list[str]) -> int:
    """UTF-8 bytes of lines plus one per line end (one encode in C, no per-character loop)."""
    return len("\n".join(normalized).encode("utf-8", "surrogatepass")) + 1 if normalized else 0


def line_utf8_bytes(normalized: list[str]) -> np.ndarray:
    """UTF-8 bytes of each line plus one for its end (L,) int64."""
    return np.fromiter((len(line.encode("utf-8", "surrogatepass")) + 1 for line in normalized), np.int64,
                       len(normalized))


def _tokenize(lines: list[str], tokenizer: Tokenizer, *, consume: bool = False, keep_text: bool = False) -> _Tokenized:
    """Normalize, split and hash lines, :data:`BLOCK_LINES` at a time.

    Each block's tokens are hashed in C (:func:`lmbench.data.vocab.factorize`), its distinct tokens
    numbered in one running table (a dict lookup per distinct token of the block), and the token
    strings dropped; the result equals hashing all lines at once. With ``consume``, each block's
    lines are replaced by None in ``lines`` once hashed, so the text goes as the codes come.
    """
    numbering: dict = {}
    blocks, counts, lengths, n_bytes = [], np.zeros(0, np.int64), [], 0
    texts = [] if keep_text else None
    digest = hashlib.sha256()
    for start in range(0, len(lines), BLOCK_LINES):
        normalized = [tokenizer.normalize_line(line) for line in lines[start:start + BLOCK_LINES]]
        if consume:
            lines[start:start + BLOCK_LINES] = [None] * len(normalized)
        tokens, block_lengths = tokenizer.split_normalized(normalized)
        codes, uniques = factorize(tokens)
        renumber = np.fromiter((numbering.setdefault(tok, len(numbering)) for tok in uniques), np.int32, len(uniques))
        blocks.append(renumber[codes])  # (tokens of the block,) int32
        counts = np.concatenate([counts, np.zeros(len(numbering) - counts.size, np.int64)])
        counts += np.bincount(blocks[-1], minlength=len(numbering))
        lengths.append(block_lengths)
        n_bytes += utf8_bytes(normalized)
        digest.update("".join(line + "\n" for line in normalized).encode("utf-8", "surrogatepass"))
        if keep_text:
            texts.extend(normalized)
    uniques = np.empty(len(numbering), dtype=object)
    uniques[:] = list(numbering)
    return _Tokenized(blocks, uniques, counts, np.concatenate(lengths) if lengths else np.zeros(0, np.int64), n_bytes,
                      texts, line_utf8_bytes(texts) if keep_text else None, digest.hexdigest())


def with_line_ends(token_ids: np.ndarray, lengths: np.ndarray, eos_id: int) -> np.ndarray:
    """Insert ``eos_id`` after each line's tokens.

    Args:
        token_ids: the tokens of all lines (sum(lengths),).
        lengths: tokens per line (n_lines,).
        eos_id: the end-of-line id.

    Returns:
        int32 ids (sum(lengths) + n_lines,).
    """
    ends = np.cumsum(np.asarray(lengths, dtype=np.int64) + 1) - 1      # position of each line end
    out = np.empty(int(ends[-1]) + 1 if ends.size else 0, dtype=np.int32)
    is_token = np.ones(out.size, dtype=bool)
    is_token[ends] = False
    out[is_token] = token_ids
    out[ends] = eos_id
    return out


def _encode(tokenized: _Tokenized, vocab: Vocabulary, oov_mask: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Ids with line ends, block by block into one int32 array (each block's codes let go once written).

    Args:
        tokenized: the lines' codes.
        vocab: the vocabulary.
        oov_mask: if given, a bool array (tokens + lines,) set True where a token is out of vocabulary.

    Returns:
        (ids (tokens + lines,) int32, tokens mapped to ``<unk>`` because the vocabulary lacks them).
    """
    lookup = vocab.lookup(tokenized.uniques)  # (U,), -1 for tokens the vocabulary lacks
    unknown = lookup < 0
    n_oov = int(tokenized.counts[unknown].sum())
    lookup[unknown] = vocab.unk_id
    out = np.empty(int(tokenized.lengths.sum()) + tokenized.lengths.size, dtype=np.int32)
    position, blocks = 0, tokenized.blocks
    tokenized.blocks = []
    for first, codes in zip(range(0, tokenized.lengths.size, BLOCK_LINES), blocks):
        lengths = tokenized.lengths[first:first + BLOCK_LINES]
        ids = with_line_ends(lookup[codes], lengths, vocab.eos_id)
        out[position:position + ids.size] = ids
        if oov_mask is not None:  # the line ends (eos) are never out of vocabulary
            oov_mask[position:position + ids.size] = with_line_ends(unknown[codes].astype(np.int32), lengths, 0) == 1
        position += ids.size
    return out, n_oov


def encode_lines(lines: list[str], tokenizer: Tokenizer, vocab: Vocabulary) -> tuple[np.ndarray, int]:
    """Tokenize and encode lines of text, one end-of-line id after each line.

    A word spelled like a special token is an ordinary word, except ``<unk>`` (the unknown token);
    only the pipeline puts ``vocab.eos_id`` in the output. Tokens are hashed in C and looked up
    once per distinct token.

    Args:
        lines: lines of text, without their newlines.
        tokenizer: the tokenizer the vocabulary was built with.
        vocab: the vocabulary.

    Returns:
        (int32 ids (tokens + len(lines),), number of out-of-vocabulary tokens mapped to ``<unk>``).
    """
    return _encode(_tokenize(lines, tokenizer), vocab)


def encode_lines_with_oov(lines: list[str], tokenizer: Tokenizer, vocab: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """:func:`encode_lines` and, per id, whether its token was out of the vocabulary (bool (tokens + lines,))."""
    tokenized = _tokenize(lines, tokenizer)
    mask = np.zeros(int(tokenized.lengths.sum()) + tokenized.lengths.size, dtype=bool)
    ids, _ = _encode(tokenized, vocab, mask)
    return ids, mask


def split_stats(ids: np.ndarray, tokenized: _Tokenized, n_oov: int, vocab: Vocabulary) -> SplitStats:
    """The :class:`SplitStats` of one encoded split."""
    return SplitStats(n_tokens=int(ids.size), n_lines=int(tokenized.lengths.size), n_oov=n_oov,
                      n_unk=int((ids == vocab.unk_id).sum()), n_bytes=tokenized.n_bytes, sha256=fingerprint(ids),
                      text_sha256=tokenized.text_sha256)


def build_dataset(raw: RawCorpus, tokenizer: Tokenizer, min_freq: int = 1, max_vocab: int | None = None, *,
                  consume: bool = False) -> Dataset:
    """Tokenize every split, build the vocabulary from train only, and encode (as :func:`encode_lines`).

    A BPE tokenizer not yet fitted learns its subwords from the normalized training lines first
    (:func:`lmbench.data.tokenizers.fit_tokenizer`); the Dataset holds the fitted tokenizer, so the run
    records it and can tokenize new text the same way. ``n_bytes`` counts the normalized text
    whatever the tokenizer, so bits per byte compares word, char and bpe runs of one normalization.

    Args:
        raw: the corpus lines per split.
        tokenizer: how lines become tokens.
        min_freq: minimum training count to enter the vocabulary.
        max_vocab: cap on the vocabulary size (``<unk>`` and end of line included).
        consume: let the text of ``raw`` go as it is tokenized (its lines become None), so a large
            corpus never exists as text and codes at once; for a caller that is done with ``raw``.

    Returns:
        The Dataset every model of a run shares.
    """
    consume = consume and len({id(lines) for lines in raw.splits.values()}) == len(raw.splits)  # no shared lists
    tokenizer = fit_tokenizer(tokenizer, raw.splits["train"])
    train = _tokenize(raw.splits["train"], tokenizer, consume=consume)
    vocab = Vocabulary.from_counts(train.counts, train.uniques, tokenizer.eos, min_freq, max_vocab)
    splits, stats, texts, line_bytes = {}, {}, {}, {}
    for name in SPLITS:   # one split's codes at a time; _encode lets them go as it writes the ids
        tokenized = train if name == "train" else _tokenize(raw.splits[name], tokenizer, consume=consume,
                                                            keep_text=True)
        if tokenized.texts is not None:
            texts[name], line_bytes[name] = tuple(tokenized.texts), tokenized.line_bytes
        splits[name], n_oov = _encode(tokenized, vocab)
        stats[name] = split_stats(splits[name], tokenized, n_oov, vocab)
    return Dataset(raw.name, tokenizer, vocab, splits, stats, raw.source, texts, line_bytes)
