"""ARPA interchange: write lmbench n-gram models for KenLM and SRILM, and load their models back.

The ARPA back-off format (Doug Paul's, as SRILM and KenLM read and write it) lists log10 P of every
n-gram and log10 b of every context; a token w after w1..w(m-1) scores log P(w1..w(m-1) w) if that
n-gram is listed, else log b(w1..w(m-1)) + the score of w after w2..w(m-1) (b = 1 if not listed).
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import math
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import LmbenchError
from ..base import LanguageModel
from .counts import NGramCounts
from .model import NGramModel
from .smoothing import one_line_warning
from .tables import backoff_logprob
from ...files import atomic_write_bytes, atomic_write_text, expand_path, read_text_bytes
from ...data.vocab import Vocabulary

BOS_WORD, EOS_WORD, UNK_WORD = "<s>", "</s>", "<unk>"
#: log10 probability written for ``<s>``, which is never predicted.
BOS_LOG10 = -99.0
LN10 = math.log(10.0)
_ESCAPED = re.compile(r"<U\+([0-9A-F]{4,6})>")


# ---------------------------------------------------------------- token spelling


def escape_token(token: str) -> str:
    """Spell a token as one ARPA word: whitespace characters become ``<U+XXXX>``."""
    if not any(ch.isspace() for ch in token):
        return token
    return "".join(f"<U+{ord(ch):04X}>" if ch.isspace() else ch for ch in token)


def unescape_token(word: str) -> str:
    """Inverse of :func:`escape_token` (only whitespace code points are unescaped)."""
    if "<U+" not in word:
        return word

    def back(match):
        ch = chr(int(match.group(1), 16))
        return ch if ch.isspace() else match.group(0)

    return _ESCAPED.sub(back, word)


def arpa_words(vocab: Vocabulary) -> list[str]:
    """ARPA spelling of every id of a vocabulary, ``<s>`` (id V) last.

    Raises:
        LmbenchError: an ordinary word is spelled ``<s>`` or ``</s>``, which ARPA reserves for the
            sentence markers (the file would list that word twice).
    """
    words = [escape_token(tok) for tok in vocab.itos]
    words[vocab.eos_id] = EOS_WORD
    clash = [w for i, w in enumerate(words) if w in (BOS_WORD, EOS_WORD) and i != vocab.eos_id]
    if clash:
        raise LmbenchError(f"the vocabulary has an ordinary word spelled {clash[0]}, which ARPA reserves for its "
                           f"sentence marker; replace that word in the corpus text to export this model")
    return words + [BOS_WORD]


# ---------------------------------------------------------------- writing


def _format(values: np.ndarray) -> list[str]:
    return ["%.8f" % v for v in values.tolist()]


def write_arpa(model, dest) -> None:
    """Write a fitted, normalized n-gram model as an ARPA file that KenLM and SRILM can read.

    A model's back-off tables are written as they are (:mod:`lmbench.models.ngram.tables`): for an
    interpolated model the listed probability of an n-gram is its interpolated probability and the
    weight of a context its interpolation weight gamma, so ARPA lookup reproduces the model exactly.
    Conventions:

    * every token of the vocabulary is a unigram; ``<s>`` is listed with log10 probability -99 (never
      predicted, SRILM's convention) and its back-off weight; the end-of-line token is ``</s>`` (for
      character models too), the vocabulary's ``<unk>`` is ``<unk>``;
    * whitespace inside a token (character models: " ", "\\t") is written ``<U+XXXX>`` (its code point
      in hex) and read back the same way (:func:`escape_token`);
    * numbers have 8 decimals, so a token's natural-log probability is within order x 5e-9 x ln 10
      of the model's (the round trip export -> load: within 1e-6 nats, tested).

    Args:
        model: a fitted model in back-off tables with normalized probabilities (``kn``, ``kn1``,
            ``wb``, ``abs``, ``katz``, ``interp`` of any order, either form). MLE and add-k are not in
            back-off form (their unseen-context behaviour has no ARPA equivalent), and stupid backoff
            is not normalized; both raise LmbenchError.
        dest: a path (``.gz``: gzip-compressed) or a writable text file object. A path is written
            atomically (:func:`lmbench.files.atomic_write_bytes`): a failed export leaves an
            existing file untouched, and a missing or read-only folder is a one-line error.
    """
    if getattr(model, "on_disk", False):
        raise LmbenchError("ARPA export needs the n-gram tables in memory; refit with --set NAME.storage=memory")
    if not (isinstance(model, NGramModel) and hasattr(model, "logp_")):
        raise LmbenchError(f"{type(model).__name__} cannot be written as ARPA: only smoothed n-gram models in "
                           f"backoff form can (kn, kn1, wb, abs, katz, interp)")
    if not model.normalized:
        raise LmbenchError(f"{type(model).__name__} scores are not normalized probabilities; "
                           f"an ARPA file must hold a probability model")
    model._check_fitted()
    text = arpa_text(model)
    if hasattr(dest, "write"):
        dest.write(text)
        return
    path = Path(dest)
    if path.suffix == ".gz":   # compressed in memory, then written atomically like any other file
        atomic_write_bytes(path, gzip.compress(text.encode("utf-8"), mtime=0))
    else:
        atomic_write_text(path, text)


def arpa_text(model: NGramModel) -> str:
    """The ARPA file of a fitted backoff model, as one string."""
    c, order = model.counts_, model.order
    words = arpa_words(model.vocab_)
    sections, sizes, names = [], [], []
    for k in range(1, order + 1):
        logp = model.logp_[k].copy()
        if k == 1:
            logp[c.bos_id] = BOS_LOG10 * LN10
            names = words
        else:   # a k-gram's words: its prefix's words, a space, its last word
            names = [names[i] + " " + words[j] for i, j in zip(c.prefix(k).tolist(), c.last_token(k).tolist())]
        probs = _format(logp / LN10)
        if k < order:
            is_context = c.context_totals(k + 1) > 0
            bows = _format(np.where(is_context, model.bow_[k + 1], 0.0) / LN10)
            lines = [f"{p}\t{w}\t{b}" if ctx else f"{p}\t{w}"
                     for p, w, b, ctx in zip(probs, names, bows, is_context.tolist())]
        else:
            lines = [f"{p}\t{w}" for p, w in zip(probs, names)]
        sizes.append(len(lines))
        sections.append(f"\\{k}-grams:\n" + "\n".join(lines) + "\n")
    header = "\\data\\\n" + "".join(f"ngram {k}={n}\n" for k, n in enumerate(sizes, start=1))
    return header + "\n" + "\n".join(sections) + "\n\\end\\\n"


# ---------------------------------------------------------------- reading


class ArpaTables:
    """An ARPA model in lmbench's trie layout, over the ARPA file's own word ids.

    Word ids 0..U-1 are the file's unigrams other than ``<s>``, in file order; ``<s>`` is U (the
    ``bos_id`` of :class:`NGramCounts`). ``trie.keys[k]`` are the sorted k-gram keys,
    ``logp[k]`` their natural-log probabilities and ``bow[k + 1]`` their natural-log backoff
    weights (0 where the file lists none).
    """

    def __init__(self, words: list[str], trie: NGramCounts, logp: list, bow: list):
        self.words, self.trie, self.logp, self.bow = words, trie, logp, bow
        self.order = trie.order
        self.index = {w: i for i, w in enumerate(words)}

    @property
    def eos_id(self) -> int:
        return self.index[EOS_WORD]

    def n_entries(self) -> int:
        return len(self.words) + 1 + sum(self.trie.keys[k].size for k in range(2, self.order + 1))

    def state_dict(self) -> dict:
        state = {"arpa.words": list(self.words), "arpa.order": int(self.order), "arpa.logp.1": self.logp[1]}
        for k in range(2, self.order + 1):
            state[f"arpa.keys.{k}"], state[f"arpa.logp.{k}"] = self.trie.keys[k], self.logp[k]
            state[f"arpa.bow.{k}"] = self.bow[k]
        return state

    @classmethod
    def from_state(cls, state: dict) -> "ArpaTables":
        words, order = list(state["arpa.words"]), int(state["arpa.order"])
        trie = NGramCounts(order, len(words))
        trie.keys[1] = np.arange(trie.base, dtype=np.int64)
        logp, bow = [None, np.asarray(state["arpa.logp.1"])], [None, None]
        for k in range(2, order + 1):
            trie.keys[k] = np.asarray(state[f"arpa.keys.{k}"])
            logp.append(np.asarray(state[f"arpa.logp.{k}"]))
            bow.append(np.asarray(state[f"arpa.bow.{k}"]))
        return cls(words, trie, logp, bow)


def _open_text(path: Path) -> str:
    """The text of an ARPA file (``.gz``: decompressed); only regular files are read (see read_text_bytes)."""
    data = read_text_bytes(path)
    try:
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        return data.decode("utf-8")
    except (OSError, EOFError, zlib.error) as exc:
        raise LmbenchError(f"cannot read ARPA file {path}: not a valid gzip file ({exc}); decompress it or "
                           f"rename it without .gz") from None
    except UnicodeDecodeError as exc:
        raise LmbenchError(f"cannot read ARPA file {path}: not UTF-8 (byte 0x{data[exc.start:exc.start + 1].hex()} "
                           f"at offset {exc.start}); convert it to UTF-8") from None


def _section(text: str, k: int, start: int, path) -> tuple[str, int, int]:
    """(body, end offset, file line number of the body's first line) of the ``\\k-grams:`` section after ``start``."""
    marker = f"\\{k}-grams:"
    at = text.find(marker, start)
    if at < 0:
        raise LmbenchError(f"{path}: the ARPA header announces {k}-grams but there is no {marker} section")
    begin = text.find("\n", at) + 1
    end = text.find("\n\\", begin - 1)
    end = len(text) if end < 0 else end
    return text[begin:end], end, text.count("\n", 0, begin) + 1


def _row_location(path, k: int, body: str, first_line: int, row: int) -> str:
    """``path, \\k-grams: section, line N ('the line')`` for the row-th non-blank line of a section (error path)."""
    rows = (item for item in enumerate(body.split("\n"), start=first_line) if item[1].strip())
    number, line = next(itertools.islice(rows, row, None), (first_line, ""))
    shown = line.strip() if len(line) <= 80 else line.strip()[:77] + "..."
    return f"{path}, \\{k}-grams: section, line {number} ({shown!r})"


def _parse_rows(body: str, k: int, path, first_line: int = 1) -> tuple[np.ndarray, list, np.ndarray]:
    """(log10 probabilities, k word columns, log10 backoff weights with 0 where absent) of a section.

    Raises:
        LmbenchError: a malformed line, or a value no ARPA model can hold (see :func:`_check_values`),
            naming the file, section and line.
    """
    if not body.strip():
        return np.zeros(0), [pd.Series([], dtype=object)] * k, np.zeros(0)
    names = list(range(k + 2))
    try:
        # words stay strings ("NA", "nan" and "null" are words); only an absent backoff weight is missing
        rows = pd.read_csv(io.StringIO(body), sep=r"\s+", header=None, names=names,
                           dtype={**{j: str for j in range(1, k + 1)}, 0: np.float64, k + 1: np.float64},
                           quoting=csv.QUOTE_NONE, keep_default_na=False, na_values={k + 1: [""]},
                           engine="c", skip_blank_lines=True)
    except (pd.errors.ParserError, ValueError) as exc:
        detail = " ".join(str(exc).split())
        raise LmbenchError(f"{path}: malformed {k}-gram section starting at line {first_line} (expected: log10 "
                           f"probability, {k} words, optional backoff weight): {detail}") from None
    probs, bows = rows[0].to_numpy(dtype=np.float64), rows[k + 1].to_numpy(dtype=np.float64)
    short = np.flatnonzero((rows[k] == "").to_numpy())
    if short.size:
        raise LmbenchError(f"{_row_location(path, k, body, first_line, int(short[0]))}: fewer than {k} words")
    _check_values(probs, bows, lambda row: _row_location(path, k, body, first_line, row))
    escaped = "<U+" in body
    words = [rows[j].map(unescape_token) if escaped else rows[j] for j in range(1, k + 1)]
    return probs, words, np.nan_to_num(bows, nan=0.0)


def _check_values(log10_p: np.ndarray, log10_bow: np.ndarray, where) -> None:
    """Refuse a log10 probability that is not finite or is above 0, or an infinite backoff weight.

    ``log10_bow`` is NaN where a line lists no backoff weight. ``where(row)`` names a row's line.
    A log10 probability above 0 (a probability above 1) would give a perplexity below 1.
    """
    bad_p = ~np.isfinite(log10_p) | (log10_p > 0)
    bad_b = np.isinf(log10_bow)
    if not (bad_p.any() or bad_b.any()):
        return
    row = int(np.flatnonzero(bad_p | bad_b)[0])
    if bad_p[row]:
        problem = "not a finite number" if not np.isfinite(log10_p[row]) else "above 0 (a probability above 1)"
        what = f"log10 probability {log10_p[row]:g} is {problem}"
    else:
        what = f"backoff weight {log10_bow[row]:g} is not a finite number"
    raise LmbenchError(f"{where(row)}: {what}; an ARPA file must list finite log10 probabilities <= 0 and finite "
                       f"backoff weights: fix the tool that wrote it, or rebuild the model")


def _check_count(found: int, announced: dict, k: int, path) -> None:
    if found != announced[k]:
        raise LmbenchError(f"{path}: the \\data\\ header announces {announced[k]} {k}-grams but the "
                           f"section lists {found}")


def read_arpa(path) -> ArpaTables:
    """Parse an ARPA file (optionally .gz) into :class:`ArpaTables` (vectorized, one pass per order)."""
    path = Path(path)
    text = _open_text(path)
    announced, position = _read_header(text, path)
    order = max(announced)
    words, p1, b1, position = _read_unigrams(text, position, announced, path)
    trie = NGramCounts(order, len(words))
    trie.keys[1] = np.arange(trie.base, dtype=np.int64)
    logp, bow, prev_bow = [None, p1], [None, None], b1
    index = pd.Index(words + [BOS_WORD])
    dropped = 0
    for k in range(2, order + 1):
        body, position, first_line = _section(text, k, position, path)
        probs, columns, bows = _parse_rows(body, k, path, first_line)
        _check_count(probs.size, announced, k, path)
        ids = np.stack([index.get_indexer(column) for column in columns], axis=1).astype(np.int64)
        prefix = _prefix_nodes(trie, ids, k)
        ok = (prefix >= 0) & (ids[:, k - 1] >= 0)
        dropped += int((~ok).sum())
        keys = prefix[ok] * trie.base + ids[ok, k - 1]
        sort = np.argsort(keys, kind="stable")
        trie.keys[k] = keys[sort]
        if keys.size > 1 and (np.diff(trie.keys[k]) == 0).any():
            raise LmbenchError(f"{path}: a {k}-gram is listed twice")
        logp.append(probs[ok][sort] * LN10)
        bow.append(prev_bow)                         # backoff weights of the (k-1)-grams as contexts
        prev_bow = bows[ok][sort] * LN10
    if dropped:
        one_line_warning(f"{path}: {dropped} n-grams skipped (a word missing from the unigrams, or a prefix "
                         f"not listed as an n-gram)")
    return ArpaTables(words, trie, logp, bow)


def _read_header(text: str, path) -> tuple[dict, int]:
    """The ``ngram k=count`` lines of the \\data\\ header, and where the 1-grams start."""
    start = text.find("\\data\\")
    if start < 0:
        raise LmbenchError(f"{path} is not an ARPA file (no \\data\\ line)")
    header_end = text.find("\\1-grams:", start)
    announced = {int(k): int(n) for k, n in re.findall(r"ngram\s+(\d+)\s*=\s*(\d+)", text[start:header_end])}
    if not announced or sorted(announced) != list(range(1, max(announced) + 1)):
        raise LmbenchError(f"{path}: the \\data\\ header must list ngram 1=.. up to the model order")
    return announced, header_end


def _read_unigrams(text: str, position: int, announced: dict, path):
    """(words without <s>, natural-log p with -inf for <s> last, natural-log backoff weights, next position)."""
    body, position, first_line = _section(text, 1, position, path)
    log10_p, columns, log10_b = _parse_rows(body, 1, path, first_line)
    _check_count(log10_p.size, announced, 1, path)
    unigram_words = columns[0].tolist()
    if BOS_WORD not in unigram_words or EOS_WORD not in unigram_words:
        raise LmbenchError(f"{path}: an ARPA model must list <s> and </s> as unigrams")
    if len(set(unigram_words)) != len(unigram_words):
        raise LmbenchError(f"{path}: a unigram is listed twice")
    bos_row = unigram_words.index(BOS_WORD)
    keep = np.array([w != BOS_WORD for w in unigram_words])
    words = [w for w in unigram_words if w != BOS_WORD]
    p1 = np.append(log10_p[keep] * LN10, -np.inf)                  # <s> is never predicted
    b1 = np.append(log10_b[keep], log10_b[bos_row]) * LN10
    return words, p1, b1, position


def _prefix_nodes(trie: NGramCounts, ids: np.ndarray, k: int) -> np.ndarray:
    """Trie id of the first k-1 words of each k-gram row of word ids (-1 where a prefix is not listed)."""
    node = ids[:, 0]
    for j in range(2, k):
        known = (node >= 0) & (ids[:, j - 1] >= 0)
        node = np.where(known, trie.lookup(j, np.maximum(node, 0), np.maximum(ids[:, j - 1], 0)), -1)
    return node


def context_limits(lost: np.ndarray, is_eos: np.ndarray) -> np.ndarray:
    """Highest n-gram order usable at each position 0..N of a token sequence (N: the token after it).

    An n-gram may not span a word that the model lacks: after such a word at position p, the
    token at i > p on the same line is scored with order at most i - p (the contexts holding the
    word are not listed, so their backoff weight is 1). No limit (the int64 maximum) where no such
    word precedes on the line.

    Args:
        lost: bool (N,), True where a word is missing from the model.
        is_eos: bool (N,), True at end-of-line tokens.

    Returns:
        int64 array (N + 1,).
    """
    pos = np.arange(lost.size + 1)                                   # (N + 1,)

    def last_before(mask):     # position of the last True strictly before each position, -1 if none
        return np.concatenate(([-1], np.maximum.accumulate(np.where(mask, pos[:-1], -1))))

    prev_lost, prev_eos = last_before(lost), last_before(is_eos)
    return np.where(prev_lost > prev_eos, pos - prev_lost, np.iinfo(np.int64).max)


class ArpaModel(LanguageModel):
    """A back-off n-gram model read from an ARPA file (KenLM's lmplz, SRILM's ngram-count, lmbench).

    ``fit`` ignores the training data: it reads the file and maps the run's vocabulary onto the
    ARPA words by spelling (``</s>`` is the run's end-of-line token, ``<s>`` its start context,
    whitespace escaped as :func:`escape_token` does). Scoring follows lmbench's contract: one
    ``<s>`` of context per line, every token and one end of line predicted, standard ARPA backoff.

    Tokens of the run's vocabulary that the ARPA file lacks stand for the file's ``<unk>``, as in
    KenLM and SRILM: scored with its probability, and as context matched like ``<unk>``. If the
    file has no ``<unk>``, such a token gets probability zero, and as context it matches no
    n-gram: the tokens after it back off past it (:func:`context_limits`), never to another word.
    ``fitted_summary()`` counts the missing tokens.

    The model is ``comparable`` unless two tokens of the run's vocabulary map to one ARPA word
    (missing tokens sharing ``<unk>`` with each other or with the run's own ``<unk>``): its scores
    over the run's vocabulary then sum to more than one, so no perplexity is reported. An ARPA
    model over a larger vocabulary sums to at most one over the run's tokens, which is fair to it.

    Args:
        path: the ARPA file (``.gz`` allowed; ``~`` is expanded).
        unk_word: the ARPA word that the run's ``<unk>`` token stands for. Default ``<unk>``;
            for a KenLM model of PTB built with PTB's ``<unk>`` renamed to an ordinary word (lmplz
            refuses a literal ``<unk>`` in its input), give that word.
    """

    family = "n-gram"

    def __init__(self, path: str = "", unk_word: str = UNK_WORD):
        self.path = path
        self.unk_word = unk_word

    def check_params(self):
        if not isinstance(self.path, (str, Path)) or not str(self.path):
            raise LmbenchError("an ARPA model needs a file: arpa:path/to/model.arpa")
        path = expand_path(self.path)
        if not path.exists():
            raise LmbenchError(f"ARPA file not found: {self.path}; check the path given after arpa:")
        if not path.is_file():
            raise LmbenchError(f"ARPA file {self.path} is not a regular file; give an .arpa or .arpa.gz file")
        if not isinstance(self.unk_word, str) or not self.unk_word or self.unk_word in (BOS_WORD, EOS_WORD):
            raise LmbenchError(f"ArpaModel unk_word must be a word other than <s> and </s>, got {self.unk_word!r}")

    def fit(self, train_ids=None, valid_ids=None, *, vocab: Vocabulary) -> "ArpaModel":
        self.check_params()
        self.vocab_ = vocab
        self.tables_ = read_arpa(expand_path(self.path))
        self._map_vocab()
        return self

    @property
    def order(self) -> int:
        return self.tables_.order

    # ------------------------------------------------------------ comparability, from the fitted state

    @property
    def comparable(self) -> bool:
        """False when two run tokens share one ARPA word (scores then sum to more than one); True before fit."""
        return getattr(self, "n_shared_", 0) == 0

    @property
    def not_comparable_reason(self) -> str:
        if self.comparable:
            return ""
        return (f"{self.n_shared_} of the run's {len(self.vocab_)} vocabulary tokens share an ARPA word with another "
                f"token ({self.n_missing_} are not in the file and are scored with its <unk> probability), so its "
                f"scores are not a distribution over the run's vocabulary")

    # ------------------------------------------------------------ vocabulary mapping

    def _map_vocab(self) -> None:
        """Map every run token id (and ``<s>``) to an ARPA word id: missing words to ``<unk>``, else -1."""
        tables, vocab = self.tables_, self.vocab_
        # the tables hold unescaped words; an ordinary word spelled </s> is not the file's end of sentence
        wanted = [None if w == EOS_WORD else w for w in vocab.itos]
        wanted[vocab.eos_id] = EOS_WORD
        wanted[vocab.unk_id] = unescape_token(self.unk_word)
        mapped = np.array([tables.index.get(w, -1) for w in wanted] + [len(tables.words)], dtype=np.int64)
        missing = mapped[:-1] < 0
        self.n_missing_ = int(missing.sum())
        self.missing_examples_ = [vocab.itos[i] for i in np.flatnonzero(missing)[:5]]
        self.to_arpa_ = np.where(mapped >= 0, mapped, tables.index.get(UNK_WORD, -1))     # (V + 1,)
        targets = self.to_arpa_[:-1][self.to_arpa_[:-1] >= 0]
        self.n_shared_ = int(targets.size - np.unique(targets).size)

    def _arpa_query(self, arpa_ids: np.ndarray, query_fn):
        """Run a trie query on ARPA ids whose -1 entries (missing, no ``<unk>``) never enter an n-gram.

        They are replaced by ``<s>`` (any id but ``</s>`` would do: it must not end a line), and the
        orders that would span them are cut off with :func:`context_limits`.
        """
        tables = self.tables_
        lost = arpa_ids < 0
        query = query_fn(np.where(lost, tables.trie.bos_id, arpa_ids), tables.eos_id)
        return query, context_limits(lost, arpa_ids == tables.eos_id)

    def logprobs(self, ids) -> np.ndarray:
        arpa_ids = self.to_arpa_[np.asarray(ids, dtype=np.int64)]                   # (N,)
        query, limits = self._arpa_query(arpa_ids, self.tables_.trie.query_split)
        query.max_order = np.minimum(query.max_order, limits[:-1])
        out = backoff_logprob(query, self.tables_.logp, self.tables_.bow)
        out[arpa_ids < 0] = -np.inf                 # missing from the file, which has no <unk> either
        return out

    def next_logprobs(self, history) -> np.ndarray:
        arpa_history = self.to_arpa_[np.asarray(history, dtype=np.int64)]          # (H,)
        query, limits = self._arpa_query(arpa_history, self.tables_.trie.query_next)
        query.max_order = np.minimum(query.max_order, limits[-1])
        scores = backoff_logprob(query, self.tables_.logp, self.tables_.bow)        # (U + 1,)
        targets = self.to_arpa_[: len(self.vocab_)]
        return np.where(targets >= 0, scores[np.maximum(targets, 0)], -np.inf)

    @property
    def n_params(self) -> int:
        return self.tables_.n_entries()

    def fitted_summary(self) -> dict:
        return {"arpa_file": str(self.path), "order": int(self.order), "arpa_unigrams": len(self.tables_.words) + 1,
                "vocab_tokens_missing": self.n_missing_, "missing_examples": self.missing_examples_}

    def state_dict(self) -> dict:
        return self.tables_.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.tables_ = ArpaTables.from_state(state)
        self._map_vocab()
