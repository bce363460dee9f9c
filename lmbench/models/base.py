"""The one interface every model implements, n-gram and neural alike.

Subclasses implement scoring (``logprobs``: the log-probability of every token of a split given all
that precedes it) and the next-token distribution (``next_logprobs``, used for sampling and for
the sums-to-one check). The base class owns the shared maths: NLL, cross-entropy, bits per token,
perplexity and the count of zero-probability tokens, written once here.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import zipfile
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import LmbenchError
from ..files import atomic_writer
from ..data.vocab import Vocabulary

#: checkpoints of arrays and plain values (every n-gram model), written and read without torch: an
#: uncompressed zip (a valid ``.npz``) of a JSON header :data:`HEADER_MEMBER` and one ``<key>.npy`` per array.
FORMAT = "lmbench-model/2"
#: checkpoints written with ``torch.save`` (tensors and plain values): states holding tensors (neural models),
#: and every checkpoint of lmbench before :data:`FORMAT`.
TORCH_FORMAT = "lmbench-model/1"
HEADER_MEMBER = "lmbench-model.json"
#: JSON has no tuples: a tuple is written as {"$tuple": [...]} so that parameters come back unchanged.
_TUPLE_TAG = "$tuple"


def _plain(value):
    """A JSON-ready copy of a plain value (None, bool, number, str, list, tuple, dict with str keys).

    Raises:
        TypeError: for anything else (a tensor, an object): such a state needs torch.save.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic) and value.dtype != object:
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return {_TUPLE_TAG: [_plain(v) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value) and set(value) != {_TUPLE_TAG}:
        return {k: _plain(v) for k, v in value.items()}
    raise TypeError(f"not a plain value: {type(value).__name__}")


def _untag(obj: dict):
    return tuple(obj[_TUPLE_TAG]) if set(obj) == {_TUPLE_TAG} else obj


def _zip_checkpoint(payload: dict, file: BinaryIO) -> None:
    """Write a :data:`FORMAT` checkpoint of a payload to ``file``, arrays streamed (memory-mapped ones included).

    Raises:
        TypeError: a non-array value of the state is not plain (before anything is written).
    """
    arrays = {key: payload["state"][key] for key in payload["numpy_keys"]}
    header = {**payload, "format": FORMAT,
              "state": {k: v for k, v in payload["state"].items() if k not in arrays}}
    text = json.dumps(_plain(header))
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(HEADER_MEMBER, text)
        for key, array in arrays.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                _write_npy(member, array)


#: entries per window when a file-backed array is streamed into a checkpoint.
STREAM_ITEMS = 1 << 20


def _is_array(value) -> bool:
    """An array a checkpoint stores as ``.npy``: a numpy array of numbers, or a file-backed array
    (an object with ``dtype``, ``size`` and ``windows(n)``, e.g. :class:`lmbench.models.ngram.ondisk.arrays.ArrayFile`)."""
    if isinstance(value, np.ndarray):
        return value.dtype != object
    return all(hasattr(value, name) for name in ("dtype", "size", "windows"))


def _write_npy(member: BinaryIO, array) -> None:
    """Write ``array`` as a ``.npy`` file; a file-backed one window by window (never read whole)."""
    if isinstance(array, np.ndarray):
        np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
        return
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(array.dtype)), "fortran_order": False,
              "shape": (int(array.size),)}
    np.lib.format.write_array_header_1_0(member, header)
    for _, values in array.windows(STREAM_ITEMS):
        member.write(np.ascontiguousarray(values).tobytes())


def _torch_checkpoint(payload: dict, file: BinaryIO) -> None:
    """Write a :data:`TORCH_FORMAT` checkpoint (``torch.save`` of tensors and plain values, arrays as tensors)."""
    import torch

    state = dict(payload["state"])
    for key in payload["numpy_keys"]:
        state[key] = torch.from_numpy(np.ascontiguousarray(state[key]))
    torch.save({**payload, "format": TORCH_FORMAT, "state": state}, file)


#: stored arrays of at least this many bytes are memory-mapped from the checkpoint rather than read, so
#: a large model (an n-gram table counted on disk) is scored without loading it whole.
MAP_BYTES = 1 << 20


