"""The model registry: one table from names to classes and default parameters.

N-gram names are an order and an optional smoothing suffix::

    unigram  bigram  trigram  4gram  5gram ...        maximum likelihood (MLE)
    bigram-add1                                       Laplace (add-one)
    trigram-addk                                      Lidstone (add-k, k tuned on valid)
    5gram-kn  5gram-kn1                               interpolated Kneser-Ney (modified / one discount)
    trigram-wb  trigram-abs                           interpolated Witten-Bell / absolute discounting
    trigram-katz  trigram-interp  trigram-stupid      Katz backoff, Jelinek-Mercer, stupid backoff

An ARPA file made elsewhere (KenLM, SRILM, ``lmbench`` itself) is the model ``arpa:PATH``.

Parameters of any model can be overridden: ``--set trigram-addk.k=0.01`` on the command line, or a
``[models.<name>]`` table in a suite file (see :mod:`lmbench.runs.suite`).

Importing this module imports no torch: neural classes (:data:`lmbench.models.presets.NEURAL_PRESETS`
names them as "module:qualname" strings) are imported when a model of theirs is looked up or loaded.
"""

from __future__ import annotations

import importlib
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LmbenchError, unknown_name_error
from .base import FORMAT, HEADER_MEMBER, TORCH_FORMAT, LanguageModel, payload_from_zip
from .ngram.interpolated import AbsoluteDiscount, KneserNey, WittenBell
from .ngram.jelinek_mercer import JelinekMercer
from .ngram.katz import Katz
from .ngram.mle import MAX_ORDER, MLE, AddK
from .presets import NEURAL_PRESETS, resolve_class
from .ngram.stupid_backoff import StupidBackoff

ORDER_WORDS = {1: "unigram", 2: "bigram", 3: "trigram"}
ORDER_OF_WORD = {word: order for order, word in ORDER_WORDS.items()}
LISTED_ORDERS = range(1, 7)


@dataclass(frozen=True)
class Family:
    """A registry entry: a model class, its default parameters, and a line of description.

    ``target`` is the class itself or a "module:qualname" string, imported on first use of :attr:`cls`
    (so that listing names never imports torch).
    """

    target: type | str
    params: dict = field(default_factory=dict)
    description: str = ""

    @property
    def cls(self) -> type:
        return self.target if isinstance(self.target, type) else resolve_class(self.target)

    @property
    def module(self) -> str:
        """The module that defines the class (without importing it)."""
        return self.target.__module__ if isinstance(self.target, type) else self.target.partition(":")[0]


#: n-gram smoothing suffixes ("" = no suffix); each is combined with any order.
NGRAM_SMOOTHING: dict[str, Family] = {
    "": Family(MLE, {}, "maximum likelihood; unseen n-grams get probability 0"),
    "add1": Family(AddK, {"k": 1.0}, "Laplace add-one smoothing"),
    "addk": Family(AddK, {"k": None}, "Lidstone add-k smoothing, k tuned on valid unless set"),
    "kn": Family(KneserNey, {"modified": True},
                 "interpolated modified Kneser-Ney (3 discounts per order from counts of counts, as KenLM's lmplz)"),
    "kn1": Family(KneserNey, {"modified": False}, "interpolated Kneser-Ney with one discount per order"),
    "wb": Family(WittenBell, {}, "interpolated Witten-Bell"),
    "abs": Family(AbsoluteDiscount, {}, "interpolated absolute discounting (one discount per order)"),
    "katz": Family(Katz, {}, "Katz backoff with Good-Turing discounts (counts up to k=5)"),
    "interp": Family(JelinekMercer, {}, "Jelinek-Mercer linear interpolation of MLE orders, weights by EM on valid"),
    "stupid": Family(StupidBackoff, {}, "stupid backoff (alpha=0.4); scores, not probabilities: no perplexity"),
}

#: prefix of model names that load an ARPA file: ``arpa:path/to/model.arpa``.
ARPA_PREFIX = "arpa:"
ARPA_MODEL = Family("lmbench.models.ngram.arpa:ArpaModel", {},
                    "a back-off model read from an ARPA file (KenLM, SRILM, lmbench export)")

