"""A decoder-only Transformer language model (GPT-style) under the same contract as the recurrent models.

The decoder of Vaswani et al. (2017), "Attention Is All You Need", without encoder and
cross-attention, in the pre-LayerNorm arrangement of Radford et al. (2019), "Language Models are
Unsupervised Multitask Learners" (GPT-2), with the output layer tied to the token embedding. It
trains on windows of ``context`` tokens and scores a split as one stream read through sliding
windows (:func:`window_plan`), so that every token sees up to ``context`` tokens before it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import LmbenchError, check_int, check_number
from .shell import TorchLM

#: the standard deviation of GPT-2's normal initialization of weights and embeddings.
INIT_STD = 0.02


# ---------------------------------------------------------------- the network


@dataclass(frozen=True)
class TransformerArchitecture:
    """Shape of a decoder-only Transformer.

    Args:
        vocab_size: V, the number of predictable tokens; inputs range over V + 1 ids (``<s>`` = V).
        d_model: width of the residual stream (embeddings, attention, block outputs).
        num_layers: Transformer blocks.
        n_heads: attention heads per block (they divide ``d_model``).
        d_ff: hidden width of each block's MLP.
        context: the most input positions one forward pass sees (rows of the position embedding).
        dropout: dropout on the embeddings and on each residual branch (attention and MLP outputs).
        attn_dropout: dropout on the attention weights.
    """

    vocab_size: int
    d_model: int
    num_layers: int
    n_heads: int
    d_ff: int
    context: int
    dropout: float = 0.0
    attn_dropout: float = 0.0

    @property
    def n_inputs(self) -> int:
        return self.vocab_size + 1


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t attends to positions <= t (Vaswani et al. 2017, sec. 3.2)."""

    def __init__(self, arch: TransformerArchitecture):
        super().__init__()
        self.n_heads, self.attn_dropout = arch.n_heads, arch.attn_dropout
        self.qkv = nn.Linear(arch.d_model, 3 * arch.d_model)
        self.proj = nn.Linear(arch.d_model, arch.d_model)
        self.drop = nn.Dropout(arch.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, D)."""
        batch, steps, width = x.shape
        q, k, v = self.qkv(x).view(batch, steps, 3, self.n_heads, width // self.n_heads).unbind(2)  # (B, T, H, Dh)
        attended = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                  dropout_p=self.attn_dropout if self.training else 0.0,
                                                  is_causal=True)  # (B, H, T, Dh)
        return self.drop(self.proj(attended.transpose(1, 2).reshape(batch, steps, width)))  # (B, T, D)


class Block(nn.Module):
    """A pre-LayerNorm Transformer block (GPT-2): ``x + attn(LN(x))``, then ``x + mlp(LN(x))``."""

    def __init__(self, arch: TransformerArchitecture):
        super().__init__()
        self.ln1 = nn.LayerNorm(arch.d_model)
        self.attn = CausalSelfAttention(arch)
        self.ln2 = nn.LayerNorm(arch.d_model)
        self.mlp = nn.Sequential(nn.Linear(arch.d_model, arch.d_ff), nn.GELU(), nn.Linear(arch.d_ff, arch.d_model),
                                 nn.Dropout(arch.dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, D)."""
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TransformerNet(nn.Module):
    """Embeddings -> pre-LN blocks -> final LayerNorm -> output layer tied to the token embedding.

    Initialization as GPT-2 (nanoGPT's ``_init_weights``): linear weights and both embeddings
    N(0, 0.02^2), biases zero, the output projection of each residual branch N(0, (0.02 /
    sqrt(2 num_layers))^2) so that the residual stream's variance does not grow with depth.

    The forward is time-major like the recurrent networks' so :func:`lmbench.models.neural.training.train_network`
    trains it unchanged: it maps ids (T, B), T <= context, and a state it ignores to logits
    (T, B, V) and None.
    """

    def __init__(self, arch: TransformerArchitecture):
        super().__init__()
        self.arch = arch
        self.token_embedding = nn.Embedding(arch.n_inputs, arch.d_model)
        self.position_embedding = nn.Embedding(arch.context, arch.d_model)
        self.drop = nn.Dropout(arch.dropout)
        self.blocks = nn.ModuleList(Block(arch) for _ in range(arch.num_layers))
        self.ln_f = nn.LayerNorm(arch.d_model)
        self._initialize()

    def _initialize(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, INIT_STD)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            for projection in (block.attn.proj, block.mlp[2]):
                nn.init.normal_(projection.weight, 0.0, INIT_STD / math.sqrt(2 * self.arch.num_layers))

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """The final layer's normalized outputs (B, T, D) for batch-major ids (B, T), position t at t."""
        positions = torch.arange(inputs.size(1), device=inputs.device)  # (T,)
        x = self.drop(self.token_embedding(inputs) + self.position_embedding(positions))  # (B, T, D)
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)  # (B, T, D)

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (..., V) over the predictable tokens: the first V rows of the token embedding."""
        return F.linear(features, self.token_embedding.weight[: self.arch.vocab_size])

    def forward(self, inputs: torch.Tensor, state=None):
        """Logits (T, B, V) for time-major ids (T, B); the state is ignored and None returned."""
        return self.decode(self.features(inputs.t())).transpose(0, 1), None  # (T, B, V)


# ---------------------------------------------------------------- scoring with sliding windows


@dataclass(frozen=True)
class WindowPlan:
    """Where the windows that score a stream of N positions lie.

    Window w covers stream positions ``starts[w] .. starts[w] + length - 1`` and scores its last
    ``n_scored[w]`` positions; the scored positions of the windows, in order, are 0 .. N-1, each once.
    """

    starts: np.ndarray
    n_scored: np.ndarray
    length: int

    def visible_from(self) -> np.ndarray:
        """``a_i`` for every position i (N,): the first stream input position i is predicted from."""
        return np.repeat(self.starts, self.n_scored)


def window_plan(n_positions: int, context: int, stride: int) -> WindowPlan:
    """The sliding windows that score a stream (see :func:`window_pieces`).

    Args:
        n_positions: N, the positions of the stream (tokens of the split).
        context: window length (when N >= context; else one window of all N positions).
        stride: positions between window starts; each window after the first scores its last ``stride``
            positions, the last window (aligned with the end) what is left.

    Returns:
        The plan; every window has length ``min(N, context)``.
    """
    if n_positions <= context:
        return WindowPlan(np.zeros(1, dtype=np.int64), np.array([n_positions], dtype=np.int64), n_positions)
    ends = np.arange(context, n_positions, stride, dtype=np.int64)  # exclusive ends of the regular windows
    ends = np.append(ends, n_positions)
    n_scored = np.diff(ends, prepend=0)  # (W,): context for the first window, stride then, the rest last
    return WindowPlan(ends - context, n_scored, context)


@torch.no_grad()
def window_pieces(net: TransformerNet, ids: np.ndarray, bos_id: int, context: int, stride: int,
                  batch_windows: int, device: torch.device) -> Iterator[np.ndarray]:
    """Log-probabilities of ``ids``, the stream ``[<s>, x0, .., x_{N-2}]`` read through sliding windows.

    Target i is predicted from the stream inputs ``a_i .. i`` (:meth:`WindowPlan.visible_from`):
    the first ``context`` tokens see everything before them (``<s>`` included), every later one
    between ``context - stride + 1`` and ``context`` preceding tokens; with ``stride=1`` exactly
    ``min(i + 1, context)``, at the cost of one window per token.

    Args:
        net: the network.
        ids: the split (N,).
        bos_id: the start-of-text input id.
        context: window length.
        stride: see :func:`window_plan`.
        batch_windows: windows per forward pass (memory and speed only).
        device: where ``net`` lives.

    Yields:
        float64 arrays, the scores of consecutive batches of windows (together (N,)).
    """
    net.eval()
    targets = torch.as_tensor(np.asarray(ids, dtype=np.int64))  # (N,)
    if not targets.numel():
        return
    inputs = torch.cat([torch.tensor([bos_id]), targets[:-1]]).to(device)  # (N,)
    targets = targets.to(device)
    plan = window_plan(targets.numel(), context, stride)
    steps = torch.arange(plan.length, device=device)  # (L,)
    for first in range(0, plan.starts.size, batch_windows):
        starts = torch.as_tensor(plan.starts[first:first + batch_windows], device=device)  # (b,)
        n_scored = torch.as_tensor(plan.n_scored[first:first + batch_windows], device=device)  # (b,)
        index = starts[:, None] + steps  # (b, L)
        scored = steps >= plan.length - n_scored[:, None]  # (b, L): the last n_scored positions
        features = net.features(inputs[index])[scored]  # (M, D), in stream order
        logits = net.decode(features)  # (M, V)
        logp = torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)  # (M, V)
        yield logp.gather(1, targets[index[scored]][:, None])[:, 0].cpu().double().numpy()  # (M,)


def window_logprobs(net: TransformerNet, ids: np.ndarray, bos_id: int, context: int, stride: int,
                    batch_windows: int, device: torch.device) -> np.ndarray:
    """All of :func:`window_pieces` as one float64 array (N,)."""
    pieces = list(window_pieces(net, ids, bos_id, context, stride, batch_windows, device))
    return np.concatenate(pieces) if pieces else np.empty(0, dtype=np.float64)


# ---------------------------------------------------------------- the language model


@dataclass(eq=False)
class TransformerLM(TorchLM):
    """A decoder-only, pre-LayerNorm Transformer language model (shell: :class:`~lmbench.models.neural.shell.TorchLM`).

    The training options are :class:`~lmbench.models.neural.training.TrainingOptions`' with windows
    of ``context`` tokens; ``sampling="random"`` trains on shuffled windows, "sequential" on windows
    in corpus order (no state is carried either way). The presets choose AdamW with warm-up and
    cosine decay (:mod:`lmbench.models.presets`).

    Args:
        d_model: width of the residual stream and of the (tied) embedding.
        num_layers: Transformer blocks (renamed from ``n_layers``).
        n_heads: attention heads per block; must divide ``d_model``.
        d_ff: hidden width of the MLP; None: 4 * d_model (GPT-2's ratio).
        context: the most preceding tokens a prediction sees; also the training window and the
            number of learned positions.
        stride: scoring windows' step, 1 <= stride <= context (see :func:`window_pieces`); None:
            ``max(1, context // 4)``. ``fitted_summary`` states ``context``, ``stride`` and
            ``min_context``, the fewest tokens a prediction past the first window sees.
        dropout: dropout probability in [0, 1) on the embeddings and on each residual branch (GPT-2's
            ``embd_pdrop`` and ``resid_pdrop``).
        attn_dropout: dropout probability in [0, 1) on the attention weights (GPT-2's ``attn_pdrop``);
            on a CPU it makes attention leave its fused kernel, so it is 0 by default.
        eval_tokens: input tokens per forward pass when scoring, ``eval_tokens // context`` windows
            (at least one; memory and speed only). Replaces ``eval_batch`` (windows per forward):
            ``eval_batch=b`` is ``eval_tokens=b * context``.
    """

    d_model: int = 128
    num_layers: int = 4
    n_heads: int = 4
    d_ff: int | None = None
    context: int = 128
    stride: int | None = None
    dropout: float = 0.1
    attn_dropout: float = 0.0
    eval_tokens: int = 2048

    renamed_params = {"n_layers": "num_layers", "eval_batch": "eval_tokens"}
    window_param = "context"

    @classmethod
    def upgrade_params(cls, params: dict) -> dict:
        """As the shell's, and ``eval_batch`` (windows per forward) as ``eval_tokens`` (tokens per forward)."""
        params = dict(params)
        if "eval_batch" in params:
            context = params.get("context", cls.__dataclass_fields__["context"].default)
            params["eval_tokens"] = params.pop("eval_batch") * context
        return super().upgrade_params(params)

    def check_network(self) -> None:
        check_int("d_model", self.d_model, 1)
        check_int("num_layers", self.num_layers, 1)
        check_int("n_heads", self.n_heads, 1)
        if self.d_model % self.n_heads:
            raise LmbenchError(f"n_heads must divide d_model, got d_model={self.d_model} and n_heads={self.n_heads}; "
                               f"e.g. n_heads={_divisor_near(self.d_model, self.n_heads)}")
        if self.d_ff is not None:
            check_int("d_ff", self.d_ff, 1)
        check_int("context", self.context, 1)
        if self.stride is not None:
            check_int("stride", self.stride, 1)
            if self.stride > self.context:
                raise LmbenchError(f"stride must be at most context ({self.context}), got {self.stride}; a larger "
                                   f"stride would leave tokens unscored")
        check_number("dropout", self.dropout, 0.0, 1.0, open_high=True)
        check_number("attn_dropout", self.attn_dropout, 0.0, 1.0, open_high=True)

    def scoring_stride(self) -> int:
        """The stride scoring uses: ``stride``, else ``max(1, context // 4)``."""
        return self.stride if self.stride is not None else max(1, self.context // 4)

    def architecture(self, vocab_size: int) -> TransformerArchitecture:
        return TransformerArchitecture(vocab_size, self.d_model, self.num_layers, self.n_heads,
                                       self.d_ff if self.d_ff is not None else 4 * self.d_model, self.context,
                                       self.dropout, self.attn_dropout)

    def build_network(self, vocab_size: int) -> nn.Module:
        return TransformerNet(self.architecture(vocab_size))

    def describe_network(self, vocab_size: int) -> str:
        return f"Transformer {self.num_layers}x{self.d_model} (context {self.context}), vocabulary {vocab_size}"

    def default_label(self) -> str:
        return "transformer"

    def network_summary(self) -> dict:
        """What each scored token sees: context, stride, and the fewest preceding tokens past the first window."""
        stride = self.scoring_stride()
        return {"context": self.context, "stride": stride, "min_context": self.context - stride + 1}

    def score_pieces(self, ids: np.ndarray) -> Iterator[np.ndarray]:
        return window_pieces(self.net_, ids, self.vocab_.bos_id, self.context, self.scoring_stride(),
                             max(1, self.eval_tokens // self.context), self.device_)

    def advance(self, ids: list[int], state) -> tuple[torch.Tensor, list[int]]:
        """The state is the last ``context`` inputs: the next token is predicted from them."""
        window = ((state or []) + ids)[-self.context:]
        x = torch.as_tensor(np.asarray(window, dtype=np.int64), device=self.device_)[None, :]  # (1, T)
        logits = self.net_.decode(self.net_.features(x)[0, -1])  # (V,)
        return torch.log_softmax(logits.double(), dim=-1), window  # (V,)


def _divisor_near(width: int, heads: int) -> int:
    """The divisor of ``width`` closest to ``heads`` (the smaller one on a tie), for the error message."""
    divisors = [d for d in range(1, width + 1) if width % d == 0]
    return min(divisors, key=lambda d: (abs(d - heads), d))
