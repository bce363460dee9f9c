"""Recurrent neural language models: RNN, GRU and LSTM on ``torch.nn``, deep variants, d2l's scratch RNN.

Every model here is a :class:`RecurrentLM`: an input layer (one-hot or an embedding over the
V + 1 input ids, ``<s>`` included), a recurrent network and an output layer over the V predictable
tokens. The recurrent cell is a constructor parameter looked up in :data:`CELLS`; the registry's
presets (:data:`lmbench.models.presets.NEURAL_PRESETS`) only choose parameter values.

Scoring semantics. ``logprobs(ids)`` reads a split as ONE stream (batch size 1): the input is
``[<s>, x0, .., x_{N-2}]``, the targets ``[x0, .., x_{N-1}]``, and the hidden state is carried
from the first token to the last, so every token is conditioned on everything before it in the
split and all N tokens are scored (the same N as the n-gram models). The stream is processed in
chunks of ``eval_chunk`` time steps with the state carried between chunks, which changes nothing
but memory use. It is deliberately NOT split into B parallel streams: that would restart the state
B times and score a different conditional for each stream's first tokens. Unlike the n-gram models,
the state is not reset at line ends; the end-of-line token is an ordinary token.

Defaults. The training defaults are :class:`lmbench.models.neural.training.TrainConfig`'s (d2l's character-level
setting with Adam; see there); the network defaults are d2l's for The Time Machine: one-hot input,
one layer of 256 hidden units. The presets are described in :mod:`lmbench.models.presets`.

Reproducibility. Fitting draws the initial weights, dropout masks and window offsets from torch's
global generator, so :func:`lmbench.models.neural.seeding.seed_everything` before ``fit`` makes it repeatable; on
CUDA, fitting and scoring run under :func:`lmbench.models.neural.seeding.deterministic_kernels`.
:meth:`RecurrentLM.environment` records where the model ran.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tqdm.auto import tqdm

from ...errors import LmbenchError
from .devices import deterministic_kernels
from .precision import float32_scoring
from ...errors import check_choice, check_int, check_number
from .training import TrainConfig, Validation, describe_device, select_device, train_network
from ...data.vocab import Vocabulary
from ..base import LanguageModel, sample_token

#: above this many input ids, one-hot input is slow and memory-hungry: fit() warns.
ONE_HOT_WARN_IDS = 1000


# ---------------------------------------------------------------- networks


@dataclass(frozen=True)
class Architecture:
    """Shape of a recurrent network.

    Args:
        vocab_size: V, the number of predictable tokens; inputs range over V + 1 ids (``<s>`` = V).
        hidden_size: units per recurrent layer.
        num_layers: stacked recurrent layers (each layer's output at step t is the next one's input at t).
        embedding_size: input embedding width; None: one-hot input vectors of size V + 1.
        dropout: dropout on the embedding, between layers and on the last layer's output.
        tie_weights: share the embedding matrix (its first V rows) with the output layer.
    """

    vocab_size: int
    hidden_size: int
    num_layers: int = 1
    embedding_size: int | None = None
    dropout: float = 0.0
    tie_weights: bool = False

    @property
    def n_inputs(self) -> int:
        return self.vocab_size + 1


class TorchRecurrentNet(nn.Module):
    """Input layer -> ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` -> linear output layer, time-major.

    Args:
        layer: the torch.nn recurrent layer class.
        arch: the network's shape.
    """

    def __init__(self, layer: type, arch: Architecture):
        super().__init__()
        self.arch = arch
        input_size = arch.embedding_size or arch.n_inputs
        self.embedding = nn.Embedding(arch.n_inputs, arch.embedding_size) if arch.embedding_size else None
        self.drop = nn.Dropout(arch.dropout)
        self.rnn = layer(input_size, arch.hidden_size, arch.num_layers,
                         dropout=arch.dropout if arch.num_layers > 1 else 0.0)
        if arch.tie_weights:
            self.decoder = None
            self.decoder_bias = nn.Parameter(torch.zeros(arch.vocab_size))
        else:
            self.decoder = nn.Linear(arch.hidden_size, arch.vocab_size)

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """Input vectors (T, B, E) for ids (T, B); one-hot rows get no dropout."""
        if self.embedding is None:
            return F.one_hot(inputs, self.arch.n_inputs).to(self.rnn.weight_ih_l0.dtype)  # (T, B, V+1)
        return self.drop(self.embedding(inputs))  # (T, B, E)

    def decode(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits (T, B, V) from the last layer's outputs (T, B, H)."""
        if self.decoder is None:
            return F.linear(hidden, self.embedding.weight[: self.arch.vocab_size], self.decoder_bias)
        return self.decoder(hidden)

    def forward(self, inputs: torch.Tensor, state=None):
        """Logits (T, B, V) and the final state for ids (T, B) and an initial state (None: zeros)."""
        outputs, state = self.rnn(self.embed(inputs), state)  # (T, B, H)
        return self.decode(self.drop(outputs)), state


class ScratchRNN(nn.Module):
    """The RNN of d2l's "RNN from scratch" chapter, with its explicit parameters and one-hot inputs.

    For a one-hot input x_t (B, V+1) and hidden state h (B, H)::

        h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h)        o_t = h_t W_hq + b_q

    It computes exactly what a one-layer ``nn.RNN`` (tanh) with a linear output does, with
    W_xh = weight_ih_l0.T, W_hh = weight_hh_l0.T, b_h = bias_ih_l0 + bias_hh_l0, W_hq = decoder.weight.T
    and b_q = decoder.bias; the test suite checks that both give the same log-probabilities. The
    state has nn.RNN's shape (1, B, H) so the two are interchangeable.

    Args:
        arch: the network's shape (one layer, one-hot input, no dropout, no tying).
    """

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        sigma = 0.01  # d2l's initialization scale
        n_in, hidden, n_out = arch.n_inputs, arch.hidden_size, arch.vocab_size
        self.W_xh = nn.Parameter(torch.randn(n_in, hidden) * sigma)
        self.W_hh = nn.Parameter(torch.randn(hidden, hidden) * sigma)
        self.b_h = nn.Parameter(torch.zeros(hidden))
        self.W_hq = nn.Parameter(torch.randn(hidden, n_out) * sigma)
        self.b_q = nn.Parameter(torch.zeros(n_out))

    def forward(self, inputs: torch.Tensor, state=None):
        """Logits (T, B, V) and the final state (1, B, H) for ids (T, B), stepping through time."""
        x = F.one_hot(inputs, self.arch.n_inputs).to(self.W_xh.dtype)  # (T, B, V+1)
        h = x.new_zeros(inputs.size(1), self.arch.hidden_size) if state is None else state[0]  # (B, H)
        outputs = []
        for x_t in x:  # (B, V+1)
            h = torch.tanh(x_t @ self.W_xh + h @ self.W_hh + self.b_h)  # (B, H)
            outputs.append(h)
        hidden = torch.stack(outputs)  # (T, B, H)
        return hidden @ self.W_hq + self.b_q, h.unsqueeze(0)  # (T, B, V), (1, B, H)


@dataclass(frozen=True)
class CellType:
    """What a ``cell`` name builds, and the options that network does not offer.

    Args:
        build: Architecture -> network.
        fixed: option name -> the only value the network accepts.
    """

    build: Callable[[Architecture], nn.Module]
    fixed: dict = field(default_factory=dict)


#: recurrent cells by name.
CELLS: dict[str, CellType] = {
    "rnn": CellType(partial(TorchRecurrentNet, nn.RNN)),  # tanh nonlinearity
    "gru": CellType(partial(TorchRecurrentNet, nn.GRU)),
    "lstm": CellType(partial(TorchRecurrentNet, nn.LSTM)),
    "rnn-scratch": CellType(ScratchRNN, {"num_layers": 1, "embedding_size": None, "dropout": 0.0,
                                         "tie_weights": False}),
}


def initialize(net: nn.Module, init: str, scale: float) -> None:
    """Re-initialize ``net`` in place as ``init`` says (see :class:`RecurrentLM`'s ``init``).

    "all": every parameter uniform in [-scale, scale] (Zaremba et al. 2014's code). "embedding-output":
    what the PyTorch word_language_model example's ``RNNModel.init_weights`` does with initrange =
    ``scale`` -- embedding (encoder) weight uniform in [-scale, scale], output (decoder) bias zero,
    output weight uniform in [-scale, scale] -- the recurrent layers keep torch's default
    U(-1/sqrt(H), 1/sqrt(H)). With tied weights the output matrix is the embedding, drawn once.
    """
    if init == "all":
        for param in net.parameters():
            nn.init.uniform_(param, -scale, scale)
        return
    nn.init.uniform_(net.embedding.weight, -scale, scale)
    if net.decoder is None:  # tied: the embedding is the output matrix
        nn.init.zeros_(net.decoder_bias)
    else:
        nn.init.zeros_(net.decoder.bias)
        nn.init.uniform_(net.decoder.weight, -scale, scale)


# ---------------------------------------------------------------- scoring


@torch.no_grad()
def stream_logprobs(net: nn.Module, ids: np.ndarray, bos_id: int, chunk: int, device: torch.device, *,
                    progress: bool = False, desc: str = "scoring") -> np.ndarray:
    """Log-probability of every token of ``ids`` read as one stream (see the module docstring).

    Args:
        net: a recurrent network.
        ids: the split (N,).
        bos_id: the start-of-text input id.
        chunk: time steps per forward call; the state is carried between chunks.
        device: where ``net`` lives.
        progress: show a progress bar (tokens scored) on stderr if it is a terminal; silent otherwise.
        desc: the bar's label.

    Returns:
        float64 array (N,).
    """
    net.eval()
    targets = torch.as_tensor(np.asarray(ids, dtype=np.int64))  # (N,)
    out = np.empty(targets.numel(), dtype=np.float64)
    inputs = torch.cat([torch.tensor([bos_id]), targets[:-1]]).to(device)  # (N,)
    targets = targets.to(device)
    state = None
    with tqdm(total=targets.numel(), desc=desc, unit="tok", unit_scale=True, file=sys.stderr, leave=False,
              dynamic_ncols=True, disable=None if progress else True) as bar:
        for start in range(0, targets.numel(), chunk):
            x = inputs[start:start + chunk, None]  # (T, 1)
            logits, state = net(x, state)  # (T, 1, V)
            logp = torch.log_softmax(logits[:, 0].float(), dim=-1)  # (T, V)
            picked = logp.gather(1, targets[start:start + chunk, None])[:, 0]  # (T,)
            out[start:start + picked.numel()] = picked.cpu().double().numpy()
            bar.update(picked.numel())
    return out


# ---------------------------------------------------------------- the language model


#: what ``init`` can name: which parameters ``init_scale`` initializes.
INITS = ("all", "embedding-output")

#: the training defaults, which RecurrentLM's training arguments take from TrainConfig (one source of defaults).
_DEFAULTS = TrainConfig()


class RecurrentLM(LanguageModel):
    """A recurrent language model trained with truncated BPTT (see :mod:`lmbench.models.neural.training`).

    Args:
        cell: recurrent cell: "rnn" (tanh), "gru", "lstm" (torch.nn layers) or "rnn-scratch"
            (d2l's from-scratch tanh RNN; one layer, one-hot input, no dropout or tying).
        hidden_size: units per layer.
        num_layers: stacked layers (deep models need at least 2).
        embedding_size: input embedding width; None: one-hot inputs (fine for characters).
        dropout: dropout probability in [0, 1) on the embedding, between layers and on the output.
        tie_weights: share the embedding with the output layer (needs embedding_size == hidden_size).
        init_scale: the half-width of the uniform initialization chosen by ``init``; None: torch's
            default initialization everywhere (d2l's N(0, 0.01^2) for rnn-scratch).
        init: which parameters ``init_scale`` initializes: "all" (every parameter uniform in
            [-init_scale, init_scale], as Zaremba et al.'s code does) or "embedding-output" (the
            PyTorch word_language_model example's ``RNNModel.init_weights``: the embedding and the
            output matrix uniform in [-init_scale, init_scale], the output bias zero, the recurrent
            layers left at torch's default initialization; needs an embedding).

    The training arguments (num_steps, batch_size, sampling, epochs, time_budget, optimizer, lr,
    weight_decay, clip, lr_schedule, lr_decay, patience, decay_start_epoch, early_stopping, progress,
    warmup, min_lr_ratio, precision) are :class:`lmbench.models.neural.training.TrainConfig`'s, with its defaults and meanings
    (so the warm-up and cosine schedule works for recurrent models too). Then:

        eval_chunk: time steps per forward call when scoring (memory only; scores do not depend on it).
        device: "auto" (CUDA, else MPS, else CPU), "cpu", "cuda" or "mps".
    """

    family = "neural"

    #: the fewest layers this class accepts.
    min_layers = 1
    stochastic = True
    trains_collectively = True

    def __init__(self, cell: str = "lstm", hidden_size: int = 256, num_layers: int = 1,
                 embedding_size: int | None = None, dropout: float = 0.0, tie_weights: bool = False,
                 init_scale: float | None = None, init: str = "all",
                 num_steps: int = _DEFAULTS.num_steps, batch_size: int = _DEFAULTS.batch_size,
                 sampling: str = _DEFAULTS.sampling, epochs: int = _DEFAULTS.epochs,
                 time_budget: float | None = _DEFAULTS.time_budget, optimizer: str = _DEFAULTS.optimizer,
                 lr: float = _DEFAULTS.lr, weight_decay: float = _DEFAULTS.weight_decay,
                 clip: float | None = _DEFAULTS.clip, lr_schedule: str = _DEFAULTS.lr_schedule,
                 lr_decay: float = _DEFAULTS.lr_decay, patience: int = _DEFAULTS.patience,
                 decay_start_epoch: int = _DEFAULTS.decay_start_epoch,
                 early_stopping: int | None = _DEFAULTS.early_stopping, eval_chunk: int = 1024,
                 device: str = "auto", progress: bool = _DEFAULTS.progress, warmup: float = _DEFAULTS.warmup,
                 min_lr_ratio: float = _DEFAULTS.min_lr_ratio, precision: str = _DEFAULTS.precision):
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.embedding_size = embedding_size
        self.dropout = dropout
        self.tie_weights = tie_weights
        self.init_scale = init_scale
        self.init = init
        self.num_steps = num_steps
        self.batch_size = batch_size
        self.sampling = sampling
        self.epochs = epochs
        self.time_budget = time_budget
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.clip = clip
        self.lr_schedule = lr_schedule
        self.lr_decay = lr_decay
        self.patience = patience
        self.decay_start_epoch = decay_start_epoch
        self.early_stopping = early_stopping
        self.warmup = warmup
        self.min_lr_ratio = min_lr_ratio
        self.eval_chunk = eval_chunk
        self.device = device
        self.progress = progress
        self.precision = precision

    # ------------------------------------------------------------ parameters

    def check_params(self) -> None:
        check_choice("cell", self.cell, CELLS)
        check_int("hidden_size", self.hidden_size, 1)
        if isinstance(self.num_layers, int) and not isinstance(self.num_layers, bool) \
                and self.num_layers < self.min_layers:
            raise LmbenchError(f"a deep model needs num_layers >= {self.min_layers}, got {self.num_layers}; "
                               f"use the one-layer model (rnn, gru, lstm) for a single layer")
        check_int("num_layers", self.num_layers, 1)
        if self.embedding_size is not None:
            check_int("embedding_size", self.embedding_size, 1)
        check_number("dropout", self.dropout, 0.0, 1.0, open_high=True)
        if not isinstance(self.tie_weights, bool):
            raise LmbenchError(f"tie_weights must be true or false, got {self.tie_weights!r}")
        if self.tie_weights and self.embedding_size != self.hidden_size:
            raise LmbenchError(f"tie_weights needs embedding_size equal to hidden_size ({self.hidden_size}), "
                               f"got embedding_size={self.embedding_size}")
        if self.init_scale is not None:
            check_number("init_scale", self.init_scale, 0.0, open_low=True)
        check_choice("init", self.init, INITS)
        if self.init == "embedding-output" and (self.init_scale is None or self.embedding_size is None):
            raise LmbenchError("init 'embedding-output' needs init_scale (e.g. 0.1) and an embedding "
                               f"(embedding_size), got init_scale={self.init_scale}, "
                               f"embedding_size={self.embedding_size}")
        check_int("eval_chunk", self.eval_chunk, 1)
        select_device(self.device)  # an unknown or unavailable device fails here, before any data is read
        for name, only in CELLS[self.cell].fixed.items():
            if getattr(self, name) != only:
                raise LmbenchError(f"cell {self.cell!r} supports only {name}={only!r}, got {getattr(self, name)!r}; "
                                   f"use cell rnn for that option")
        self.train_config().check()

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_object(self)

    def min_train_tokens(self) -> int:
        """batch_size * num_steps + num_steps - 1: one full batch even after the largest random offset."""
        return self.train_config().min_train_tokens()

    def architecture(self, vocab_size: int) -> Architecture:
        return Architecture(vocab_size, self.hidden_size, self.num_layers, self.embedding_size, self.dropout,
                            self.tie_weights)

    def _build_network(self, vocab_size: int) -> nn.Module:
        net = CELLS[self.cell].build(self.architecture(vocab_size))
        if self.init_scale is not None:
            initialize(net, self.init, self.init_scale)
        return net

    def _display_name(self) -> str:
        """The name progress lines use: the run's label, else the cell."""
        return self.label or self.cell

    # ------------------------------------------------------------ fitting

    def fit(self, train_ids, valid_ids=None, *, vocab: Vocabulary) -> "RecurrentLM":
        """Train on ``train_ids``; validation picks the learning-rate decays and the weights kept.

        ``time_budget`` counts from the start of this call and covers validation (see
        :mod:`lmbench.models.neural.training`).
        """
        started_at = time.perf_counter()
        self.check_params()
        train_ids = np.asarray(train_ids)
        if train_ids.size < self.min_train_tokens():
            raise LmbenchError(f"the training split has {train_ids.size} tokens; batch_size={self.batch_size} "
                               f"and num_steps={self.num_steps} need {self.min_train_tokens()}; lower them")
        if self.embedding_size is None and len(vocab) + 1 > ONE_HOT_WARN_IDS:
            warnings.warn(f"one-hot inputs over {len(vocab) + 1:,} ids are slow; set embedding_size "
                          f"(e.g. --set MODEL.embedding_size=200)", stacklevel=2)
        self.vocab_ = vocab
        self.device_ = select_device(self.device)
        self.net_ = self._build_network(len(vocab)).to(self.device_)
        valid = None
        if valid_ids is not None and len(valid_ids):
            valid = self._validation(np.asarray(valid_ids))
        with deterministic_kernels(self.device_):
            log = train_network(self.net_, train_ids, bos_id=vocab.bos_id, config=self.train_config(),
                                device=self.device_, valid=valid, started_at=started_at,
                                label=self._display_name())
        self.curve_, self.summary_ = log.rows, log.summary()
        self.net_.eval()
        return self

    def _validation(self, valid_ids: np.ndarray) -> Validation:
        """The validation split for the training loop: mean NLL of a prefix, scored as one stream."""
        def mean_nll(n: int) -> float:
            whole = n == valid_ids.size  # the probe of the time budget shows no bar
            return -float(self._stream(valid_ids[:n], progress=whole, desc=f"{self._display_name()} valid").sum()) / n
        return Validation(int(valid_ids.size), mean_nll)

    def fitted_summary(self) -> dict:
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

    def _stream(self, ids, *, progress: bool = True, desc: str = "") -> np.ndarray:
        with deterministic_kernels(self.device_), float32_scoring(self.device_):
            return stream_logprobs(self.net_, ids, self.vocab_.bos_id, self.eval_chunk, self.device_,
                                   progress=self.progress and progress,
                                   desc=desc or f"{self._display_name()} scoring")

    def logprobs(self, ids) -> np.ndarray:
        """Log-probability of every token, the split read as one stream from the start state.

        A progress bar (tokens scored) is shown on stderr when it is a terminal and ``progress`` is set.
        """
        self._check_fitted()
        return self._stream(ids)

    @torch.no_grad()
    def _advance(self, ids, state):
        """Feed ids (a list) from ``state``; return the log-distribution (V,) after the last one and the state."""
        x = torch.tensor(ids, dtype=torch.int64, device=self.device_)[:, None]  # (T, 1)
        logits, state = self.net_(x, state)  # (T, 1, V)
        return torch.log_softmax(logits[-1, 0].float(), dim=-1), state  # (V,)

    def next_logprobs(self, history) -> np.ndarray:
        self._check_fitted()
        self.net_.eval()
        history = [int(t) for t in np.asarray(history, dtype=np.int64)]
        logp, _ = self._advance([self.vocab_.bos_id] + history, None)
        return logp.cpu().double().numpy()

    def generate(self, prefix_ids, length: int, *, temperature: float = 1.0, top_k: int | None = None,
                 greedy: bool = False, seed: int = 0) -> np.ndarray:
        """Warm the state up on the prefix in one pass, then sample one token at a time carrying the state.

        Gives the same tokens as :meth:`LanguageModel.generate` (which re-reads the whole history for
        every token) for the same seed, in time linear in the length. Arguments are those of the base.
        """
        self._check_fitted()
        self.net_.eval()
        rng = np.random.default_rng(seed)
        prefix = [int(t) for t in np.asarray(prefix_ids, dtype=np.int64).reshape(-1)]
        logp, state = self._advance([self.vocab_.bos_id] + prefix, None)
        out = []
        for i in range(length):
            token = sample_token(logp.cpu().double().numpy(), rng, temperature=temperature, top_k=top_k,
                                 greedy=greedy)
            out.append(token)
            if i + 1 < length:
                logp, state = self._advance([token], state)
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
        net = self._build_network(len(self.vocab_))
        check_weights(net.state_dict(), state.get("network"),
                      f"cell {self.cell!r}, {self.num_layers}x{self.hidden_size}, vocabulary {len(self.vocab_)}")
        net.load_state_dict(state["network"])
        self.net_ = net.to(self.device_).eval()
        self.curve_ = [dict(row) for row in state["curve"]]
        self.summary_ = dict(state["summary"])

    def environment(self) -> dict:
        """Where the model runs or ran: device, CPU (and GPU) model, torch's version and threads.

        On CUDA, ``cuda_deterministic`` says that fitting and scoring ran under
        :func:`lmbench.models.neural.seeding.deterministic_kernels`.
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


class DeepRecurrentLM(RecurrentLM):
    """A :class:`RecurrentLM` of at least two stacked layers (d2l's deep RNN): same parameters."""

    min_layers = 2