#: models with a fixed name (neural models join this table).
NAMED_MODELS: dict[str, Family] = {}
NAMED_MODELS.update({name: Family(*entry) for name, entry in NEURAL_PRESETS.items()})
NAMED_MODELS["infgram"] = Family("lmbench.models.ngram.infgram:InfiniGram", {"smoothing": "none"},
                                 "∞-gram (Liu et al. 2024): c(s w)/c(s) at the longest context suffix s seen in "
                                 "training; unseen continuations get probability 0")
NAMED_MODELS["infgram-wb"] = Family("lmbench.models.ngram.infgram:InfiniGram", {"smoothing": "wb"},
                                    "∞-gram with Witten-Bell interpolation over every matched context length "
                                    "(unbounded-order Witten-Bell; a distribution)")

_NGRAM_NAME = re.compile(r"^(?P<order>unigram|bigram|trigram|(?P<n>\d+)gram)(?:-(?P<smoothing>[a-z0-9]+))?$")


@dataclass(frozen=True)
class ModelSpec:
    """A model as a run will build it: the label in results, the class and its keyword arguments."""

    label: str
    cls: type
    params: dict

    def build(self) -> LanguageModel:
        return self.cls(**self.params)


def order_name(order: int) -> str:
    return ORDER_WORDS.get(order, f"{order}gram")


def available_names() -> list[str]:
    """Registry names to show in listings and "did you mean" errors."""
    ngrams = [order_name(n) + (f"-{s}" if s else "") for s in NGRAM_SMOOTHING for n in LISTED_ORDERS]
    return ngrams + list(NAMED_MODELS) + [ARPA_PREFIX + "PATH", "mix(A+B)"]


#: a mixture of models of the same run: ``mix(5gram-kn+lstm)``, weights by EM on valid.
MIX_MODEL = Family("lmbench.models.mixture:MixtureLM", {},
                   "linear interpolation of models of the run, weights by EM on valid: mix(5gram-kn+lstm)")
_MIX_NAME = re.compile(r"^mix\((?P<parts>.*)\)$")


def mixture_components(name: str) -> tuple[str, ...] | None:
    """The component labels of ``mix(a+b+...)``, or None if ``name`` is not a mixture."""
    match = _MIX_NAME.match(name)
    if not match:
        return None
    parts = tuple(p.strip() for p in match["parts"].split("+"))
    if len(parts) < 2 or not all(parts):
        raise LmbenchError(f"{name}: a mixture lists two or more models of the run joined by +, "
                           f"e.g. mix(5gram-kn+lstm)")
    return parts


def lookup(name: str) -> tuple[type, dict]:
    """Class and default parameters for a registry name."""
    components = mixture_components(name)
    if components is not None:
        return MIX_MODEL.cls, {"components": components}
    if name in NAMED_MODELS:
        family = NAMED_MODELS[name]
        return family.cls, dict(family.params)
    if name.startswith(ARPA_PREFIX):
        path = name[len(ARPA_PREFIX):]
        if not path:
            raise LmbenchError("arpa: needs a file, e.g. arpa:models/ptb5.arpa")
        return ARPA_MODEL.cls, {"path": path}
    match = _NGRAM_NAME.match(name)
    if match and (match["smoothing"] or "") in NGRAM_SMOOTHING:
        order = int(match["n"]) if match["n"] else ORDER_OF_WORD[match["order"]]
        family = NGRAM_SMOOTHING[match["smoothing"] or ""]
        return family.cls, {"order": order, **family.params}
    raise unknown_name_error("model", name, available_names(),
                             hint=f"any order up to {MAX_ORDER} works (7gram, 8gram-add1, ...); see `lmbench models`")


