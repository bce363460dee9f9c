"""Tokenizers: whitespace words, Unicode characters or BPE subwords, with optional normalization.

Every line of text becomes its tokens followed by one end-of-line token, which models predict like
any other token. The end of line is structural: :func:`lmbench.data.dataset.encode_lines` inserts its id
after each line, and it is never recognized by spelling. Its display form is ``</s>`` for words
and subwords and ``\\n`` for characters, but a word spelled ``</s>`` (or ``<s>``) inside a line is an
ordinary word.

Subwords (``kind="bpe"``) are byte-pair-encoding units (Sennrich, Haddow & Birch 2016, "Neural
Machine Translation of Rare Words with Subword Units") learned from the training split only, see
:func:`fit_tokenizer`. They are character-level BPE with SentencePiece's whitespace convention
(Kudo & Richardson 2018) within the words of the word tokenizer: the first subword of each
whitespace-separated word carries a leading ``▁`` (U+2581), so ``"the cat"`` may become
``▁the ▁c at``, and merges never cross a word boundary. Each word is thus split into subwords, and
a bpe run predicts the same words as a word run (``exp(nll_nats / word tokens)`` is a per-word
perplexity). Whitespace is treated as by the word tokenizer (a run of it separates two words). Character
BPE rather than byte-level BPE (GPT-2) keeps every subword readable text (Chinese stays Chinese in
``lmbench score`` and ``generate``); a character never seen in training is its own token, which the
vocabulary maps to ``<unk>`` and counts as out of vocabulary, exactly as the char tokenizer does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields, replace
from itertools import chain

import numpy as np

from ..errors import LmbenchError

EOS_WORD = "</s>"
EOS_CHAR = "\n"
TOKENIZERS = ("word", "char", "bpe")
NORMALIZATIONS = ("none", "lower", "d2l")

#: subwords learned by ``Tokenizer("bpe")`` when no vocabulary size is given.
DEFAULT_BPE_VOCAB_SIZE = 8000
MAX_BPE_VOCAB_SIZE = 10_000_000
#: marks the first subword of each word (SentencePiece's meta symbol for a preceding space).
SPACE = "\u2581"
#: a whole word spelled so is the unknown token (as for words); BPE never splits or learns it.
UNK_WORD = "<unk>"
#: what the BPE library emits for a character training never saw; replaced by that character at once.
#: No word holds a newline, so no learned subword is spelled so.
_UNSEEN = "\n<unseen>\n"
#: tag of the serialized BPE model (``Tokenizer.model_json``), checked when a saved run is loaded.
_BPE_FORMAT = "lmbench-bpe-1"

# d2l replaces every run of non-letters by one space ([^A-Za-z]+). Letters here are Unicode letters,
# which is identical on ASCII text and keeps Chinese, Greek, accented Latin, ... intact.
_NON_LETTERS = re.compile(r"[\W\d_]+")


@dataclass(frozen=True)
class Tokenizer:
    """Turn lines of text into token lists.

    Args:
        kind: "word" (split on whitespace), "char" (one token per Unicode code point) or "bpe"
            (subwords learned from the training split, see :func:`fit_tokenizer`).
        normalize: "none"; "lower" (lower-case); "d2l" (lower-case, every run of non-letters becomes
            one space, leading and trailing spaces stripped, as in Dive into Deep Learning).
        vocab_size: bpe only: how many subwords to learn, the training text's characters (always all
            of them, so never fewer) plus merges. The run's vocabulary then holds the subwords that
            occur in the encoded training split plus ``<unk>`` and the end of line: at most
            ``vocab_size + 2`` (when the characters are fewer than ``vocab_size``), usually somewhat
            fewer, since some subwords only ever occur inside longer ones. None:
            :data:`DEFAULT_BPE_VOCAB_SIZE`.
        model_json: bpe only: the learned merges (set by :func:`fit_tokenizer`; None until then).
    """

    kind: str = "word"
    normalize: str = "none"
    vocab_size: int | None = None
    model_json: str | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.kind not in TOKENIZERS:
            raise LmbenchError(f"unknown tokenizer {self.kind!r}; use one of: {', '.join(TOKENIZERS)}")
        if self.normalize not in NORMALIZATIONS:
            raise LmbenchError(f"unknown normalization {self.normalize!r}; use one of: {', '.join(NORMALIZATIONS)}")
        if self.kind != "bpe":
            if self.vocab_size is not None or self.model_json is not None:
                raise LmbenchError(f"a BPE vocabulary size applies to --tokenizer bpe only, not {self.kind}; "
                                   f"drop --bpe-vocab-size or use --tokenizer bpe")
            return
        object.__setattr__(self, "vocab_size", _checked_vocab_size(self.vocab_size))
        if self.model_json is not None and not isinstance(self.model_json, str):
            raise LmbenchError(f"the BPE model of a tokenizer must be the JSON text fit_tokenizer made, "
                               f"got {type(self.model_json).__name__}; is the run's config.json damaged?")

    def __getstate__(self) -> dict:
        """Pickle the fields only (the loaded BPE model is rebuilt from ``model_json`` on use)."""
        return {k: v for k, v in self.__dict__.items() if k != "_bpe_cache"}

    @property
    def fitted(self) -> bool:
        """True unless this is a BPE tokenizer that has not learned its subwords yet."""
        return self.kind != "bpe" or self.model_json is not None

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
        if self.kind == "bpe":
            return self._bpe().split([line])[0]
        return list(line) if self.kind == "char" else line.split()

    def split_normalized(self, normalized: list[str]) -> tuple[list[str], np.ndarray]:
        """Tokens of lines already passed through :meth:`normalize_line`, without line ends.

        Returns:
            (the tokens of all lines, flat; tokens per line (n_lines,) int64). The line ends are
            not in the list: they are structural, inserted by :func:`lmbench.data.dataset.encode_lines`.
        """
        if self.kind == "bpe":
            return self._bpe().split(normalized)
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
        end, so never encode it; encode text with :func:`lmbench.data.dataset.encode_lines`.
        """
        tokens, lengths = self.split_normalized([self.normalize_line(line) for line in lines])
        out: list[str] = []
        start = 0
        for n in lengths.tolist():
            out.extend(tokens[start:start + n])
            out.append(self.eos)
            start += n
        return out

    def detokenize(self, tokens: list[str]) -> str:
        """Join display tokens back into text (``</s>`` and ``\\n`` become newlines; display only).

        For bpe, ``▁`` becomes a space and the one that starts each line is dropped, so the tokens
        of a line give back its words joined by single spaces (the line itself when its words are
        so separated and hold no ``▁``).
        """
        if self.kind == "char":
            return "".join(tokens)
        if self.kind == "bpe":
            text = "".join(["\n" if tok == EOS_WORD else SPACE + tok if tok == UNK_WORD else tok for tok in tokens])
            lines = [line[1:] if line.startswith(SPACE) else line for line in text.split("\n")]
            return "\n".join(lines).replace(SPACE, " ")
        out = []
        for tok in tokens:
            out.append("\n" if tok == EOS_WORD else tok + " ")
        return "".join(out).replace(" \n", "\n")

    def to_dict(self) -> dict:
        """JSON-ready fields for config.json (word and char tokenizers give only kind and normalize)."""
        out = {"kind": self.kind, "normalize": self.normalize}
        if self.kind == "bpe":
            out.update(vocab_size=self.vocab_size, model_json=self.model_json)
        return out

    @classmethod
    def from_dict(cls, data) -> "Tokenizer":
        """The tokenizer :meth:`to_dict` (or ``dataclasses.asdict``) described."""
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or "kind" not in data or not set(data) <= names:
            keys = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise LmbenchError(f"not a tokenizer description ({keys}); expected the keys {', '.join(sorted(names))}")
        return cls(**data)

    def _bpe(self) -> "_Bpe":
        """The loaded BPE model (built once per tokenizer from ``model_json``)."""
        cached = self.__dict__.get("_bpe_cache")
        if cached is None:
            if self.model_json is None:
                raise LmbenchError("this BPE tokenizer has not learned its subwords; fit it on training text with "
                                   "lmbench.data.tokenizers.fit_tokenizer (build_dataset does)")
            cached = _Bpe(self.model_json)
            object.__setattr__(self, "_bpe_cache", cached)
        return cached