def payload_from_zip(archive: zipfile.ZipFile, path: str | Path | None = None) -> dict:
    """The payload of an open :data:`FORMAT` checkpoint: its header with the arrays put back in ``state``.

    Arrays are read with ``allow_pickle=False``; nothing in the file is executed. With the archive's
    ``path``, arrays of :data:`MAP_BYTES` or more are copy-on-write memory maps of the file (members
    are stored uncompressed, see :func:`_mapped_array`). Raises ValueError, KeyError or
    zipfile.BadZipFile for a damaged file (:func:`lmbench.models.registry.load_model` reports them).
    """
    payload = json.loads(archive.read(HEADER_MEMBER), object_hook=_untag)
    if not isinstance(payload, dict) or not isinstance(payload.get("state"), dict):
        raise ValueError("the header is not a checkpoint header")
    for key in payload.get("numpy_keys", []):
        info = archive.getinfo(f"{key}.npy")
        mapped = _mapped_array(path, info) if path is not None else None
        if mapped is None:
            with archive.open(info) as member:
                mapped = np.lib.format.read_array(member, allow_pickle=False)
        payload["state"][key] = mapped
    return payload


def _mapped_array(path: str | Path, info: zipfile.ZipInfo) -> np.ndarray | None:
    """A copy-on-write memory map of a stored ``.npy`` member (None: small, compressed or of objects).

    The member's bytes start after its local file header (30 bytes, then the name and the extra
    field, whose lengths it gives); they are a ``.npy`` file whose header says dtype, shape and order.
    A map holds the file it was made from: replacing the checkpoint later (lmbench writes by rename)
    does not change a loaded model.
    """
    if info.compress_type != zipfile.ZIP_STORED or info.file_size < MAP_BYTES:
        return None
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(30)
        if local[:4] != b"PK\x03\x04":
            raise ValueError(f"member {info.filename} has no local header")
        name_length, extra_length = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
        handle.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(handle)
        offset = handle.tell()
    if dtype.hasobject:
        raise ValueError(f"member {info.filename} holds Python objects")
    return np.memmap(path, dtype=dtype, mode="c", offset=offset, shape=shape, order="F" if fortran_order else "C")


@dataclass(frozen=True)
class EvalResult:
    """Corpus-level scores of one model on one split.

    Perplexity is exp(nll_nats / n_tokens): the exponentiated mean negative log-likelihood over all
    target tokens, never an average of per-sentence perplexities. A token given probability zero
    makes nll_nats and perplexity infinite; ``n_zero_prob`` counts such tokens.
    """

    n_tokens: int
    nll_nats: float
    n_zero_prob: int
    n_nan: int = 0

    @property
    def cross_entropy_nats(self) -> float:
        return self.nll_nats / self.n_tokens

    @property
    def bits_per_token(self) -> float:
        return self.cross_entropy_nats / math.log(2)

    @property
    def perplexity(self) -> float:
        return exp_or_inf(self.cross_entropy_nats)

    def as_dict(self) -> dict:
        return {**asdict(self), "cross_entropy_nats": self.cross_entropy_nats,
                "bits_per_token": self.bits_per_token, "perplexity": self.perplexity}


def exp_or_inf(x: float) -> float:
    """exp(x) for a cross-entropy in nats: inf past float range, NaN stays NaN (never OverflowError)."""
    if math.isnan(x):
        return math.nan
    return math.inf if x >= 709.78 else math.exp(x)


def eval_result(logprobs: np.ndarray) -> EvalResult:
    """Summarize per-token natural-log probabilities.

    ``-inf`` is a true probability zero (counted in ``n_zero_prob``, perplexity inf). NaN is not a
    probability at all (a model bug or a numerical failure): counted in ``n_nan`` and it makes the
    total NaN, so it can never pass for an infinite or finite perplexity.
    """
    logprobs = np.asarray(logprobs, dtype=np.float64)
    n_nan = int(np.isnan(logprobs).sum())
    n_zero = int(np.isneginf(logprobs).sum())
    nll = math.nan if n_nan else math.inf if n_zero else float(-logprobs.sum())
    return EvalResult(n_tokens=int(logprobs.size), nll_nats=nll, n_zero_prob=n_zero, n_nan=n_nan)


