"""Recurrent language models: RNN, GRU and LSTM on ``torch.nn`` and d2l's RNN from scratch.

The networks of Zaremba et al. (2014), "Recurrent Neural Network Regularization", and of d2l
(Zhang et al., "Dive into Deep Learning", ch. 9-10): an input layer (one-hot or an embedding over
the V + 1 input ids, ``<s>`` included), stacked recurrent layers and an output layer over the V
predictable tokens. A split is scored as ONE stream from the start state, in chunks with the state
carried between them (:func:`stream_pieces`); the state is never reset at line ends.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...data.vocab import Vocabulary
from ...errors import LmbenchError, check_choice, check_int, check_number
from .devices import select_device
from .precision import cpu_has_bfloat16_lstm
from .shell import TorchLM

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
def stream_pieces(net: nn.Module, ids: np.ndarray, bos_id: int, chunk: int,
                  device: torch.device) -> Iterator[np.ndarray]:
    """Log-probabilities of ``ids`` read as one stream, ``chunk`` time steps per forward, the state carried.

    The inputs are ``[<s>, x0, .., x_{N-2}]``, the targets ``[x0, .., x_{N-1}]``: every token is
    conditioned on everything before it in the split, and all N are scored. Chunking changes
    memory use only. The stream is deliberately not split into parallel streams, which would
    restart the state and score other conditionals.

    Yields:
        float64 arrays, the scores of consecutive chunks (together (N,)).
    """
    net.eval()
    targets = torch.as_tensor(np.asarray(ids, dtype=np.int64))  # (N,)
    inputs = torch.cat([torch.tensor([bos_id]), targets[:-1]]).to(device)  # (N,)
    targets = targets.to(device)
    state = None
    for start in range(0, targets.numel(), chunk):
        x = inputs[start:start + chunk, None]  # (T, 1)
        logits, state = net(x, state)  # (T, 1, V)
        logp = torch.log_softmax(logits[:, 0].float(), dim=-1)  # (T, V)
        yield logp.gather(1, targets[start:start + chunk, None])[:, 0].cpu().double().numpy()  # (T,)


def stream_logprobs(net: nn.Module, ids: np.ndarray, bos_id: int, chunk: int, device: torch.device) -> np.ndarray:
    """All of :func:`stream_pieces` as one float64 array (N,)."""
    pieces = list(stream_pieces(net, ids, bos_id, chunk, device))
    return np.concatenate(pieces) if pieces else np.empty(0, dtype=np.float64)


# ---------------------------------------------------------------- the language model


#: what ``init`` can name: which parameters ``init_scale`` initializes.
INITS = ("all", "embedding-output")


@dataclass(eq=False)
class RecurrentLM(TorchLM):
    """A recurrent language model trained with truncated BPTT (shell: :class:`~lmbench.models.neural.shell.TorchLM`).

    The defaults are d2l's for The Time Machine: one-hot input, one layer of 256 hidden units,
    windows of 35 steps; the training options are :class:`~lmbench.models.neural.training.TrainingOptions`'.

    Args:
        cell: "rnn" (tanh), "gru", "lstm" (torch.nn layers) or "rnn-scratch" (d2l's from-scratch
            tanh RNN; one layer, one-hot input, no dropout or tying).
        hidden_size: units per layer.
        num_layers: stacked layers (deep models need at least 2).
        embedding_size: input embedding width; None: one-hot inputs (fine for characters).
        dropout: dropout probability in [0, 1) on the embedding, between layers and on the output.
        tie_weights: share the embedding with the output layer (needs embedding_size == hidden_size).
        init_scale: the half-width of the uniform initialization chosen by ``init``; None: torch's
            default initialization everywhere (d2l's N(0, 0.01^2) for rnn-scratch).
        init: "all" (every parameter uniform in [-init_scale, init_scale], Zaremba et al.'s code)
            or "embedding-output" (the PyTorch word_language_model example's ``init_weights``: the
            embedding and output matrix uniform, the output bias zero, the recurrent layers at
            torch's default; needs an embedding).
        num_steps: the training window, time steps per batch (truncated BPTT length).
        eval_tokens: time steps per forward pass when scoring (memory only; renamed from ``eval_chunk``).
    """

    cell: str = "lstm"
    hidden_size: int = 256
    num_layers: int = 1
    embedding_size: int | None = None
    dropout: float = 0.0
    tie_weights: bool = False
    init_scale: float | None = None
    init: str = "all"
    num_steps: int = 35
    eval_tokens: int = 1024

    renamed_params = {"eval_chunk": "eval_tokens"}
    #: the fewest layers this class accepts.
    min_layers = 1

    def check_network(self) -> None:
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
        for name, only in CELLS[self.cell].fixed.items():
            if getattr(self, name) != only:
                raise LmbenchError(f"cell {self.cell!r} supports only {name}={only!r}, got {getattr(self, name)!r}; "
                                   f"use cell rnn for that option")

    def check_params(self) -> None:
        super().check_params()
        if self.precision == "bfloat16" and self.cell == "lstm" and select_device(self.device).type == "cpu" \
                and not cpu_has_bfloat16_lstm():
            raise LmbenchError("precision 'bfloat16' for an LSTM on this CPU needs oneDNN's bfloat16 kernels "
                               "(AVX-512 BF16 or AMX), which it lacks; use precision float32 here, or a GPU")

    def architecture(self, vocab_size: int) -> Architecture:
        return Architecture(vocab_size, self.hidden_size, self.num_layers, self.embedding_size, self.dropout,
                            self.tie_weights)

    def build_network(self, vocab_size: int) -> nn.Module:
        net = CELLS[self.cell].build(self.architecture(vocab_size))
        if self.init_scale is not None:
            initialize(net, self.init, self.init_scale)
        return net

    def describe_network(self, vocab_size: int) -> str:
        return f"cell {self.cell!r}, {self.num_layers}x{self.hidden_size}, vocabulary {vocab_size}"

    def default_label(self) -> str:
        return self.cell

    def check_vocabulary(self, vocab: Vocabulary) -> None:
        if self.embedding_size is None and len(vocab) + 1 > ONE_HOT_WARN_IDS:
            warnings.warn(f"one-hot inputs over {len(vocab) + 1:,} ids are slow; set embedding_size "
                          f"(e.g. --set MODEL.embedding_size=200)", stacklevel=3)

    def score_pieces(self, ids: np.ndarray) -> Iterator[np.ndarray]:
        return stream_pieces(self.net_, ids, self.vocab_.bos_id, self.eval_tokens, self.device_)

    def advance(self, ids: list[int], state) -> tuple[torch.Tensor, object]:
        x = torch.tensor(ids, dtype=torch.int64, device=self.device_)[:, None]  # (T, 1)
        logits, state = self.net_(x, state)  # (T, 1, V)
        return torch.log_softmax(logits[-1, 0].float(), dim=-1), state  # (V,)


class DeepRecurrentLM(RecurrentLM):
    """A :class:`RecurrentLM` of at least two stacked layers (d2l's deep RNN): same parameters."""

    min_layers = 2
