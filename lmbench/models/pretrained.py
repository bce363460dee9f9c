"""A pretrained causal LM (Hugging Face transformers, Wolf et al. 2020) as a model of a run: scored, never fitted.

It reads a split's lines as one stream, each line followed by one "\\n", with its own fast tokenizer;
the first token is predicted from the tokenizer's BOS (else EOS) alone, and the stream is read
through sliding windows of ``context`` tokens moved ``stride`` at a time, each window scoring only
tokens no window scored before. That is lm-evaluation-harness's ``loglikelihood_rolling`` (Gao et
al., "A framework for few-shot language model evaluation") with ``max_length = context`` and
``context_len = context - stride + 1``, and the strided perplexity of the transformers docs. Every
own token belongs to the line in which it ends, so per-line sums and bits per byte compare with the
other models of a run. ``import lmbench.models.pretrained`` imports neither torch nor transformers.
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from ..data.hf_corpora import HF_EXTRA, first_line, hub_cache, hub_offline_reason, offline_hub
from ..errors import LmbenchError, check_bool, check_choice, check_int
from ..files import expand_path
from ..data.dataset import HeldOut
from ..scoring.splits import SplitScores
from .base import LanguageModel

if TYPE_CHECKING:
    import torch

#: what ``dtype`` can name: float32 weights and activations, or the checkpoint's own dtype.
DTYPES = ("float32", "model")
#: what ``device`` can name (as :func:`lmbench.models.neural.devices.select_device`).
DEVICES = ("auto", "cpu", "cuda", "mps")
#: ``context=None`` takes the model's maximum positions up to this many tokens (logits of a window are
#: ``context x V`` floats: 2048 x 128k x 4 bytes is 1 GiB).
MAX_DEFAULT_CONTEXT = 2048
#: bytes per parameter of the safetensors dtypes.
SAFETENSORS_BYTES = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2,
                     "U16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I8": 1, "U8": 1, "BOOL": 1}
#: weight files, by preference: transformers loads safetensors when there are any, else the others.
WEIGHT_PATTERNS = (("*.safetensors",), ("pytorch_model*.bin", "*.pt", "*.pth"))
#: the literal unknown-word token of pre-tokenized corpora (PTB, WikiText), text to a pretrained model.
UNK_TEXT = "<unk>"
#: the code points Python's str.isspace() calls whitespace, but the line end: a tokenizer may leave them out
#: of every token (spaces between words), never a line end, which every model of a run scores.
_WHITESPACE = np.array([c for c in range(0x3001) if chr(c).isspace() and c != ord("\n")], dtype=np.uint32)


class PretrainedLM(LanguageModel):
    """A Hugging Face causal LM scored on the run's text with its own tokenizer (``hf:NAME_OR_PATH``).

    ``fit`` only loads the model and tokenizer (the training ids are ignored: it is never trained);
    :meth:`score_split` scores the split's lines (:meth:`score_lines` any lines) and returns
    log-probabilities of its *own* tokens with per-line offsets (``own_tokens=True``): compare it with
    the run's models by bits per byte, never by per-token perplexity. Its state is nothing: a
    checkpoint names the model, which is loaded again from ``name_or_path``.

    Args:
        name_or_path: a folder written by ``save_pretrained`` (model and tokenizer) or a hub name
            (``gpt2``, ``EleutherAI/pythia-70m``), read from the Hugging Face cache, downloaded where the
            network allows. Remote code is never run.
        context: tokens per window, the most a prediction sees; None: the model's maximum positions, at
            most :data:`MAX_DEFAULT_CONTEXT`.
        stride: positions a window moves, 1 <= stride <= context; None: ``max(1, context // 2)``. A token
            past the first window sees at least ``min_context = context - stride + 1`` tokens before it (the
            first window's tokens all that precede them); ``stride=context`` is lm-eval's default
            (disjoint windows, ``context_len=1``), ``stride=1`` gives every token a full window.
        batch_size: windows per forward pass (memory and speed only: about ``batch_size x stride x V``
            logits are held at once, all of a window's on models that cannot keep only the last ones).
        device: "auto" (CUDA, else MPS, else CPU), "cpu", "cuda" or "mps".
        dtype: "float32" (weights and activations; log-softmax is float32 either way) or "model", the
            checkpoint's own dtype (bfloat16 for most recent LMs: half the memory, slightly other scores).
        revision: a hub revision (branch, tag or commit); None: the default branch.
        local_files_only: True: never contact the hub (the cache or a folder only); None: contact it
            unless ``HF_HUB_OFFLINE`` is set or it cannot be reached.
        progress: a bar of tokens scored where it can be seen; False: none.
    """

    family = "pretrained"
    stochastic = False
    trains_collectively = False

    def __init__(self, name_or_path: str, context: int | None = None, stride: int | None = None,
                 batch_size: int = 4, device: str = "auto", dtype: str = "float32", revision: str | None = None,
                 local_files_only: bool | None = None, progress: bool = True):
        self.name_or_path = name_or_path
        self.context = context
        self.stride = stride
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self.revision = revision
        self.local_files_only = local_files_only
        self.progress = progress

    # ------------------------------------------------------------ parameters

    def check_params(self) -> None:
        if not isinstance(self.name_or_path, (str, os.PathLike)) or not str(self.name_or_path):
            raise LmbenchError(f"name_or_path must name a model folder or hub model, got {self.name_or_path!r}")
        if self.context is not None:
            check_int("context", self.context, 1)
        if self.stride is not None:
            check_int("stride", self.stride, 1)
            if self.context is not None and self.stride > self.context:
                raise LmbenchError(f"stride must be at most context ({self.context}), got {self.stride}: windows "
                                   f"would skip tokens; use stride <= context")
        check_int("batch_size", self.batch_size, 1)
        check_choice("device", self.device, DEVICES)
        check_choice("dtype", self.dtype, DTYPES)
        if self.revision is not None and (not isinstance(self.revision, str) or not self.revision):
            raise LmbenchError(f"revision must be a hub branch, tag or commit, got {self.revision!r}")
        if self.local_files_only is not None:
            check_bool("local_files_only", self.local_files_only)
        check_bool("progress", self.progress)

    # ------------------------------------------------------------ loading

    def fit(self, train_ids: np.ndarray, valid_ids: np.ndarray | None = None, *, vocab) -> "PretrainedLM":
        """Load the model and its tokenizer; the training ids are ignored (a pretrained model is not trained)."""
        self.check_params()
        self._load()
        self.vocab_ = vocab
        return self

    @classmethod
    def from_payload(cls, payload: dict) -> "PretrainedLM":
        """A saved run's model: its parameters from the checkpoint, the model itself loaded again."""
        model = super().from_payload(payload)
        model.check_params()
        model._load()
        return model

    def _load(self) -> None:
        """Find, check and load the tokenizer and the model (one-line errors before any weight is read)."""
        transformers = _import_transformers(self.name_or_path)
        import torch

        from .neural.devices import select_device

        self.device_ = select_device(self.device)
        where, local_only, offline = self._locate()
        options = {"revision": self.revision, "local_files_only": local_only, "trust_remote_code": False}
        with offline_hub(local_only), _quiet_transformers(transformers):
            config = self._config(transformers, where, options, offline)
            tokenizer = self._tokenizer(transformers, where, options)
            self._windows(max_positions(config, tokenizer))
            check_memory(self.name_or_path, weight_summary(where, local_only, self.revision, config),
                         self.dtype, self.device_)
            try:
                model = transformers.AutoModelForCausalLM.from_pretrained(
                    where, config=config, dtype=torch.float32 if self.dtype == "float32" else "auto", **options)
            except (OSError, ValueError) as exc:
                raise LmbenchError(f"hf:{self.name_or_path}: the model's weights cannot be loaded "
                                   f"({first_line(exc)}); save them with model.save_pretrained(FOLDER)") from None
        self.model_ = model.to(self.device_).eval()
        self.tokenizer_ = tokenizer
        self.prefix_id_ = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        self.keeps_logits_ = "logits_to_keep" in inspect.signature(self.model_.forward).parameters
        self.n_params_ = int(sum(p.numel() for p in self.model_.parameters()))
        local = Path(where).is_dir()
        snapshot = None if local else _cached_snapshot(where, self.revision)
        self.source_ = {"model_source": where if local else f"hub:{where}",
                        "model_revision": snapshot.name if snapshot is not None else self.revision,
                        "transformers": transformers.__version__, "tokenizer": type(tokenizer).__name__,
                        "own_vocab_size": len(tokenizer)}
        self.text_unk_literal_ = False
        self.own_unk_tokens_ = self.lost_chars_ = 0

    def _windows(self, positions: int | None) -> None:
        """``context_`` and ``stride_`` from the parameters and the model's positions (None: unknown)."""
        if self.context is not None and positions is not None and self.context > positions:
            raise LmbenchError(f"context {self.context} exceeds hf:{self.name_or_path}'s {positions} positions; "
                               f"use context <= {positions}")
        self.max_positions_ = positions
        self.context_ = self.context or min(positions or MAX_DEFAULT_CONTEXT, MAX_DEFAULT_CONTEXT)
        self.stride_ = self.stride or max(1, self.context_ // 2)
        if self.stride_ > self.context_:
            raise LmbenchError(f"stride must be at most context ({self.context_}), got {self.stride_}: windows "
                               f"would skip tokens; use stride <= context")

    def _locate(self) -> tuple[str, bool, str]:
        """(what from_pretrained reads, local only, why offline): a folder here, or a hub name."""
        name = str(self.name_or_path)
        path = expand_path(name)
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise LmbenchError(f"hf:{name}: {path} is a folder but not a saved model (no config.json); save one "
                                   f"there with model.save_pretrained(FOLDER) and tokenizer.save_pretrained(FOLDER)")
            return str(path.resolve()), True, ""
        if path.exists():
            raise LmbenchError(f"hf:{name}: {path} is a file; hf: takes a folder written by save_pretrained or a "
                               f"hub model name")
        if name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1:
            raise LmbenchError(f"hf:{name}: model folder not found: {path}")
        offline = hub_offline_reason(self.local_files_only)
        return name, bool(offline), offline

    def _config(self, transformers, where: str, options: dict, offline: str):
        """The model's config, checked to be a causal LM (one-line errors for unknown names and non-models)."""
        name = self.name_or_path
        try:
            config = transformers.AutoConfig.from_pretrained(where, **options)
        except OSError as exc:
            if Path(where).is_dir():
                raise LmbenchError(f"hf:{name}: {where} holds no readable model config ({first_line(exc)})") from None
            if offline:
                raise LmbenchError(f"hf:{name}: no folder {name!r} here, and {name!r} is not in the Hugging Face "
                                   f"cache ({hub_cache()}) while the hub is offline ({offline}); download it where "
                                   f"the network allows (huggingface-cli download {name}) or give a folder "
                                   f"written by save_pretrained") from None
            raise LmbenchError(f"hf:{name}: no folder {name!r} here and no model {name!r} on the Hugging Face hub "
                               f"({first_line(exc)}); check the name, or give a folder written by "
                               f"save_pretrained") from None
        except ValueError as exc:
            raise LmbenchError(f"hf:{name}: not a model transformers knows ({first_line(exc)})") from None
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        if getattr(config, "model_type", None) not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            raise LmbenchError(f"hf:{name}: a {getattr(config, 'model_type', '?')} model is not a causal LM that "
                               f"transformers' AutoModelForCausalLM loads; give a decoder (GPT-2, Llama, Pythia, ...)")
        return config

    def _tokenizer(self, transformers, where: str, options: dict):
        """The model's fast tokenizer (offsets are needed to give every token to its line)."""
        name = self.name_or_path
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(where, use_fast=True, **options)
        except (OSError, ValueError, TypeError, KeyError, AttributeError, ImportError) as exc:
            raise LmbenchError(f"hf:{name}: no usable tokenizer ({first_line(exc)}); save the model's tokenizer "
                               f"in its folder with tokenizer.save_pretrained(FOLDER)") from None
        if not getattr(tokenizer, "is_fast", False):
            raise LmbenchError(f"hf:{name}: its tokenizer ({type(tokenizer).__name__}) has no fast version; lmbench "
                               f"needs a fast (tokenizers) one for the character offsets that give each token to "
                               f"its line: save a tokenizer.json (PreTrainedTokenizerFast) with the model")
        if not tokenizer("Hello, world.\n", add_special_tokens=False, verbose=False)["input_ids"]:
            raise LmbenchError(f"hf:{name}: its tokenizer turns text into no tokens (an empty vocabulary: no "
                               f"tokenizer files with the model?); save the model's tokenizer in its folder with "
                               f"tokenizer.save_pretrained(FOLDER)")
        if tokenizer.bos_token_id is None and tokenizer.eos_token_id is None:
            raise LmbenchError(f"hf:{name}: its tokenizer has neither a BOS nor an EOS token to predict the first "
                               f"token from; set one (tokenizer.bos_token = ...) and save it again")
        return tokenizer

    # ------------------------------------------------------------ scoring

    def score_split(self, split: HeldOut) -> SplitScores:
        """The split's lines scored with the model's own tokens (``own_tokens=True``), see :meth:`score_lines`."""
        return self.score_lines(list(split.lines), desc=split.name)

    def score_lines(self, lines: list[str], desc: str = "") -> SplitScores:
        """Log-probabilities of the own tokens of ``lines`` read as one stream, each line followed by "\\n".

        Args:
            lines: lines of text without their ends.
            desc: what the progress bar calls them.

        Returns:
            SplitScores over own tokens: ``logprobs`` (M,) float64, ``line_offsets`` (L+1,) (a token
            belongs to the line in which it ends; one spanning a line end to the later line).
        """
        self._check_loaded()
        lines = [str(line) for line in lines]
        text = "".join(line + "\n" for line in lines)
        self.text_unk_literal_ = self.text_unk_literal_ or UNK_TEXT in text
        ids, offsets = self.encode(text)  # (M,), (M, 2)
        self._check_tokens(text, ids, offsets, desc)
        ends = offsets[:, 1]  # (M,)
        line_ends = np.cumsum([len(line) + 1 for line in lines], dtype=np.int64)  # (L,) exclusive, in characters
        token_line = np.searchsorted(line_ends, np.maximum(ends - 1, 0), side="right")  # (M,)
        token_line = np.maximum.accumulate(np.minimum(token_line, max(len(lines) - 1, 0))) if ids.size else token_line
        line_offsets = np.searchsorted(token_line, np.arange(len(lines) + 1), side="left").astype(np.int64)  # (L+1,)
        return SplitScores(self.rolling_logprobs(ids, desc=desc), line_offsets, own_tokens=True)

    def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Own token ids of ``text`` (M,), no special tokens added, and their (start, end) character offsets (M, 2)."""
        self._check_loaded()
        encoding = self.tokenizer_(text, add_special_tokens=False, return_offsets_mapping=True,
                                   return_attention_mask=False, verbose=False)
        ids = np.asarray(encoding["input_ids"], dtype=np.int64).reshape(-1)  # (M,)
        offsets = np.asarray(encoding["offset_mapping"], dtype=np.int64).reshape(-1, 2)  # (M, 2)
        return ids, offsets

    def _check_tokens(self, text: str, ids: np.ndarray, offsets: np.ndarray, desc: str) -> None:
        """Refuse ids the model has no embedding for; count (and warn of) text the tokenizer loses.

        Characters in no token (whitespace aside, but not line ends) and the tokenizer's unknown tokens carry
        nothing the model is scored on: its bits per byte would understate the text's information.
        """
        rows = self.model_.get_input_embeddings().num_embeddings
        if ids.size and int(ids.max()) >= rows:
            raise LmbenchError(f"hf:{self.name_or_path}: its tokenizer gives id {int(ids.max())}, beyond the model's "
                               f"{rows} embeddings: tokenizer and model do not belong together")
        unk = self.tokenizer_.unk_token_id
        special = (self.tokenizer_.bos_token_id, self.tokenizer_.eos_token_id)  # GPT-2's unk is its EOS
        n_unk = int(np.count_nonzero(ids == unk)) if unk is not None and unk not in special else 0
        n_chars = len(text)
        depth = np.cumsum(np.bincount(offsets[:, 0], minlength=n_chars + 1)[:n_chars + 1]
                          - np.bincount(offsets[:, 1], minlength=n_chars + 1)[:n_chars + 1])[:n_chars]  # (C,)
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)  # (C,)
        n_lost = int(np.count_nonzero((depth <= 0) & ~np.isin(codes, _WHITESPACE)))
        self.own_unk_tokens_ += n_unk
        self.lost_chars_ += n_lost
        if n_unk or n_lost:
            warnings.warn(f"hf:{self.name_or_path}'s tokenizer loses part of the {desc or 'scored'} text ({n_lost} "
                          f"characters in no token, {n_unk} unknown tokens): its bits per byte understate the "
                          f"text's information", stacklevel=3)

    def rolling_logprobs(self, ids: np.ndarray, desc: str = "") -> np.ndarray:
        """Log-probability of every own token of a stream (M,) float64, the first given the prefix token alone.

        Windows (:func:`window_plan`) of ``min(M, context_)`` inputs ``[prefix, x0, ..., x_{M-2}]``, batched
        ``batch_size`` at a time; each scores its last ``n_scored`` positions.
        """
        import torch

        from .neural.devices import deterministic_kernels
        from .neural.progress import token_bar

        self._check_loaded()
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        out = np.empty(ids.size, dtype=np.float64)
        if not ids.size:
            return out
        targets = torch.as_tensor(ids, device=self.device_)  # (M,)
        inputs = torch.cat([torch.tensor([self.prefix_id_], device=self.device_), targets[:-1]])  # (M,)
        starts, n_scored, length = window_plan(ids.size, self.context_, self.stride_)
        steps = torch.arange(length, device=self.device_)  # (T,)
        done = 0
        label = f"[{self.label or 'hf:' + str(self.name_or_path)}]" + (f" {desc}" if desc else "")
        with torch.inference_mode(), deterministic_kernels(self.device_), \
                token_bar(ids.size, label, self.progress) as bar:
            for first in range(0, starts.size, self.batch_size):
                batch_starts = torch.as_tensor(starts[first:first + self.batch_size], device=self.device_)  # (b,)
                batch_scored = torch.as_tensor(n_scored[first:first + self.batch_size], device=self.device_)  # (b,)
                index = batch_starts[:, None] + steps  # (b, T)
                keep = int(batch_scored.max())  # the positions any window of the batch scores: the last `keep`
                window = inputs[index]  # (b, T)
                extra = {"logits_to_keep": keep} if self.keeps_logits_ else {}
                logits = self.model_(input_ids=window, attention_mask=torch.ones_like(window), use_cache=False,
                                     **extra).logits[:, -keep:]  # (b, K, V)
                logits = logits.float()  # (b, K, V)
                wanted = targets[index[:, -keep:]]  # (b, K)
                logp = logits.gather(-1, wanted[..., None])[..., 0] - torch.logsumexp(logits, dim=-1)  # (b, K)
                scored = torch.arange(keep, device=self.device_) >= keep - batch_scored[:, None]  # (b, K)
                values = logp[scored].double().cpu().numpy()  # (m,), in stream order
                out[done:done + values.size] = values
                done += values.size
                bar.update(values.size)
        return out

    # ------------------------------------------------------------ what does not apply

    def logprobs(self, ids: np.ndarray) -> np.ndarray:
        raise LmbenchError(self._text_only("logprobs"))

    def next_logprobs(self, history: np.ndarray) -> np.ndarray:
        raise LmbenchError(self._text_only("next_logprobs"))

    def _text_only(self, what: str) -> str:
        return (f"hf:{self.name_or_path} scores text with its own tokenizer, not the run's token ids ({what}); "
                f"use score_split(split) or score_lines(lines), or `lmbench score --model hf:...` on text")

    # ------------------------------------------------------------ reporting, persistence

    @property
    def n_params(self) -> int:
        self._check_loaded()
        return self.n_params_

    def fitted_summary(self) -> dict:
        """What the row's note says: model, context, stride, min_context, dtype, token unit, literal ``<unk>``."""
        if not hasattr(self, "model_"):
            return {}
        summary = {"model": str(self.name_or_path), "context": self.context_, "stride": self.stride_,
                   "min_context": self.context_ - self.stride_ + 1, "dtype": self._dtype_text(),
                   "token_unit": f"{Path(str(self.name_or_path)).name} tokens"}
        if self.text_unk_literal_:
            summary["text_unk_literal"] = True  # PTB's <unk> is the five characters "<unk>" to this model
        if self.own_unk_tokens_:
            summary["own_unk_tokens"] = self.own_unk_tokens_
        if self.lost_chars_:
            summary["lost_chars"] = self.lost_chars_
        return summary

    def _dtype_text(self) -> str:
        dtype = str(next(self.model_.parameters()).dtype).removeprefix("torch.")
        return dtype if self.dtype == "float32" else f"{dtype} (checkpoint's)"

    def environment(self) -> dict:
        if not hasattr(self, "model_"):
            return {}
        from .neural.devices import describe_device

        return {**describe_device(self.device_), **self.source_}

    def state_dict(self) -> dict:
        """Nothing: the model is loaded again from ``name_or_path``; its weights are never saved into a run."""
        return {}

    def _check_loaded(self) -> None:
        if not hasattr(self, "model_"):
            raise LmbenchError(f"{type(self).__name__} is not loaded; call fit() first")


# ---------------------------------------------------------------- windows


def window_plan(n_positions: int, context: int, stride: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Sliding windows over a stream of N positions: (starts (W,), n_scored (W,), window length).

    Window w covers positions ``starts[w] .. starts[w] + length - 1`` and scores its last ``n_scored[w]``:
    the first window all ``min(N, context)``, each later one ``stride`` positions (the last, aligned
    with the end, what is left), so that positions 0 .. N-1 are scored once, in order. With
    ``stride=context`` these are lm-eval's ``get_rolling_token_windows(max_seq_len=context, context_len=1)``
    windows; the same as :func:`lmbench.models.neural.transformer.window_plan`.
    """
    if n_positions <= context:
        return np.zeros(1, dtype=np.int64), np.array([n_positions], dtype=np.int64), n_positions
    ends = np.append(np.arange(context, n_positions, stride, dtype=np.int64), n_positions)  # (W,) exclusive ends
    return ends - context, np.diff(ends, prepend=0), context


# ---------------------------------------------------------------- the model's size, before loading it


def max_positions(config, tokenizer) -> int | None:
    """The most positions the model reads (its config's, else its tokenizer's), or None if neither says."""
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length", "max_seq_len", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < 1_000_000 else None


def weight_summary(where: str, local_only: bool, revision: str | None, config) -> dict:
    """What the checkpoint's weight files say before they are read: {"bytes", "n_params" or None, "stored_bytes"}.

    ``stored_bytes``: bytes per parameter as stored (from safetensors headers, else the config's dtype).
    Files come from the folder (a hub model: its cached snapshot, else the hub's file list); {} if unknown.
    """
    folder = Path(where) if Path(where).is_dir() else _cached_snapshot(where, revision)
    sizes: dict[str, int] = {}
    if folder is not None:
        sizes = {p.name: p.stat().st_size for p in _weight_files(folder)}
    if not sizes and not local_only:
        sizes = _hub_weight_sizes(where, revision)
    if not sizes:
        return {}
    n_params, stored = None, _config_dtype_bytes(config)
    if folder is not None and all(name.endswith(".safetensors") for name in sizes):
        counted = [_safetensors_params(folder / name) for name in sizes]
        if all(c is not None for c in counted):
            n_params = sum(c[0] for c in counted)
            stored = sum(c[1] for c in counted) / max(n_params, 1)
    return {"bytes": int(sum(sizes.values())), "n_params": n_params, "stored_bytes": stored}


def check_memory(name: str, weights: dict, dtype: str, device: "torch.device") -> None:
    """Refuse (one line) a model whose weights, in the dtype asked for, exceed the device's available memory."""
    if not weights:
        return
    stored = weights["stored_bytes"] or 4.0
    per_param = 4.0 if dtype == "float32" else stored
    n_params = weights["n_params"] or weights["bytes"] / stored
    needed = n_params * per_param
    available = available_memory_bytes(device)
    if available is None or needed <= available:
        return
    cheaper = (f", dtype=model (its {stored:g}-byte weights: {n_params * stored / 2**30:.1f} GiB)"
               if dtype == "float32" and stored < 4 else "")
    raise LmbenchError(f"hf:{name} needs about {needed / 2**30:.1f} GiB for its weights in {dtype}, but {device} has "
                       f"{available / 2**30:.1f} GiB available; use a smaller model{cheaper} or another device")


def available_memory_bytes(device: "torch.device") -> int | None:
    """Free memory of a device: a CUDA GPU's free memory, else the machine's available RAM; None if unknown."""
    if device.type == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _weight_files(folder: Path) -> list[Path]:
    for patterns in WEIGHT_PATTERNS:
        found = sorted({p for pattern in patterns for p in folder.glob(pattern) if p.is_file()})
        if found:
            return found
    return []


def _safetensors_params(path: Path) -> tuple[int, int] | None:
    """(parameters, bytes of them) from a safetensors file's header (8-byte length, then JSON); None if unreadable."""
    try:
        with open(path, "rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if not 0 < size < 1 << 28:
                return None
            header = json.loads(handle.read(size))
        tensors = [v for k, v in header.items() if k != "__metadata__"]
        counts = [int(np.prod(t["shape"], dtype=np.int64)) for t in tensors]
        return sum(counts), sum(c * SAFETENSORS_BYTES.get(t["dtype"], 4) for c, t in zip(counts, tensors))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _config_dtype_bytes(config) -> float:
    """Bytes per parameter of the config's stored dtype (``dtype``/``torch_dtype``); 4 if it says none."""
    value = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    text = str(value).removeprefix("torch.") if value is not None else "float32"
    return {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}.get(text, 4.0)


def _cached_snapshot(repo_id: str, revision: str | None) -> Path | None:
    """The cached snapshot folder of a hub model (where its config.json lies), or None."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except Exception:  # noqa: BLE001 - a malformed name or cache: the size is just unknown
        return None
    return Path(found).parent if isinstance(found, str) else None


def _hub_weight_sizes(repo_id: str, revision: str | None) -> dict[str, int]:
    """{weight file: bytes} from the hub's file list (no weights downloaded); {} where the hub cannot say."""
    import fnmatch

    try:
        from huggingface_hub import HfApi

        info = HfApi().model_info(repo_id, revision=revision, files_metadata=True)
    except Exception:  # noqa: BLE001 - offline, gated, ...: the size is just unknown
        return {}
    sizes = {s.rfilename: s.size for s in info.siblings or [] if "/" not in s.rfilename and s.size}
    for patterns in WEIGHT_PATTERNS:
        found = {n: b for n, b in sizes.items() if any(fnmatch.fnmatch(n, p) for p in patterns)}
        if found:
            return found
    return {}


# ---------------------------------------------------------------- transformers


def _import_transformers(name):
    """The transformers module, or a one-line error naming the extra to install."""
    try:
        import transformers
    except ImportError:
        raise LmbenchError(f"hf:{name} needs the Hugging Face extra (transformers is not installed): "
                           f"{HF_EXTRA}") from None
    return transformers


@contextmanager
def _quiet_transformers(transformers) -> Iterator[None]:
    """Within the block, transformers draws no bars (loading weights) and logs only errors; restored on exit."""
    logging = transformers.utils.logging
    bars, verbosity = logging.is_progress_bar_enabled(), logging.get_verbosity()
    logging.disable_progress_bar()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        if bars:
            logging.enable_progress_bar()
        logging.set_verbosity(verbosity)
