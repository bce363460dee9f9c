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

from ..data.dataset import encode_lines, line_offsets
from ..errors import LmbenchError, is_whole
from .metrics import exp_or_inf

LN10 = math.log(10.0)


@dataclass(frozen=True)
class TextScores:
    """Scores of a text.

    Attributes:
        ids: the vocabulary id of every scored token (N,), end-of-line tokens included.
        logprobs: natural-log probability of each (N,), ``-inf`` for probability zero.
        oov: whether each token was out of the vocabulary (scored as ``<unk>``) (N,).
        line_offsets: (L+1,), line i is tokens offsets[i]:offsets[i+1].
        text_lines: the text's lines; ``tokens`` (each token as text) is made from them when asked for.
        tokenizer: the tokenizer that split them.
    """

    ids: np.ndarray
    logprobs: np.ndarray
    oov: np.ndarray
    line_offsets: np.ndarray
    text_lines: tuple = ()
    tokenizer: object = None
    own_tokens: bool = False

    @property
    def tokens(self) -> list[str]:
        """Every scored token as text, end-of-line tokens included (N,)."""
        if self.own_tokens:
            raise LmbenchError("these scores are over a pretrained model's own tokens: per-line scores and the "
                               "summary are what compare with the run's models (lines(), summary())")
        return [tok for line in self.text_lines for tok in self.tokenizer.tokenize_line(line) + [self.tokenizer.eos]]

    @property
    def n_tokens(self) -> int:
        return int(self.ids.size)

    @property
    def nll_nats(self) -> float:
        return float(-self.logprobs.sum())

    @property
    def perplexity(self) -> float:
        """exp(NLL / N) over every token, OOV tokens scored as ``<unk>`` (KenLM: "including OOVs")."""
        return exp_or_inf(self.nll_nats / self.n_tokens) if self.n_tokens else math.nan

    @property
    def perplexity_without_oov(self) -> float:
        """exp(NLL / N) over in-vocabulary tokens only (KenLM: "excluding OOVs")."""
        kept = self.logprobs[~self.oov]
        return exp_or_inf(float(-kept.sum()) / kept.size) if kept.size else math.nan

    def summary(self, name: str = "") -> str:
        """One line: lines, tokens, OOV tokens, total log-probability and perplexity with and without OOV tokens."""
        n_oov = int(self.oov.sum())
        if self.own_tokens:
            n_bytes = sum(len(line.encode("utf-8", "surrogatepass")) + 1 for line in self.text_lines)
            return (f"{name + ': ' if name else ''}{len(self.line_offsets) - 1} lines, {self.n_tokens} of its own tokens, "
                    f"ln prob {-self.nll_nats:.4f}, {self.nll_nats / (math.log(2) * n_bytes):.4f} bits per byte "
                    f"({n_bytes} bytes), perplexity {self.perplexity:.4f} over its own tokens")
        return (f"{name + ': ' if name else ''}{len(self.line_offsets) - 1} lines, {self.n_tokens} tokens ({n_oov} OOV), "
                f"ln prob {-self.nll_nats:.4f}, perplexity {self.perplexity:.4f} including OOV tokens "
                f"(scored as <unk>), {self.perplexity_without_oov:.4f} excluding them")

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


def read_text_source(file, encoding: str = "utf-8") -> str:
    """The text of a file, or of standard input for ``"-"``, decoded with one-line errors."""
    from ..data.textio import decode
    from ..files import read_text_bytes

    if str(file) == "-":
        return decode(read_stdin_bytes(), encoding, "standard input")
    return decode(read_text_bytes(file), encoding, file)


#: the longest line ``score`` reads (characters): tokens of a line are strings while it is split.
MAX_LINE_CHARS = 10_000_000


def score_lines(model, tokenizer, lines: list[str]) -> TextScores:
    """Score lines of text with a fitted model and the tokenizer of its run (nothing held per token but arrays)."""
    from ..data.dataset import encode_lines_with_oov

    if not lines:
        raise LmbenchError("the text to score is empty; give at least one line")
    longest = max(range(len(lines)), key=lambda i: len(lines[i]))
    if len(lines[longest]) > MAX_LINE_CHARS:
        raise LmbenchError(f"line {longest + 1} of the text has {len(lines[longest]):,} characters, more than the "
                           f"{MAX_LINE_CHARS:,} a line may have here; split the text into lines (scores are per line)")
    ids, oov = encode_lines_with_oov(lines, tokenizer, model.vocab_)
    offsets = line_offsets(ids, model.vocab_.eos_id)  # the end of line is structural: one per line
    logprobs = np.asarray(model.logprobs(ids), dtype=np.float64)
    return TextScores(ids, logprobs, oov, offsets, tuple(lines), tokenizer)


def score_text(model, tokenizer, text: str) -> TextScores:
    """Score a text (lines separated by newlines; a final newline does not add an empty line)."""
    from ..data.corpora import text_lines

    return score_lines(model, tokenizer, text_lines(text.replace("\r\n", "\n")))


