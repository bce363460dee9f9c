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
``[models.<name>]`` table in a suite file (see :mod:`lmbench.suite`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from .errors import LmbenchError, unknown_name_error
from .models.base import FORMAT, LanguageModel
from .arpa import ArpaModel
from .models.interpolated import AbsoluteDiscount, KneserNey, WittenBell
from .models.jelinek_mercer import JelinekMercer
from .models.katz import Katz
from .models.ngram import MLE, AddK
from .models.stupid_backoff import StupidBackoff
from .models.neural import NEURAL_MODELS

ORDER_WORDS = {1: "unigram", 2: "bigram", 3: "trigram"}
ORDER_OF_WORD = {word: order for order, word in ORDER_WORDS.items()}
LISTED_ORDERS = range(1, 7)


@dataclass(frozen=True)
class Family:
    """A registry entry: a model class, its default parameters, and a line of description."""

    cls: type
    params: dict = field(default_factory=dict)
    description: str = ""


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

#: models with a fixed name (neural models join this table).
NAMED_MODELS: dict[str, Family] = {}
NAMED_MODELS.update({name: Family(*entry) for name, entry in NEURAL_MODELS.items()})

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
    return ngrams + list(NAMED_MODELS) + [ARPA_PREFIX + "PATH"]


def lookup(name: str) -> tuple[type, dict]:
    """Class and default parameters for a registry name."""
    if name in NAMED_MODELS:
        family = NAMED_MODELS[name]
        return family.cls, dict(family.params)
    if name.startswith(ARPA_PREFIX):
        path = name[len(ARPA_PREFIX):]
        if not path:
            raise LmbenchError("arpa: needs a file, e.g. arpa:models/ptb5.arpa")
        return ArpaModel, {"path": path}
    match = _NGRAM_NAME.match(name)
    if match and (match["smoothing"] or "") in NGRAM_SMOOTHING:
        order = int(match["n"]) if match["n"] else ORDER_OF_WORD[match["order"]]
        family = NGRAM_SMOOTHING[match["smoothing"] or ""]
        return family.cls, {"order": order, **family.params}
    raise unknown_name_error("model", name, available_names(),
                             hint="any order works (7gram, 8gram-add1, ...); see `lmbench models`")


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
    """Rows for ``lmbench models``: name, class, description."""
    rows = [{"name": f"<order>{'-' + s if s else ''}", "cls": f.cls, "description": f.description}
            for s, f in NGRAM_SMOOTHING.items()]
    rows += [{"name": n, "cls": f.cls, "description": f.description} for n, f in NAMED_MODELS.items()]
    rows.append({"name": ARPA_PREFIX + "PATH", "cls": ArpaModel,
                 "description": "a back-off model read from an ARPA file (KenLM, SRILM, lmbench export)"})
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
    """Every LanguageModel class defined in lmbench, by qualified name (for loading saved models)."""
    found, todo = {}, [LanguageModel]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("lmbench."):
                found[f"{sub.__module__}.{sub.__qualname__}"] = sub
            todo.append(sub)
    return found


def load_model(path) -> LanguageModel:
    """Load a model saved with :meth:`LanguageModel.save` (tensors and plain values only)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise LmbenchError(f"model file not found: {path}") from None
    except Exception as exc:  # corrupt or foreign file
        raise LmbenchError(f"cannot read model file {path}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise LmbenchError(f"{path} is not an lmbench model file (expected format {FORMAT})")
    classes = model_classes()
    if payload["class"] not in classes:
        raise LmbenchError(f"{path} holds an unknown model class {payload['class']}; is lmbench up to date?")
    return classes[payload["class"]].from_payload(payload)
