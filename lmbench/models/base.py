"""The one interface every model implements, n-gram and neural alike: it sees token ids only.

A model is fitted on the ids of a training split (valid may tune it) and scores every token of a split
given all that precedes it (``logprobs``), or gives the next-token distribution after a history
(``next_logprobs``, for sampling). Saving and loading are :mod:`lmbench.models.checkpoint`'s; text in
and out is :class:`lmbench.scoring.text.TextModel`'s; corpus-level figures are :mod:`lmbench.scoring.metrics`'.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from ..data.vocab import Vocabulary
from ..errors import LmbenchError, check_bool, check_int, check_number, check_seed
from ..scoring.metrics import EvalResult, eval_result
from ..data.dataset import HeldOut
from ..scoring.splits import SplitScores


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

    def score_split(self, split: HeldOut) -> SplitScores:
        """Scores of a held-out split: by default :meth:`logprobs` of its ids, one per token of the run.

        A model with its own tokenizer (a pretrained LM) overrides this to score ``split.lines`` with its
        own tokens (``own_tokens=True``); the runner treats every model through this one method.
        """
        return SplitScores(np.asarray(self.logprobs(split.ids), dtype=np.float64), split.line_offsets)

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

    # ------------------------------------------------------------ conveniences over logprobs

    def evaluate(self, ids: np.ndarray) -> EvalResult:
        """Score a split: n_tokens, total NLL in nats, cross-entropy, bits, perplexity, zero-probability count."""
        self._check_fitted()
        return eval_result(self.logprobs(np.asarray(ids)))

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
        check_generate_options(length, temperature=temperature, top_k=top_k, greedy=greedy, seed=seed)
        rng = np.random.default_rng(seed)
        history = list(prefix_array(prefix_ids))
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
        """Save config, vocabulary and fitted state as a checkpoint (see :func:`lmbench.models.checkpoint.save_model`)."""
        from .checkpoint import save_model

        self._check_fitted()
        save_model(self, path)

    def check_unchanged(self) -> None:
        """Raise a one-line LmbenchError if the checkpoint this model's arrays are mapped from changed since loading."""
        from .checkpoint import check_unchanged

        check_unchanged(self)

    #: old parameter name -> new name; checkpoints and ``--set`` that use an old name still work (see
    #: :func:`lmbench.models.registry.resolve` for the one-line note a user gets).
    renamed_params: dict = {}

    @classmethod
    def from_payload(cls, payload: dict) -> "LanguageModel":
        """Rebuild a saved model of this class from a checkpoint's payload (see :func:`lmbench.models.checkpoint.load_model`)."""
        params = {cls.renamed_params.get(k, k): v for k, v in payload["params"].items()}
        model = cls(**params)
        model.vocab_ = Vocabulary(list(payload["vocab"]))
        state = {k: (v if isinstance(v, np.ndarray) or k not in payload["numpy_keys"] else np.asarray(v))
                 for k, v in payload["state"].items()}  # memory maps stay maps (see payload_from_zip)
        model.load_state_dict(state)
        return model

    def _check_fitted(self) -> None:
        if not hasattr(self, "vocab_"):
            raise LmbenchError(f"{type(self).__name__} is not fitted; call fit() first")


def prefix_array(prefix_ids) -> np.ndarray:
    """A generation prefix as int64 ids; a string is a one-line error (models see ids, not text)."""
    if isinstance(prefix_ids, (str, bytes)):
        raise LmbenchError("generate() of a model takes token ids; to continue text, load the model with its "
                           "run's tokenizer: lmbench.load_run(DIR).model(NAME).generate(\"the time\", 50), or "
                           "lmbench.TextModel(model, tokenizer)")
    return np.asarray(prefix_ids, dtype=np.int64).reshape(-1)


def check_generate_options(length, *, temperature, top_k, greedy, seed) -> None:
    """One-line errors for the arguments of ``generate`` (the CLI's options check the same)."""
    check_int("length (tokens to generate)", length, 0)
    check_number("temperature", temperature, 0, open_low=True)
    if top_k is not None:
        check_int("top_k", top_k, 1)
    check_bool("greedy", greedy)
    check_seed(seed)


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