class TextModel:
    """A fitted model with the tokenizer of its run: text in, scores and text out.

    Models see token ids only; this pairs one with the tokenizer (and so the vocabulary) it was fitted
    with, as ``lmbench.load_run(DIR).model(NAME)`` returns it. Every other attribute is the model's
    (``logprobs``, ``n_params``, ``vocab_``, ...), so it can stand in for the model itself.

    Args:
        model: a fitted :class:`lmbench.models.base.LanguageModel`.
        tokenizer: the :class:`lmbench.data.tokenizers.Tokenizer` of the run that fitted it.
    """

    def __init__(self, model, tokenizer):
        self.model = model
        self.tokenizer = tokenizer

    def __getattr__(self, name):
        if name in ("model", "tokenizer"):  # not set yet (unpickling): never recurse
            raise AttributeError(name)
        return getattr(self.model, name)

    def __repr__(self) -> str:
        return f"TextModel({type(self.model).__name__}, tokenizer={self.tokenizer.kind!r})"

    @property
    def vocab(self):
        return self.model.vocab_

    def score_text(self, text: str) -> TextScores:
        """Score new text the way a held-out split is scored (KenLM's ``query``): per token, per line, in total.

        A model with its own tokenizer (``hf:``) reads the text normalized as the run does, with its own
        tokens: its scores are per line and in total (bits per byte compare), not over the run's tokens.
        """
        self._check_unchanged()
        if hasattr(self.model, "score_lines"):
            from ..data.corpora import text_lines

            lines = [self.tokenizer.normalize_line(line) for line in text_lines(text.replace("\r\n", "\n"))]
            if not lines:
                raise LmbenchError("the text to score is empty; give at least one line")
            scores = self.model.score_lines(lines)
            return TextScores(np.zeros(scores.logprobs.size, np.int64), scores.logprobs,
                              np.zeros(scores.logprobs.size, dtype=bool), scores.line_offsets, tuple(lines),
                              self.tokenizer, own_tokens=True)
        return score_text(self.model, self.tokenizer, text)

    def _check_unchanged(self) -> None:
        check = getattr(self.model, "check_unchanged", None)
        if check is not None:
            check()

    def logscore(self, word: str, context=()) -> float:
        """log2 P(word | context) at the start of a line, as nltk.lm's ``logscore`` (``-inf`` for probability 0).

        Args:
            word: one token of the run's tokenizer (a word, a character or a subword), or ``"\\n"`` for
                the end of line; a token the vocabulary lacks is scored as ``<unk>``.
            context: the tokens before it on the same line, a string (tokenized as the run does) or a
                sequence of tokens; the model sees its start-of-line context before them.
        """
        word_id = self._token_id(word)
        self._check_unchanged()
        return float(self.model.next_logprobs(self._context_ids(context))[word_id]) / math.log(2.0)

    def score(self, word: str, context=()) -> float:
        """P(word | context) at the start of a line, as nltk.lm's ``score`` (see :meth:`logscore`)."""
        return float(2.0 ** self.logscore(word, context))

    def generate(self, prefix: str = "", length: int = 100, *, temperature: float = 1.0, top_k: int | None = None,
                 greedy: bool = False, seed: int = 0) -> str:
        """Continue a text prefix (d2l's warm-up prefix) with ``length`` sampled tokens; returns prefix + continuation.

        The prefix is tokenized and normalized as the run did; its last line continues (no end of line
        is added after it). Tokens of the prefix the vocabulary lacks are read as ``<unk>`` (a warning
        says how many). Arguments are those of :meth:`lmbench.models.base.LanguageModel.generate`.
        """
        import warnings

        if not isinstance(prefix, str):
            first = f" (the prefix comes first, then the length: generate(\"the time\", {prefix}))" \
                if is_whole(prefix) else ""
            raise LmbenchError(f"the prefix must be text, got {type(prefix).__name__}{first}; to continue token ids, "
                               f"call generate() of the model itself (.model)")
        tokenizer, vocab = self.tokenizer, self.vocab
        lines = prefix.split("\n")
        ids, n_oov = encode_lines(lines, tokenizer, vocab)
        ids = ids[:-1]  # the last line of the prefix continues: no end of line after it
        if n_oov:
            warnings.warn(f"{n_oov} prefix token(s) are not in the vocabulary and were read as <unk>", stacklevel=2)
        self._check_unchanged()
        out = self.model.generate(ids, length, temperature=temperature, top_k=top_k, greedy=greedy, seed=seed)
        shown = [tok for i, line in enumerate(lines)
                 for tok in ([tokenizer.eos] if i else []) + tokenizer.tokenize_line(line)]
        return tokenizer.detokenize(shown + vocab.decode(out)).rstrip(" ")

    def _token_id(self, word: str) -> int:
        if not isinstance(word, str):
            raise LmbenchError(f"the word to score must be text (one token), got {type(word).__name__}")
        if word == "\n":  # the end of line is structural: no spelling of a word stands for it
            return self.vocab.eos_id
        tokens = self.tokenizer.tokenize_line(word)
        if len(tokens) != 1:
            raise LmbenchError(f"{word!r} is {len(tokens)} tokens for the run's {self.tokenizer.kind} tokenizer "
                               f"({tokens[:5]}); score one token at a time (the end of line is \"\\n\")")
        return self.vocab.stoi.get(tokens[0], self.vocab.unk_id)

    def _context_ids(self, context) -> np.ndarray:
        if isinstance(context, str):
            tokens = self.tokenizer.tokenize_line(context)
        else:
            tokens = [str(t) for t in context]
        return np.array([self.vocab.stoi.get(t, self.vocab.unk_id) for t in tokens], dtype=np.int64)