class LanguageModel(ABC):
    """A language model over a shared vocabulary.

    Token ids are those of a :class:`~lmbench.data.vocab.Vocabulary`: 0..V-1 can be predicted,
    ``vocab.bos_id == V`` is start-of-text context only. Fitted state ends in ``_``.
    """

    #: False for scores that are not a probability distribution (the runner then reports no perplexity).
    comparable: bool = True
    not_comparable_reason: str = ""
    #: True when fitting draws random numbers (initialization, batching): ``--seeds`` refits such models per seed.
    stochastic: bool = False
    #: the name a run gives the model (set by the runner; used in progress lines), not a hyperparameter.
    label: str = ""
    #: "n-gram" (count-based), "neural" (trained network), "mixture" or "other"; tables and sweeps group by it.
    family: str = "other"
    #: True when :meth:`fit` is a collective of a data-parallel run (every process of a torchrun launch
    #: fits it together, see :mod:`lmbench.models.neural.distributed`); other models are fitted by rank 0 alone.
    trains_collectively: bool = False

    # ------------------------------------------------------------ to implement

    @abstractmethod
    def fit(self, train_ids: np.ndarray, valid_ids: np.ndarray | None = None, *, vocab: Vocabulary) -> "LanguageModel":
        """Estimate the model from a training split (valid may be used for tuning); return self."""

    @abstractmethod
    def logprobs(self, ids: np.ndarray) -> np.ndarray:
        """Natural-log probability of every token of ``ids``, each given everything before it.

        Args:
            ids: a split, int array (N,), end-of-line tokens included.

        Returns:
            float64 array (N,), ``-inf`` where the model gives probability zero. The first token is
            conditioned on the start-of-text context.
        """

    @abstractmethod
    def next_logprobs(self, history: np.ndarray) -> np.ndarray:
        """Natural-log distribution (V,) of the token that follows ``history`` (possibly empty)."""

    @property
    @abstractmethod
    def n_params(self) -> int:
        """Number of parameters (n-gram models: stored n-gram entries)."""

    def state_dict(self) -> dict:
        """Fitted state as arrays, tensors and plain values (no objects)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore fitted state produced by :meth:`state_dict`."""

    def fitted_summary(self) -> dict:
        """Hyperparameters chosen during fit (e.g. a tuned k), for results and config.json."""
        return {}

    def training_curve(self) -> list[dict] | None:
        """Per-epoch learning curve of an iteratively trained model, or None.

        Rows have at least ``epoch, train_ppl, valid_ppl, lr, tokens_per_s, seconds``.
        """
        return None

    def requires(self) -> list[str]:
        """Labels of other models of the run this model is built from (fitted first, see :meth:`attach`)."""
        return []

    def attach(self, peers: dict) -> None:
        """Receive the fitted models named by :meth:`requires` ({label: model}) before fitting or scoring."""

    def split_extras(self, ids: np.ndarray) -> dict:
        """Model-specific figures about a scored split (e.g. the ∞-gram's match lengths), for config.json."""
        return {}

    def valid_use(self) -> str:
        """How fitting used the validation split (tuning, early stopping); "" if it did not.

        Rows of a model that used valid are marked ``tuned_on_valid``: its valid figure is not held out.
        """
        return ""

    def environment(self) -> dict:
        """Where and how the model ran (device, threads, ...), for config.json; {} if nothing to say."""
        return {}

    def check_params(self) -> None:
        """Raise LmbenchError for invalid hyperparameters (called before any data is touched)."""

    def min_train_tokens(self) -> int:
        """The fewest training tokens this model can be fitted on."""
        return 1

    # ------------------------------------------------------------ shared maths

    def evaluate(self, ids: np.ndarray) -> EvalResult:
        """Score a split: n_tokens, total NLL in nats, cross-entropy, bits, perplexity, zero-probability count."""
        self._check_fitted()
        return eval_result(self.logprobs(np.asarray(ids)))

    def score_text(self, text: str, tokenizer=None):
        """Score new text the way a held-out split is scored (KenLM's ``query``).

        Args:
            text: lines separated by newlines.
            tokenizer: how to tokenize it; None: the tokenizer of the run that fitted the model
                (``tokenizer_``, set by the runner and by ``lmbench.load_run(...).model(name)``).

        Returns:
            :class:`lmbench.scoring.text.TextScores`: per-token log-probabilities, OOV flags, per-line
            totals (``.lines()``), ``.per_token()`` and ``.perplexity``.
        """
        from ..scoring.text import score_text

        self._check_fitted()
        tokenizer = tokenizer or getattr(self, "tokenizer_", None)
        if tokenizer is None:
            raise LmbenchError("this model does not know its run's tokenizer; pass tokenizer=lmbench.Tokenizer(...) "
                               "or load it with lmbench.load_run(DIR).model(NAME)")
        return score_text(self, tokenizer, text)

    def perplexity(self, ids: np.ndarray) -> float:
        return self.evaluate(ids).perplexity

    def cross_entropy(self, ids: np.ndarray) -> float:
        """Mean negative log-likelihood per token, in nats."""
        return self.evaluate(ids).cross_entropy_nats

    def generate(self, prefix_ids, length: int, *, temperature: float = 1.0, top_k: int | None = None,
                 greedy: bool = False, seed: int = 0) -> np.ndarray:
        """Continue a prefix by sampling (or greedy decoding) ``length`` tokens.

        Args:
            prefix_ids: ids to condition on (the warm-up prefix); may be empty.
            length: number of tokens to generate.
            temperature: divides the log-probabilities before sampling (> 0).
            top_k: sample only among the k most probable tokens.
            greedy: always take the most probable token.
            seed: seed for this call's random generator.

        Returns:
            The generated ids (prefix not included).
        """
        self._check_fitted()
        rng = np.random.default_rng(seed)
        history = list(np.asarray(prefix_ids, dtype=np.int64))
        out = []
        for _ in range(length):
            token = sample_token(self.next_logprobs(np.asarray(history, dtype=np.int64)),
                                 rng, temperature=temperature, top_k=top_k, greedy=greedy)
            history.append(token)
            out.append(token)
        return np.asarray(out, dtype=np.int64)

    # ------------------------------------------------------------ parameters, persistence

    def get_params(self) -> dict:
        """Constructor keyword arguments and their current values (scikit-learn style)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def save(self, path: str | Path) -> None:
        """Save config, vocabulary and fitted state as a checkpoint (a state dict, never a pickled object).

        A state of arrays (in memory, or file-backed and streamed window by window) and plain values
        (every n-gram model) is written without torch, as :data:`FORMAT`; a state holding tensors
        (neural models) with ``torch.save``, as :data:`TORCH_FORMAT`. Both are read by
        :func:`lmbench.models.registry.load_model`; the file name is free. The file is written to a temporary
        name and renamed into place when complete.
        """
        self._check_fitted()
        state = self.state_dict()
        numpy_keys = [key for key, value in state.items() if isinstance(key, str) and _is_array(value)]
        payload = {"class": f"{type(self).__module__}.{type(self).__qualname__}", "params": self.get_params(),
                   "vocab": self.vocab_.to_list(), "state": state, "numpy_keys": numpy_keys}
        try:
            with atomic_writer(path) as file:
                _zip_checkpoint(payload, file)
        except TypeError:  # tensors or other objects in the state: only torch can store them
            with atomic_writer(path) as file:
                _torch_checkpoint(payload, file)

    @classmethod
    def from_payload(cls, payload: dict) -> "LanguageModel":
        """Rebuild a saved model of this class from a checkpoint's payload (see :func:`lmbench.models.registry.load_model`)."""
        model = cls(**payload["params"])
        model.vocab_ = Vocabulary(list(payload["vocab"]))
        state = {k: (v if isinstance(v, np.ndarray) or k not in payload["numpy_keys"] else np.asarray(v))
                 for k, v in payload["state"].items()}  # memory maps stay maps (see payload_from_zip)
        model.load_state_dict(state)
        return model

    def _check_fitted(self) -> None:
        if not hasattr(self, "vocab_"):
            raise LmbenchError(f"{type(self).__name__} is not fitted; call fit() first")


def sample_token(logprobs: np.ndarray, rng: np.random.Generator, *, temperature: float = 1.0,
                 top_k: int | None = None, greedy: bool = False) -> int:
    """Draw one token id from a log-distribution with temperature and top-k."""
    logprobs = np.asarray(logprobs, dtype=np.float64)
    if greedy:
        return int(np.argmax(logprobs))
    scores = logprobs / temperature
    if top_k is not None and top_k < scores.size:
        keep = np.argsort(-scores, kind="stable")[:top_k]  # exactly k tokens, ties broken by lower id
        kept = np.full_like(scores, -np.inf)
        kept[keep] = scores[keep]
        scores = kept
    if not np.isfinite(scores.max()) or np.isnan(scores).any():
        raise LmbenchError("the model gives no finite probability to any next token here (e.g. an MLE model after "
                           "an unseen context); use a smoothed model, another prefix, or --greedy")
    probs = np.exp(scores - scores.max())
    return int(rng.choice(probs.size, p=probs / probs.sum()))
