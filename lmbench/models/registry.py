"""The model registry: one table from names to classes and default parameters.

N-gram names are an order and an optional smoothing suffix::

    unigram  bigram  trigram  4gram  5gram ...        maximum likelihood (MLE)
    bigram-add1                                       Laplace (add-one)
    trigram-addk                                      Lidstone (add-k, k tuned on valid)
    5gram-kn  5gram-kn1                               interpolated Kneser-Ney (modified / one discount)
    trigram-wb  trigram-abs                           interpolated Witten-Bell / absolute discounting
    trigram-kn-bo  trigram-wb-bo ...                  the same methods in back-off form (-bo)
    trigram-katz  trigram-interp  trigram-stupid      Katz backoff, Jelinek-Mercer, stupid backoff

An ARPA file made elsewhere (KenLM, SRILM, ``lmbench`` itself) is the model ``arpa:PATH``.

Parameters of any model can be overridden: ``--set trigram-addk.k=0.01`` on the command line, or a
``[models.<name>]`` table in a suite file (see :mod:`lmbench.runs.suite`).

Importing this module imports no torch: neural classes (:data:`lmbench.models.presets.NEURAL_PRESETS`
names them as "module:qualname" strings) are imported when a model of theirs is looked up or loaded.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

from ..errors import LmbenchError, unknown_name_error
from .base import LanguageModel
from .ngram.interpolated import AbsoluteDiscount, KneserNey, WittenBell
from .ngram.jelinek_mercer import JelinekMercer
from .ngram.katz import Katz
from .ngram.mle import MLE, AddK
from .ngram.model import MAX_ORDER
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
    "kn-bo": Family(KneserNey, {"modified": True, "form": "backoff"},
                    "modified Kneser-Ney in back-off form (SRILM's -kndiscount without -interpolate)"),
    "kn1-bo": Family(KneserNey, {"modified": False, "form": "backoff"},
                     "Kneser-Ney with one discount per order in back-off form (SRILM's -ukndiscount)"),
    "wb-bo": Family(WittenBell, {"form": "backoff"}, "Witten-Bell in back-off form (SRILM's -wbdiscount)"),
    "abs-bo": Family(AbsoluteDiscount, {"form": "backoff"}, "absolute discounting in back-off form"),
    "katz": Family(Katz, {}, "Katz backoff with Good-Turing discounts (counts up to max_count=5)"),
    "interp": Family(JelinekMercer, {}, "Jelinek-Mercer linear interpolation of MLE orders, weights by EM on valid"),
    "stupid": Family(StupidBackoff, {}, "stupid backoff (alpha=0.4); scores, not probabilities: no perplexity"),
}

#: prefix of model names that load an ARPA file: ``arpa:path/to/model.arpa``.
ARPA_PREFIX = "arpa:"
ARPA_MODEL = Family("lmbench.models.ngram.arpa:ArpaModel", {},
                    "a back-off model read from an ARPA file (KenLM, SRILM, lmbench export)")

#: prefix of model names that score text with a pretrained causal LM: ``hf:gpt2``, ``hf:path/to/saved/model``.
HF_PREFIX = "hf:"
HF_MODEL = Family("lmbench.models.pretrained:PretrainedLM", {},
                  "a pretrained causal LM (Hugging Face transformers) with its own tokenizer, scored on the run's "
                  "text by bits per byte (pip install -e \".[hf]\")")

#: models with a fixed name (neural models join this table).
NAMED_MODELS: dict[str, Family] = {}
NAMED_MODELS.update({name: Family(*entry) for name, entry in NEURAL_PRESETS.items()})
NAMED_MODELS["infgram"] = Family("lmbench.models.ngram.infgram:InfiniGram", {"smoothing": "none"},
                                 "∞-gram (Liu et al. 2024): c(s w)/c(s) at the longest context suffix s seen in "
                                 "training; unseen continuations get probability 0")
NAMED_MODELS["infgram-wb"] = Family("lmbench.models.ngram.infgram:InfiniGram", {"smoothing": "wb"},
                                    "∞-gram with Witten-Bell interpolation over every matched context length "
                                    "(unbounded-order Witten-Bell; a distribution)")

_NGRAM_NAME = re.compile(r"^(?P<order>unigram|bigram|trigram|(?P<n>\d+)gram)(?:-(?P<smoothing>[a-z0-9]+(?:-[a-z0-9]+)*))?$")


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
    return ngrams + list(NAMED_MODELS) + [ARPA_PREFIX + "PATH", HF_PREFIX + "NAME", "mix(A+B)"]


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
    if name.startswith(HF_PREFIX):
        target = name[len(HF_PREFIX):]
        if not target:
            raise LmbenchError("hf: needs a model name or folder, e.g. hf:gpt2 or hf:models/my-gpt2")
        return HF_MODEL.cls, {"name_or_path": target}
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
    if _BIDIRECTIONAL.match(name):
        raise bidirectional_error(repr(name))
    raise unknown_model_error(name)


_BIDIRECTIONAL = re.compile(r"^(deep-)?(bi-?|bidirectional-?|b)(rnn|lstm|gru)(-.*)?$")


def bidirectional_error(what: str) -> LmbenchError:
    """Why a bidirectional RNN (a name such as bilstm, or bidirectional=True) is refused."""
    return LmbenchError(f"{what}: a bidirectional RNN cannot be a language model here: its backward half reads "
                        f"the tokens after each position, so it sees the token it predicts and its perplexity "
                        f"would mean nothing; use a causal model (rnn, gru, lstm, deep-lstm, transformer)")


def unknown_model_error(name: str) -> LmbenchError:
    """"unknown model 'x'; did you mean ...?" and the families of names, never the whole list of names."""
    import difflib

    close = difflib.get_close_matches(name, available_names(), n=3, cutoff=0.6)
    suffixes = ", ".join(s for s in NGRAM_SMOOTHING if s)
    message = f"unknown model {name!r}"
    message += f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "."
    return LmbenchError(f"{message} Names: n-grams ORDER[-SMOOTHING] (ORDER unigram, bigram, trigram or Ngram up to "
                        f"{MAX_ORDER}; SMOOTHING {suffixes}), named models {', '.join(NAMED_MODELS)}, arpa:PATH, "
                        f"hf:NAME, mix(A+B); `lmbench models` lists them")


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
    if not isinstance(base, str) or not base:
        raise LmbenchError(f"{label}: 'model' must name a registry model, got {base!r}")
    cls, params = lookup(base)
    allowed = accepted_params(cls)
    renamed = getattr(cls, "renamed_params", {})
    old = [key for key in overrides if key in renamed and renamed[key] in allowed]
    for key in old:
        warnings.warn(f"{label}: parameter {key!r} is renamed to {renamed[key]!r}; using it as {renamed[key]!r}",
                      stacklevel=2)
    if old:  # the class converts old names (and units, e.g. eval_batch windows -> eval_tokens)
        upgrade = getattr(cls, "upgrade_params", None)
        overrides = upgrade({**params, **overrides}) if upgrade else {renamed.get(k, k): v for k, v in overrides.items()}
        overrides = {k: v for k, v in overrides.items() if k not in params or params[k] != v or k in renamed.values()}
    for key in overrides:
        if key == "bidirectional" and key not in allowed and overrides[key]:
            raise bidirectional_error(f"{label} with bidirectional={overrides[key]!r}")
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
    rows.append({"name": HF_PREFIX + "NAME", "cls": None, "description": HF_MODEL.description})
    rows.append({"name": "mix(A+B+...)", "cls": MIX_MODEL.cls, "description": MIX_MODEL.description})
    return rows


#: the paper (or book) each family of names implements, for ``lmbench models --long``.
PAPERS = {
    "<order>": "maximum likelihood estimation (Jurafsky & Martin, Speech and Language Processing, ch. 3)",
    "<order>-add1": "Laplace's add-one rule (Chen & Goodman 1998, sec. 2.1)",
    "<order>-addk": "Lidstone 1920; Chen & Goodman 1998, sec. 2.1",
    "<order>-kn": "Kneser & Ney 1995; Chen & Goodman 1998 (modified KN); Heafield et al. 2013 (KenLM's estimates)",
    "<order>-kn1": "Kneser & Ney 1995; Chen & Goodman 1998, sec. 3.5",
    "<order>-wb": "Witten & Bell 1991; Chen & Goodman 1998, sec. 2.4",
    "<order>-abs": "Ney, Essen & Kneser 1994",
    "<order>-katz": "Katz 1987; Good 1953",
    "<order>-interp": "Jelinek & Mercer 1980; Dempster, Laird & Rubin 1977 (EM)",
    "<order>-stupid": "Brants, Popat, Xu, Och & Dean 2007",
    "<order>-kn-bo": "Kneser & Ney 1995 (back-off form); Chen & Goodman 1998; SRILM's -kndiscount without -interpolate",
    "<order>-kn1-bo": "Kneser & Ney 1995 (the original, one discount, back-off)",
    "<order>-wb-bo": "Witten & Bell 1991, back-off form (SRILM's -wbdiscount)",
    "<order>-abs-bo": "Ney, Essen & Kneser 1994, back-off form",
    "rnn": "Elman 1990; Zhang et al., Dive into Deep Learning, ch. 9",
    "gru": "Cho et al. 2014", "lstm": "Hochreiter & Schmidhuber 1997",
    "deep-rnn": "d2l ch. 10.3 (deep RNNs)", "deep-gru": "Cho et al. 2014", "deep-lstm": "Hochreiter & Schmidhuber 1997",
    "rnn-scratch": "d2l ch. 9.5 (RNN from scratch)",
    "lstm-zaremba-small": "Zaremba, Sutskever & Vinyals 2014",
    "lstm-word": "the PyTorch word_language_model example", "lstm-word-medium": "the PyTorch word_language_model example",
    "transformer": "Vaswani et al. 2017; Radford et al. 2019 (GPT-2)",
    "transformer-word": "Vaswani et al. 2017; Radford et al. 2019 (GPT-2)",
    "infgram": "Liu, Min, Zettlemoyer, Choi & Hajishirzi 2024", "infgram-wb": "Liu et al. 2024; Witten & Bell 1991",
    "arpa:PATH": "the ARPA back-off format (Doug Paul; SRILM, KenLM)",
    "hf:NAME": "Wolf et al. 2020 (Hugging Face Transformers); Radford et al. 2019 (GPT-2)",
    "mix(A+B+...)": "Mikolov et al. 2011 (model combination); EM: Dempster, Laird & Rubin 1977",
}


def format_models(width: int = 100, long: bool = False) -> str:
    """The registry as text: one line per name (with ``long``, the paper it implements), then each class's parameters."""
    import textwrap

    rows = describe_models()
    lines = ["<order> is unigram, bigram, trigram or Ngram for any N (4gram, 5gram, ...).", ""]
    for r in rows:
        lines.append(f"  {r['name']:<20} {r['description']}")
        if long and PAPERS.get(r["name"]):
            lines.append(f"  {'':<20} paper: {PAPERS[r['name']]}")
    lines += ["", "Parameters (override with --set MODEL.PARAM=VALUE or a [models.MODEL] table in a suite file):"]
    for cls in dict.fromkeys(r["cls"] for r in rows if r["cls"] is not None):
        text = f"{cls.__name__}: {', '.join(sorted(accepted_params(cls)))}"
        lines += textwrap.wrap(text, width, initial_indent="  ", subsequent_indent="      ")
    return "\n".join(lines)
