"""A decoder-only Transformer language model (GPT-style) under the same contract as the recurrent models.

The network is the decoder of Vaswani et al. (2017), "Attention Is All You Need", without the
encoder and cross-attention, in the pre-LayerNorm arrangement of Radford et al. (2019), "Language
Models are Unsupervised Multitask Learners" (GPT-2): token and learned position embeddings, then
``n_layers`` blocks ``x + attn(LN(x))``, ``x + mlp(LN(x))`` with causal multi-head self-attention
(``torch.nn.functional.scaled_dot_product_attention(is_causal=True)``) and a GELU MLP, a final
LayerNorm, and an output layer tied to the token embedding. Inputs range over the V + 1 ids (the
start-of-text id V is an input only); the output layer is the first V rows of the embedding.

Training. The shared loop of :mod:`lmbench.models.neural.training` trains it on windows of ``context`` tokens of
the training stream ``[<s>, x0, .., x_{N-2}] -> [x0, .., x_{N-1}]`` (its ``num_steps`` is
``context``); no state is carried between windows (the forward takes and ignores the recurrent
state and returns None). The class defaults are :class:`lmbench.models.neural.training.TrainConfig`'s; the
presets (:mod:`lmbench.models.presets`) choose AdamW with warm-up and cosine decay.

Scoring semantics. ``logprobs(ids)`` reads a split as ONE stream like the recurrent models: the
inputs are ``[<s>, x0, .., x_{N-2}]``, the targets ``[x0, .., x_{N-1}]``, all N tokens are scored,
and the context runs across line ends (the end-of-line token is an ordinary token). A Transformer
sees at most ``context`` inputs, so the stream is read through sliding windows of ``context``
inputs moved ``stride`` positions at a time (:func:`window_plan`): the first window scores all its
positions, every later one only its last ``stride`` (the last window is aligned with the end of the
split and scores what is left). Precisely, target i (0-based, x_i) is predicted from the inputs
``a_i .. i`` of the stream, i.e. ``x_{a_i - 1} .. x_{i-1}`` (``<s>`` standing for x_{-1}), where

* ``a_i = 0`` for i < ``context``: the first ``context`` tokens see everything before them, ``<s>``
  included;
* otherwise ``a_i`` is the start of the window that scores i: each token sees between
  ``context - stride + 1`` and ``context`` preceding tokens (the token just before it included).

With ``stride=1`` every token sees exactly the ``min(i + 1, context)`` inputs before it: the full
context, at the cost of one window per token. The default ``stride`` is ``max(1, context // 4)``:
every token sees at least ``context - stride + 1`` preceding tokens (97 of 128 for the presets)
and at most ``context``, for the cost of about four windows per ``context`` tokens.
``fitted_summary`` states ``context``, ``stride`` and ``min_context`` (so the results' note
column does). ``next_logprobs(history)`` conditions on the last ``context`` inputs of
``[<s>] + history``, as ``stride=1`` scores.

Reproducibility. Fitting draws the initial weights, dropout masks and window order from torch's
global generator (:func:`lmbench.models.neural.seeding.seed_everything` before ``fit`` repeats it); on CUDA,
fitting and scoring run under :func:`lmbench.models.neural.seeding.deterministic_kernels`.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ...errors import LmbenchError
from .devices import deterministic_kernels
from .precision import float32_scoring
from ...errors import check_int, check_number
from .training import TrainConfig, Validation, describe_device, select_device, train_network
from ...data.vocab import Vocabulary
from ..base import LanguageModel
from .recurrent import check_weights

#: the standard deviation of GPT-2's normal initialization of weights and embeddings.
INIT_STD = 0.02


# ---------------------------------------------------------------- the network


@dataclass(frozen=True)
class TransformerArchitecture:
    """Shape of a decoder-only Transformer.

    Args:
        vocab_size: V, the number of predictable tokens; inputs range over V + 1 ids (``<s>`` = V).
        d_model: width of the residual stream (embeddings, attention, block outputs).
        n_layers: Transformer blocks.
        n_heads: attention heads per block (they divide ``d_model``).
        d_ff: hidden width of each block's MLP.
        context: the most input positions one forward pass sees (rows of the position embedding).
        dropout: dropout on the embeddings and on each residual branch (attention and MLP outputs).
        attn_dropout: dropout on the attention weights.
    """

    vocab_size: int
    d_model: int
    n_layers: int
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
    sqrt(2 n_layers))^2) so that the residual stream's variance does not grow with depth.

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
        self.blocks = nn.ModuleList(Block(arch) for _ in range(arch.n_layers))
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
                nn.init.normal_(projection.weight, 0.0, INIT_STD / math.sqrt(2 * self.arch.n_layers))

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
    """The sliding windows of :mod:`this module <lmbench.models.neural.transformer>`'s scoring semantics.

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
def window_logprobs(net: TransformerNet, ids: np.ndarray, bos_id: int, context: int, stride: int,
                    batch_windows: int, device: torch.device, *, progress: bool = False,
                    desc: str = "scoring") -> np.ndarray:
    """Log-probability of every token of ``ids``, the stream read through sliding windows (module docstring).

    Args:
        net: the network.
        ids: the split (N,).
        bos_id: the start-of-text input id.
        context: window length.
        stride: see :func:`window_plan`.
        batch_windows: windows per forward pass (memory and speed only: the scores do not depend on it).
        device: where ``net`` lives.
        progress: show a progress bar (tokens scored) on stderr if it is a terminal; silent otherwise.
        desc: the bar's label.

    Returns:
        float64 array (N,).
    """
    net.eval()
    targets = torch.as_tensor(np.asarray(ids, dtype=np.int64))  # (N,)
    out = np.empty(targets.numel(), dtype=np.float64)
    if not targets.numel():
        return out
    inputs = torch.cat([torch.tensor([bos_id]), targets[:-1]]).to(device)  # (N,)
    targets = targets.to(device)
    plan = window_plan(targets.numel(), context, stride)
    steps = torch.arange(plan.length, device=device)  # (L,)
    done = 0
    with tqdm(total=targets.numel(), desc=desc, unit="tok", unit_scale=True, file=sys.stderr, leave=False,
              dynamic_ncols=True, disable=None if progress else True) as bar:
        for first in range(0, plan.starts.size, batch_windows):
            starts = torch.as_tensor(plan.starts[first:first + batch_windows], device=device)  # (b,)
            n_scored = torch.as_tensor(plan.n_scored[first:first + batch_windows], device=device)  # (b,)
            index = starts[:, None] + steps  # (b, L)
            scored = steps >= plan.length - n_scored[:, None]  # (b, L): the last n_scored positions
            features = net.features(inputs[index])[scored]  # (M, D), in stream order
            logits = net.decode(features)  # (M, V)
            logp = torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)
            picked = logp.gather(1, targets[index[scored]][:, None])[:, 0]  # (M,)
            out[done:done + picked.numel()] = picked.cpu().double().numpy()
            done += picked.numel()
            bar.update(picked.numel())
    return out