def resolve(label: str, overrides: dict | None = None) -> ModelSpec:
    """Turn a label (a registry name, or a custom label with a ``model`` key) plus overrides into a spec.

    Args:
        label: what the results table will call the model.
        overrides: parameter values; ``model`` names the registry entry when ``label`` is custom.

    Returns:
        The ModelSpec; unknown parameter names raise a "did you mean" error.
    """
    overrides = dict(overrides or {})
    base = overrides.pop("model", label)
    cls, params = lookup(base)
    allowed = accepted_params(cls)
    for key in overrides:
        if key not in allowed:
            raise unknown_name_error(f"parameter for {label}", key, sorted(allowed))
    return ModelSpec(label, cls, {**params, **overrides})


def accepted_params(cls: type) -> set[str]:
    import inspect

    return {p for p in inspect.signature(cls.__init__).parameters if p != "self"}


def describe_models() -> list[dict]:
    """Rows for ``lmbench models``: name, class, description (imports every class, neural ones too)."""
    rows = [{"name": f"<order>{'-' + s if s else ''}", "cls": f.cls, "description": f.description}
            for s, f in NGRAM_SMOOTHING.items()]
    rows += [{"name": n, "cls": f.cls, "description": f.description} for n, f in NAMED_MODELS.items()]
    rows.append({"name": ARPA_PREFIX + "PATH", "cls": ARPA_MODEL.cls, "description": ARPA_MODEL.description})
    rows.append({"name": "mix(A+B+...)", "cls": MIX_MODEL.cls, "description": MIX_MODEL.description})
    return rows


def format_models(width: int = 100) -> str:
    """The registry as text: one line per name, then each class's parameters once."""
    import textwrap

    rows = describe_models()
    lines = ["<order> is unigram, bigram, trigram or Ngram for any N (4gram, 5gram, ...).", ""]
    lines += [f"  {r['name']:<20} {r['description']}" for r in rows]
    lines += ["", "Parameters (override with --set MODEL.PARAM=VALUE or a [models.MODEL] table in a suite file):"]
    for cls in dict.fromkeys(r["cls"] for r in rows):
        text = f"{cls.__name__}: {', '.join(sorted(accepted_params(cls)))}"
        lines += textwrap.wrap(text, width, initial_indent="  ", subsequent_indent="      ")
    return "\n".join(lines)


# ---------------------------------------------------------------- loading saved models


def model_classes() -> dict[str, type]:
    """Every LanguageModel class imported so far and defined in lmbench, by qualified name."""
    found, todo = {}, [LanguageModel]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("lmbench."):
                found[f"{sub.__module__}.{sub.__qualname__}"] = sub
            todo.append(sub)
    return found


def model_modules() -> set[str]:
    """The modules that define registry classes: the only ones a checkpoint may make lmbench import."""
    families = [*NGRAM_SMOOTHING.values(), *NAMED_MODELS.values(), ARPA_MODEL, MIX_MODEL]
    return {family.module for family in families}


def checkpoint_class(name, path) -> type:
    """The model class a checkpoint names, importing its module (torch for neural ones) only now."""
    classes = model_classes()
    module = str(name).rpartition(".")[0]
    if name not in classes and module in model_modules():
        try:
            importlib.import_module(module)
        except ImportError as exc:  # e.g. a neural model's module without torch installed
            raise LmbenchError(f"{path} holds a {name} model, which needs {exc.name or module}: {exc}") from None
        classes = model_classes()
    if name not in classes:
        raise LmbenchError(f"{path} holds an unknown model class {name!r}; it was saved by another version of "
                           f"lmbench or by code not installed here")
    return classes[name]


#: the fix for a damaged checkpoint, ending its one-line error.
REMAKE = "make it again (re-run the `lmbench run` that wrote it, or LanguageModel.save)"


def load_model(path) -> LanguageModel:
    """Load a model saved with :meth:`LanguageModel.save`.

    A :data:`~lmbench.models.base.FORMAT` checkpoint (n-gram models) is read without torch; a
    :data:`~lmbench.models.base.TORCH_FORMAT` one (neural models, and every checkpoint of older
    lmbench versions) with ``torch.load(weights_only=True)``. The format is told by the file's content,
    never its name. Anything else (empty, truncated, a text file, someone else's zip or PyTorch file)
    is a one-line LmbenchError saying what the file is.
    """
    path = Path(path)
    payload = read_checkpoint(path)
    cls = checkpoint_class(payload["class"], path)
    try:
        return cls.from_payload(payload)
    except LmbenchError as exc:
        raise LmbenchError(f"{path}: {exc}") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RuntimeError) as exc:
        raise LmbenchError(f"{path} is a damaged lmbench checkpoint ({type(exc).__name__}: {_first_line(exc)}); "
                           f"{REMAKE}") from None