def fit_tokenizer(tokenizer: Tokenizer, train_lines: list[str], *, normalized: bool = False) -> Tokenizer:
    """Learn a BPE tokenizer's subwords from training lines; word and char tokenizers come back as they are.

    BPE (Sennrich, Haddow & Birch 2016) starts from the characters of the training text and
    repeatedly merges the most frequent adjacent pair of symbols within a word (whitespace-separated),
    until ``vocab_size`` subwords exist or no pair is left. Training is deterministic (same lines,
    same merges). Line ends are never seen: they stay structural. A whole word ``<unk>`` is left out
    of training and always stays the unknown token, as for words.

    Args:
        tokenizer: the tokenizer to fit.
        train_lines: the training split's lines only (never valid or test).
        normalized: True if the lines already went through ``tokenizer.normalize_line``.

    Returns:
        A fitted copy (kind bpe, ``model_json`` set), or ``tokenizer`` itself when there is nothing
        to learn (word, char, or a bpe tokenizer already fitted).
    """
    if tokenizer.fitted:
        return tokenizer
    if not normalized:
        train_lines = [tokenizer.normalize_line(line) for line in train_lines]
    return replace(tokenizer, model_json=_train_bpe(train_lines, tokenizer.vocab_size))


def _checked_vocab_size(value) -> int:
    if value is None:
        return DEFAULT_BPE_VOCAB_SIZE
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_BPE_VOCAB_SIZE:
        raise LmbenchError(f"--bpe-vocab-size must be a whole number from 1 to {MAX_BPE_VOCAB_SIZE:,}, got {value!r}")
    return int(value)


def _import_tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise LmbenchError("--tokenizer bpe needs the tokenizers package; install it with: pip install tokenizers") from None
    return tokenizers


