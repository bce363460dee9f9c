"""The one shell of every neural language model: fit, validation, best weights, scoring, generation, checkpoints.

:class:`TorchLM` owns what the recurrent and Transformer models share; a subclass supplies its
network, its training window and its scoring stream (:mod:`.recurrent`, :mod:`.transformer`).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Iterator

import numpy as np
import torch
from torch import nn

from ...data.vocab import Vocabulary
from ...errors import LmbenchError, check_int
from ..base import LanguageModel, check_generate_options, prefix_array, sample_token
from .devices import describe_device, deterministic_kernels, select_device
from .distributed import current_world
from .precision import float32_scoring
from .progress import EpochProgress, token_bar
from .training import TrainConfig, TrainingOptions, Validation, curve_totals, train_network


@dataclass(eq=False)
class TorchLM(TrainingOptions, LanguageModel):
    """A language model whose network is trained by :func:`lmbench.models.neural.training.train_network`.

    The constructor takes the subclass's network and stream parameters, then (keyword-only) the
    training options of :class:`~lmbench.models.neural.training.TrainingOptions` with their
    defaults, and:

        device: "auto" (CUDA, else MPS, else CPU), "cpu", "cuda" or "mps".
        progress: show progress (bars where they can be seen, else one line per epoch; see
            :mod:`lmbench.models.neural.progress`); False: nothing.

    Every subclass is a dataclass declaring its parameters as fields, among them its window (the
    field named by :attr:`window_param`) and ``eval_tokens`` (input tokens per forward pass when
    scoring: memory and speed only), and implements :meth:`build_network`, :meth:`check_network`,
    :meth:`describe_network`, :meth:`score_pieces` and :meth:`advance`.

    Fitting draws the initial weights, dropout masks and window offsets from torch's global
    generator (:func:`lmbench.models.seeding.seed_everything` before ``fit`` repeats a fit). Every
    scoring path (``logprobs``, validation, ``next_logprobs``, ``generate``) runs in eval mode,
    without gradients, under deterministic CUDA kernels and in IEEE float32 (:meth:`scoring`).
    """

    device: str = field(default="auto", kw_only=True)
    progress: bool = field(default=True, kw_only=True)

    family = "neural"
    stochastic = True
    trains_collectively = True
    #: the name of the field that is the training window (time steps per batch).
    window_param: ClassVar[str] = "num_steps"

    # ------------------------------------------------------------ what a subclass supplies

    def build_network(self, vocab_size: int) -> nn.Module:
        """A fresh network for ``vocab_size`` predictable tokens (its initial weights drawn now)."""
        raise NotImplementedError

    def check_network(self) -> None:
        """Raise LmbenchError for an invalid network or scoring parameter."""

    def describe_network(self, vocab_size: int) -> str:
        """A few words naming the network, for error messages."""
        return f"{type(self).__name__}, vocabulary {vocab_size}"

    def network_summary(self) -> dict:
        """Figures of the scoring stream for ``fitted_summary`` (e.g. the Transformer's context); {} if none."""
        return {}

    def default_label(self) -> str:
        """The name progress lines use when the run gives the model none."""
        return type(self).__name__

    def score_pieces(self, ids: np.ndarray) -> Iterator[np.ndarray]:
        """The log-probabilities of ``ids``, the split read as one stream, in consecutive float64 pieces."""
        raise NotImplementedError

    def advance(self, ids: list[int], state) -> tuple[torch.Tensor, object]:
        """Read ``ids`` on from ``state`` (None: the start): the next token's log-distribution (V,), the new state."""
        raise NotImplementedError

    def check_vocabulary(self, vocab: Vocabulary) -> None:
        """Warn about a vocabulary this network handles poorly (called by ``fit``)."""

    # ------------------------------------------------------------ parameters

    @property
    def window(self) -> int:
        return getattr(self, self.window_param)

    def check_params(self) -> None:
        self.check_network()
        check_int("eval_tokens", self.eval_tokens, 1)
        if not isinstance(self.progress, bool):
            raise LmbenchError(f"progress must be true or false, got {self.progress!r}")
        select_device(self.device)  # an unknown or unavailable device fails here, before any data is read
        self.train_config().check()

    def train_config(self) -> TrainConfig:
        """What the training loop reads: the training options and this model's window."""
        return TrainConfig(num_steps=self.window, **self.options())

    def min_train_tokens(self) -> int:
        """batch_size * window + window - 1: one full batch even after the largest random offset."""
        return self.train_config().min_train_tokens()

    @property
    def display_label(self) -> str:
        """The run's label for the model, else :meth:`default_label`."""
        return self.label or self.default_label()

    @classmethod
    def upgrade_params(cls, params: dict) -> dict:
        """Parameters given or saved under an old name (:attr:`renamed_params`) under the current one."""
        return {cls.renamed_params.get(k, k): v for k, v in params.items()}

    @classmethod
    def from_payload(cls, payload: dict) -> "TorchLM":
        return super().from_payload({**payload, "params": cls.upgrade_params(payload["params"])})

    # ------------------------------------------------------------ fitting

    def fit(self, train_ids, valid_ids=None, *, vocab: Vocabulary,
            clock: Callable[[], float] = time.perf_counter) -> "TorchLM":
        """Train on ``train_ids``; validation picks the weights kept, the plateau decays and early stopping.

        ``time_budget`` counts from the start of this call on ``clock`` and covers validation (see
        :class:`lmbench.models.neural.training.TimeBudget`).
        """
        started_at = clock()
        self.check_params()
        train_ids = np.asarray(train_ids)
        config = self.train_config()
        if train_ids.size < config.min_train_tokens():
            raise LmbenchError(f"the training split has {train_ids.size} tokens; batch_size={self.batch_size} "
                               f"and {self.window_param}={self.window} need {config.min_train_tokens()}; lower them")
        self.check_vocabulary(vocab)
        self.vocab_ = vocab
        self.device_ = select_device(self.device)
        self.net_ = self.build_network(len(vocab)).to(self.device_)
        valid = self._validation(np.asarray(valid_ids)) if valid_ids is not None and len(valid_ids) else None
        observer = EpochProgress(self.display_label, config.epochs) if self.progress and current_world().is_main \
            else None
        with deterministic_kernels(self.device_):
            log = train_network(self.net_, train_ids, bos_id=vocab.bos_id, config=config, device=self.device_,
                                valid=valid, clock=clock, started_at=started_at, observer=observer,
                                label=self.display_label)
        self.curve_, self.summary_ = log.rows, {**self.network_summary(), **log.summary()}
        self.net_.eval()
        return self

    def _validation(self, valid_ids: np.ndarray) -> Validation:
        """The validation split for the loop: the mean NLL of a prefix, scored exactly as a test split is."""
        def mean_nll(n: int, stop: Callable[[], bool] | None = None) -> float | None:
            whole = n == valid_ids.size  # the time budget's probe shows no bar
            scores = self._score(valid_ids[:n], progress=whole, desc=f"{self.display_label} valid", stop=stop)
            return None if scores is None else -float(scores.sum()) / n
        return Validation(int(valid_ids.size), mean_nll)

    def fitted_summary(self) -> dict:
        """How the fit went: epochs run and completed, best epoch, final lr, ``stopped_by``, tokens trained."""
        return dict(self.summary_)

    def valid_use(self) -> str:
        """Validation picks the weights kept (best epoch), the plateau decays and early stopping."""
        return "best epoch chosen on valid" if self.summary_.get("best_epoch") is not None else ""

    def training_curve(self) -> list[dict]:
        return [dict(row) for row in self.curve_]

    @property
    def n_params(self) -> int:
        """Number of trainable parameters (shared, tied weights counted once)."""
        self._check_fitted()
        return sum(p.numel() for p in self.net_.parameters() if p.requires_grad)

    # ------------------------------------------------------------ scoring and generation

    @contextmanager
    def scoring(self) -> Iterator[None]:
        """The one context of every scoring path: eval mode, no gradients, deterministic kernels, float32."""
        with deterministic_kernels(self.device_), float32_scoring(self.device_), torch.no_grad():
            self.net_.eval()
            yield

    def _score(self, ids, *, progress: bool = True, desc: str = "",
               stop: Callable[[], bool] | None = None) -> np.ndarray | None:
        """Log-probability of every token of ``ids`` (N,); None if ``stop()`` said so between two pieces."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.empty(ids.size, dtype=np.float64)
        done = 0
        with self.scoring(), token_bar(ids.size, desc or f"{self.display_label} scoring", self.progress and progress) \
                as bar:
            for piece in self.score_pieces(ids):
                out[done:done + piece.size] = piece
                done += piece.size
                bar.update(piece.size)
                if stop is not None and done < ids.size and stop():
                    return None
        return out

    def logprobs(self, ids) -> np.ndarray:
        """Log-probability of every token, the split read as one stream (a bar on a terminal if ``progress``)."""
        self._check_fitted()
        return self._score(ids)

    def next_logprobs(self, history) -> np.ndarray:
        self._check_fitted()
        history = [int(t) for t in np.asarray(history, dtype=np.int64).reshape(-1)]
        with self.scoring():
            logp, _ = self.advance([self.vocab_.bos_id] + history, None)  # (V,)
        return logp.cpu().double().numpy()

    def generate(self, prefix_ids, length: int, *, temperature: float = 1.0, top_k: int | None = None,
                 greedy: bool = False, seed: int = 0) -> np.ndarray:
        """Read the prefix once, then sample one token at a time, carrying the network's state.

        The same tokens as :meth:`LanguageModel.generate` (which re-reads the whole history for
        every token) for the same seed, in time linear in the length. Arguments are the base's.
        """
        self._check_fitted()
        check_generate_options(length, temperature=temperature, top_k=top_k, greedy=greedy, seed=seed)
        rng = np.random.default_rng(seed)
        prefix = [int(t) for t in prefix_array(prefix_ids)]
        out = []
        with self.scoring():
            logp, state = self.advance([self.vocab_.bos_id] + prefix, None)  # (V,)
            for i in range(length):
                token = sample_token(logp.cpu().double().numpy(), rng, temperature=temperature, top_k=top_k,
                                     greedy=greedy)
                out.append(token)
                if i + 1 < length:
                    logp, state = self.advance([token], state)
        return np.asarray(out, dtype=np.int64)

    # ------------------------------------------------------------ persistence

    def state_dict(self) -> dict:
        """Network tensors (on CPU), the learning curve and the training summary (plain values)."""
        return {"network": {k: v.detach().cpu() for k, v in self.net_.state_dict().items()},
                "curve": self.training_curve(), "summary": self.fitted_summary()}

    def load_state_dict(self, state: dict) -> None:
        """Rebuild the network for ``vocab_`` and load its weights; on the configured device if present, else CPU.

        Raises:
            LmbenchError: the saved tensors do not match the network the parameters build (missing or
                unexpected names, other shapes), with what differs.
        """
        try:
            self.device_ = select_device(self.device)
        except LmbenchError:  # saved on an accelerator this machine lacks
            self.device_ = torch.device("cpu")
        net = self.build_network(len(self.vocab_))
        check_weights(net.state_dict(), state.get("network"), self.describe_network(len(self.vocab_)))
        net.load_state_dict(state["network"])
        self.net_ = net.to(self.device_).eval()
        self.curve_ = [dict(row) for row in state["curve"]]
        self.summary_ = dict(state["summary"])
        for key, value in curve_totals(self.curve_).items():  # checkpoints of 0.2 lack them
            self.summary_.setdefault(key, value)

    def environment(self) -> dict:
        """Where the model runs or ran: device, CPU (and GPU) model, torch's version and threads.

        On CUDA, ``cuda_deterministic`` says that fitting and scoring ran under deterministic kernels.
        """
        return describe_device(getattr(self, "device_", None) or select_device(self.device))


def check_weights(expected: dict, found, network: str) -> None:
    """Raise a one-line LmbenchError unless ``found`` has exactly the names and shapes of ``expected``.

    Args:
        expected: the network's state dict (name -> tensor).
        found: the checkpoint's tensors.
        network: a few words naming the network, for the message.
    """
    if not isinstance(found, dict):
        raise LmbenchError(f"the checkpoint holds no network weights for the {network} network; "
                           f"it is damaged or not an lmbench neural model: refit and save it again")
    problems = []
    missing = [name for name in expected if name not in found]
    unexpected = [name for name in found if name not in expected]
    shapes = [f"{name} is {_shape(found[name])} in the checkpoint, {tuple(t.shape)} in the network"
              for name, t in expected.items() if name in found and _shape(found[name]) != tuple(t.shape)]
    if missing:
        problems.append("missing " + _some(missing))
    if unexpected:
        problems.append("unexpected " + _some(unexpected))
    if shapes:
        problems.append(_some(shapes))
    if problems:
        raise LmbenchError(f"the checkpoint's weights do not match the {network} network its parameters build: "
                           f"{'; '.join(problems)}; it was saved by another configuration or lmbench version, "
                           f"refit the model")


def _shape(value) -> tuple | str:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else f"a {type(value).__name__}, not a tensor"


def _some(items: list[str], shown: int = 3) -> str:
    """The first ``shown`` items joined by commas, then how many more."""
    text = ", ".join(items[:shown])
    return text + (f" and {len(items) - shown} more" if len(items) > shown else "")