def read_checkpoint(path: Path) -> dict:
    """The payload of a checkpoint file (format, class, params, vocab, state, numpy_keys), checked."""
    head = _read_head(path)
    if not zipfile.is_zipfile(path):
        if head.startswith(b"PK\x03\x04"):
            raise LmbenchError(f"{path} is truncated (a zip archive without its end): the write or copy that made it "
                               f"was cut short; {REMAKE}")
        what = "a text file" if _looks_like_text(head) else "not a zip archive"
        raise LmbenchError(f"{path} is not an lmbench checkpoint ({what}); checkpoints are the models/*.pt files "
                           f"that `lmbench run` writes")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if HEADER_MEMBER in names:
                payload = payload_from_zip(archive, path)
            elif any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
                payload = None
            else:
                raise LmbenchError(f"{path} is a zip archive but not an lmbench checkpoint (no {HEADER_MEMBER}, "
                                   f"no PyTorch data.pkl)")
    except (zipfile.BadZipFile, ValueError, KeyError, EOFError) as exc:
        raise LmbenchError(f"{path} is a damaged lmbench checkpoint ({_first_line(exc)}); {REMAKE}") from None
    if payload is None:
        payload = _torch_payload(path)
    _check_payload(payload, path)
    return payload


def _read_head(path: Path) -> bytes:
    """The first bytes of a file, after one-line errors for a missing, unreadable or empty one."""
    if not path.exists():
        raise LmbenchError(f"model file not found: {path}")
    if path.is_dir():
        raise LmbenchError(f"{path} is a directory, not a model file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError as exc:
        raise LmbenchError(f"cannot read model file {path}: {exc.strerror}") from None
    if not head:
        raise LmbenchError(f"{path} is empty (0 bytes), not an lmbench checkpoint; {REMAKE}")
    return head


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a multi-byte character cut at the end of the sample is still text
        return exc.start >= len(head) - 3 and b"\x00" not in head
    return b"\x00" not in head


def _torch_payload(path: Path):
    """torch.load a PyTorch zip file with weights_only=True (tensors and plain values only)."""
    import pickle

    try:
        import torch
    except ModuleNotFoundError:
        raise LmbenchError(f"{path} is a PyTorch checkpoint (a neural model, or a model saved by lmbench before "
                           f"{FORMAT}); reading it needs torch, which is not installed") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise LmbenchError(f"{path} is a PyTorch file but not an lmbench checkpoint (it pickles Python objects; "
                           f"lmbench checkpoints hold only tensors and plain values)") from None
    except Exception as exc:  # torch raises RuntimeError and others for damaged archives
        raise LmbenchError(f"{path} is a damaged PyTorch file ({_first_line(exc)}); {REMAKE}") from None


_PAYLOAD_TYPES = {"class": str, "params": dict, "vocab": list, "state": dict, "numpy_keys": list}


def _check_payload(payload, path: Path) -> None:
    """One-line errors for a payload that is not an lmbench checkpoint of a format this version reads."""
    if not isinstance(payload, dict) or "format" not in payload:
        raise LmbenchError(f"{path} is a PyTorch file but not an lmbench checkpoint (no lmbench format marker)")
    if payload["format"] not in (FORMAT, TORCH_FORMAT):
        raise LmbenchError(f"{path} is an lmbench checkpoint of format {payload['format']!r}, which this version "
                           f"does not read ({FORMAT} or {TORCH_FORMAT}); use the lmbench version that wrote it")
    for key, kind in _PAYLOAD_TYPES.items():
        if not isinstance(payload.get(key), kind):
            raise LmbenchError(f"{path} is a damaged lmbench checkpoint ({key!r} missing or not a {kind.__name__}); "
                               f"{REMAKE}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