# ---------------------------------------------------------------- the language model

#: the training defaults, which TransformerLM's training arguments take from TrainConfig (one source of defaults).
_DEFAULTS = TrainConfig()


class TransformerLM(LanguageModel):
    """A decoder-only, pre-LayerNorm Transformer language model (Vaswani et al. 2017; Radford et al. 2019).

    Args:
        d_model: width of the residual stream and of the (tied) embedding.
        n_layers: Transformer blocks.
        n_heads: attention heads per block; must divide ``d_model``.
        d_ff: hidden width of the MLP; None: 4 * d_model (GPT-2's ratio).
        context: the most preceding tokens a prediction sees; also the training window length (the
            loop's ``num_steps``) and the number of learned positions.
        stride: scoring windows' step (see the module docstring), 1 <= stride <= context; None:
            ``max(1, context // 4)``.
        dropout: dropout probability in [0, 1) on the embeddings and on each residual branch (GPT-2's
            ``embd_pdrop`` and ``resid_pdrop``).
        attn_dropout: dropout probability in [0, 1) on the attention weights (GPT-2's ``attn_pdrop``).
            0 by default: on a CPU, attention dropout makes ``scaled_dot_product_attention`` leave its
            fused kernel for the explicit (B, H, T, T) computation, several times slower.

    The training arguments (batch_size, sampling, epochs, time_budget, optimizer, lr, weight_decay,
    clip, lr_schedule, lr_decay, patience, decay_start_epoch, early_stopping, progress, warmup,
    min_lr_ratio, precision) are :class:`lmbench.models.neural.training.TrainConfig`'s, with its defaults and meanings
    (``num_steps`` is ``context``). ``sampling="random"`` trains on shuffled windows; "sequential"
    on windows in corpus order (no state is carried either way). Then:

        eval_batch: windows per forward pass when scoring (memory and speed only; scores do not depend on it).
        device: "auto" (CUDA, else MPS, else CPU), "cpu", "cuda" or "mps".
    """

    family = "neural"
    stochastic = True
    trains_collectively = True

    def __init__(self, d_model: int = 128, n_layers: int = 4, n_heads: int = 4, d_ff: int | None = None,
                 context: int = 128, stride: int | None = None, dropout: float = 0.1, attn_dropout: float = 0.0,
                 batch_size: int = _DEFAULTS.batch_size, sampling: str = _DEFAULTS.sampling,
                 epochs: int = _DEFAULTS.epochs, time_budget: float | None = _DEFAULTS.time_budget,
                 optimizer: str = _DEFAULTS.optimizer, lr: float = _DEFAULTS.lr,
                 weight_decay: float = _DEFAULTS.weight_decay, clip: float | None = _DEFAULTS.clip,
                 lr_schedule: str = _DEFAULTS.lr_schedule, lr_decay: float = _DEFAULTS.lr_decay,
                 patience: int = _DEFAULTS.patience, decay_start_epoch: int = _DEFAULTS.decay_start_epoch,
                 early_stopping: int | None = _DEFAULTS.early_stopping, warmup: float = _DEFAULTS.warmup,
                 min_lr_ratio: float = _DEFAULTS.min_lr_ratio, eval_batch: int = 16, device: str = "auto",
                 progress: bool = _DEFAULTS.progress, precision: str = _DEFAULTS.precision):
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.d_ff = d_ff
        self.context = context
        self.stride = stride
        self.dropout = dropout
        self.attn_dropout = attn_dropout
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
        self.eval_batch = eval_batch
        self.device = device
        self.progress = progress
        self.precision = precision

    # ------------------------------------------------------------ parameters

    def check_params(self) -> None:
        check_int("d_model", self.d_model, 1)
        check_int("n_layers", self.n_layers, 1)
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
        check_int("eval_batch", self.eval_batch, 1)
        select_device(self.device)  # an unknown or unavailable device fails here, before any data is read
        self.train_config().check()

    def train_config(self) -> TrainConfig:
        """The training loop's hyperparameters: this model's, with windows of ``context`` tokens."""
        return dataclasses.replace(TrainConfig.from_object(self), num_steps=self.context)

    def min_train_tokens(self) -> int:
        """batch_size * context + context - 1: one full batch even after the largest random offset."""
        return self.train_config().min_train_tokens()

    def scoring_stride(self) -> int:
        """The stride scoring uses: ``stride``, else ``max(1, context // 4)``."""
        return self.stride if self.stride is not None else max(1, self.context // 4)

    def architecture(self, vocab_size: int) -> TransformerArchitecture:
        return TransformerArchitecture(vocab_size, self.d_model, self.n_layers, self.n_heads,
                                       self.d_ff if self.d_ff is not None else 4 * self.d_model, self.context,
                                       self.dropout, self.attn_dropout)

    def _display_name(self) -> str:
        """The name progress lines use: the run's label, else "transformer"."""
        return self.label or "transformer"

    # ------------------------------------------------------------ fitting

    def fit(self, train_ids, valid_ids=None, *, vocab: Vocabulary) -> "TransformerLM":
        """Train on ``train_ids``; validation picks the weights kept (and the plateau decays, early stopping).

        ``time_budget`` counts from the start of this call and covers validation (see
        :mod:`lmbench.models.neural.training`).
        """
        started_at = time.perf_counter()
        self.check_params()
        train_ids = np.asarray(train_ids)
        if train_ids.size < self.min_train_tokens():
            raise LmbenchError(f"the training split has {train_ids.size} tokens; batch_size={self.batch_size} "
                               f"and context={self.context} need {self.min_train_tokens()}; lower them")
        self.vocab_ = vocab
        self.device_ = select_device(self.device)
        self.net_ = TransformerNet(self.architecture(len(vocab))).to(self.device_)
        valid = None
        if valid_ids is not None and len(valid_ids):
            valid = self._validation(np.asarray(valid_ids))
        with deterministic_kernels(self.device_):
            log = train_network(self.net_, train_ids, bos_id=vocab.bos_id, config=self.train_config(),
                                device=self.device_, valid=valid, started_at=started_at,
                                label=self._display_name())
        self.curve_, self.summary_ = log.rows, {**self._context_summary(), **log.summary()}
        self.net_.eval()
        return self

    def _validation(self, valid_ids: np.ndarray) -> Validation:
        """The validation split for the training loop: mean NLL of a prefix, scored as the test split is."""
        def mean_nll(n: int) -> float:
            whole = n == valid_ids.size  # the probe of the time budget shows no bar
            return -float(self._score(valid_ids[:n], progress=whole, desc=f"{self._display_name()} valid").sum()) / n
        return Validation(int(valid_ids.size), mean_nll)

    def _context_summary(self) -> dict:
        """What each scored token sees: context, stride, and the fewest preceding tokens past the first window."""
        stride = self.scoring_stride()
        return {"context": self.context, "stride": stride, "min_context": self.context - stride + 1}

    def fitted_summary(self) -> dict:
        return dict(self.summary_)

    def valid_use(self) -> str:
        """Validation picks the weights kept (best epoch), the plateau decays and early stopping."""
        return "best epoch chosen on valid" if self.summary_.get("best_epoch") is not None else ""

    def training_curve(self) -> list[dict]:
        return [dict(row) for row in self.curve_]

    @property
    def n_params(self) -> int:
        """Number of trainable parameters (the tied output matrix counted once, with the embedding)."""
        self._check_fitted()
        return sum(p.numel() for p in self.net_.parameters() if p.requires_grad)

    # ------------------------------------------------------------ scoring

    def _score(self, ids, *, progress: bool = True, desc: str = "") -> np.ndarray:
        with deterministic_kernels(self.device_), float32_scoring(self.device_):
            return window_logprobs(self.net_, ids, self.vocab_.bos_id, self.context, self.scoring_stride(),
                                   self.eval_batch, self.device_, progress=self.progress and progress,
                                   desc=desc or f"{self._display_name()} scoring")

    def logprobs(self, ids) -> np.ndarray:
        """Log-probability of every token, the split read as one stream through sliding windows.

        What each token is conditioned on is stated in the module docstring. A progress bar (tokens
        scored) is shown on stderr when it is a terminal and ``progress`` is set.
        """
        self._check_fitted()
        return self._score(ids)

    @torch.no_grad()
    def next_logprobs(self, history) -> np.ndarray:
        """Log-distribution (V,) of the next token given the last ``context`` inputs of ``[<s>] + history``."""
        self._check_fitted()
        self.net_.eval()
        history = np.asarray(history, dtype=np.int64).reshape(-1)
        window = np.append(np.int64(self.vocab_.bos_id), history)[-self.context:]
        x = torch.as_tensor(window, device=self.device_)[None, :]  # (1, T)
        with deterministic_kernels(self.device_):
            logits = self.net_.decode(self.net_.features(x)[0, -1])  # (V,)
        return torch.log_softmax(logits.double(), dim=-1).cpu().numpy()

    # ------------------------------------------------------------ persistence

    def state_dict(self) -> dict:
        """Network tensors (on CPU), the learning curve and the training summary (plain values)."""
        return {"network": {k: v.detach().cpu() for k, v in self.net_.state_dict().items()},
                "curve": self.training_curve(), "summary": self.fitted_summary()}

    def load_state_dict(self, state: dict) -> None:
        """Rebuild the network for ``vocab_`` and load its weights; on the configured device if present, else CPU.

        Raises:
            LmbenchError: the saved tensors do not match the network the parameters build.
        """
        try:
            self.device_ = select_device(self.device)
        except LmbenchError:  # saved on an accelerator this machine lacks
            self.device_ = torch.device("cpu")
        arch = self.architecture(len(self.vocab_))
        net = TransformerNet(arch)
        check_weights(net.state_dict(), state.get("network"),
                      f"Transformer {arch.n_layers}x{arch.d_model} (context {arch.context}), "
                      f"vocabulary {arch.vocab_size}")
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


def _divisor_near(width: int, heads: int) -> int:
    """The divisor of ``width`` closest to ``heads`` (the smaller one on a tie), for the error message."""
    divisors = [d for d in range(1, width + 1) if width % d == 0]
    return min(divisors, key=lambda d: (abs(d - heads), d))