def _training_text(normalized: list[str]):
    """Each line's words (as ``str.split`` finds them, ``<unk>`` left out), each marked ``▁``, joined by spaces."""
    for line in normalized:
        words = line.split()
        if UNK_WORD in words:
            words = [word for word in words if word != UNK_WORD]
        if words:
            yield SPACE + (" " + SPACE).join(words)


def _train_bpe(normalized: list[str], vocab_size: int) -> str:
    """Learn BPE merges from normalized training lines; the model as compact JSON (alphabet and merges, in order)."""
    tokenizers = _import_tokenizers()
    hf = tokenizers.Tokenizer(tokenizers.models.BPE())
    hf.pre_tokenizer = tokenizers.pre_tokenizers.Split(" ", "removed")    # the words, each marked ▁ already
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False, initial_alphabet=[SPACE])
    try:
        hf.train_from_iterator(_training_text(normalized), trainer)
    except UnicodeEncodeError as err:
        raise _invalid_text(err) from None
    model = json.loads(hf.to_str())["model"]
    # tokenizers < 0.20 writes a merge as "a b", later versions as ["a", "b"]; subwords hold no spaces.
    merges = [m.split(" ", 1) if isinstance(m, str) else list(m) for m in model["merges"]]
    alphabet = "".join(sorted(tok for tok in model["vocab"] if len(tok) == 1))
    return json.dumps({"format": _BPE_FORMAT, "alphabet": alphabet, "merges": merges},
                      ensure_ascii=False, separators=(",", ":"))


def _invalid_text(err: UnicodeEncodeError) -> LmbenchError:
    return LmbenchError(f"--tokenizer bpe needs valid Unicode text, but the text holds {err.object[err.start:err.end]!r} "
                        f"(a lone surrogate); decode the text strictly or use --tokenizer char")


class _Bpe:
    """A learned BPE model applied to lines: each distinct word is encoded once."""

    def __init__(self, model_json: str):
        tokenizers = _import_tokenizers()
        try:
            spec = json.loads(model_json)
            if spec.get("format") != _BPE_FORMAT:
                raise ValueError(f"format {spec.get('format')!r} is not {_BPE_FORMAT!r}")
            merges = [(a, b) for a, b in spec["merges"]]
            vocab = {_UNSEEN: 0}
            for tok in [*spec["alphabet"], *(a + b for a, b in merges)]:
                vocab.setdefault(tok, len(vocab))
            self.hf = tokenizers.Tokenizer(tokenizers.models.BPE(vocab=vocab, merges=merges, unk_token=_UNSEEN,
                                                                 fuse_unk=False))
        except Exception as err:  # json, shape or tokenizers errors: the stored model is unusable
            raise LmbenchError(f"the tokenizer's BPE model is damaged ({type(err).__name__}: {err}); "
                               f"is the run's config.json intact?") from None

    def split(self, normalized: list[str]) -> tuple[list[str], np.ndarray]:
        """Subwords of normalized lines, flat, and subwords per line (n_lines,) int64."""
        from .vocab import factorize

        words = [line.split() for line in normalized]
        words_per_line = np.fromiter(map(len, words), dtype=np.int64, count=len(words))       # (L,)
        codes, uniques = factorize(list(chain.from_iterable(words)))                           # (P,), (U,)
        subwords = self.encode_words(list(uniques))
        n_sub = np.fromiter(map(len, subwords), dtype=np.int64, count=len(subwords))         # (U,)
        flat = np.array(list(chain.from_iterable(subwords)) or [""], dtype=object)            # (sum n_sub,)
        first = np.cumsum(n_sub) - n_sub                                                       # (U,)
        per_word = n_sub[codes]                                                                # (P,)
        out_first = np.cumsum(per_word) - per_word                                             # (P,)
        index = np.arange(int(per_word.sum())) + np.repeat(first[codes] - out_first, per_word)  # (T,)
        ends = np.concatenate(([0], np.cumsum(per_word)))                                      # (P+1,)
        line_end = np.cumsum(words_per_line)                                                   # (L,)
        return flat[index].tolist(), ends[line_end] - ends[line_end - words_per_line]

    def encode_words(self, words: list[str]) -> list[list[str]]:
        """Subwords of each word; ``<unk>`` stays whole, a character training never saw stays itself."""
        try:
            encodings = self.hf.encode_batch([SPACE + word for word in words], add_special_tokens=False)
        except (UnicodeEncodeError, TypeError):  # tokenizers refuses a str holding a lone surrogate
            for word in words:
                try:
                    word.encode("utf-8")
                except UnicodeEncodeError as err:
                    raise _invalid_text(err) from None
            raise
        out = []
        for word, enc in zip(words, encodings):
            tokens = enc.tokens
            if word == UNK_WORD:
                tokens = [UNK_WORD]
            elif _UNSEEN in tokens:
                text = SPACE + word
                tokens = [text[a:b] if tok == _UNSEEN else tok for tok, (a, b) in zip(tokens, enc.offsets)]
            out.append(tokens)
        return out
