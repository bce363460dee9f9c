"""The training loop of every neural model: batches of the training stream, optimizer, lr schedule, stopping.

Truncated backpropagation through time over d2l's two minibatch schemes (Zhang et al., "Dive into
Deep Learning", sec. 9.3) with the state carried and detached between batches, as in Zaremba et al.
(2014) and PyTorch's word_language_model. Any ``nn.Module`` whose ``forward(ids (T, B), state)``
returns ``(logits (T, B, V), state)`` trains here (the Transformer ignores the state).
:func:`train_network` reads top to bottom; what rank 0 decides is in :class:`Coordinator`, the
time budget in :class:`TimeBudget`, the lr schedule in :class:`Schedule`, the display in
:mod:`lmbench.models.neural.progress`.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from ...errors import LmbenchError, check_choice, check_int, check_number
from ...scoring.metrics import exp_or_inf
from .distributed import World, all_reduce_sum, broadcast_from_main, current_world, release_collectives
from .precision import PRECISIONS, training_autocast, training_matmuls
from .progress import TrainingObserver

OPTIMIZERS: dict[str, type] = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
SAMPLINGS = ("sequential", "random")
LR_SCHEDULES = ("plateau", "step", "cosine")


# ---------------------------------------------------------------- configuration


@dataclass(kw_only=True)
class TrainingOptions:
    """The training hyperparameters of every neural model and their defaults: the one place both are defined.

    Neural models inherit these fields as keyword-only constructor arguments (see
    :class:`lmbench.models.neural.shell.TorchLM`); a new option is one field here, its check in
    :meth:`check` and its use in the loop. The defaults are d2l's character-level setting (32
    streams, gradient clipping at norm 1) with Adam at lr 0.005 instead of plain SGD, so that a few
    epochs suffice on a CPU, and up to 30 epochs with early stopping after 3 without improvement.

    Args:
        batch_size: parallel streams (sequential) or windows (random) per batch; in a data-parallel
            fit, the batch of all processes together.
        sampling: "sequential" (state carried across batches) or "random" (fresh state per batch).
        epochs: maximum number of passes over the training split.
        time_budget: seconds the whole fit may take, validation included (None: no limit); see
            :class:`TimeBudget` for how closely it is kept.
        optimizer: "sgd", "adam" or "adamw".
        lr: initial learning rate.
        weight_decay: L2 penalty on weight matrices only (decoupled for adamw); biases, normalization
            layers and embedding tables are not decayed (see :func:`parameter_groups`).
        clip: maximum global gradient norm (None or 0: no clipping).
        lr_schedule: "plateau", "step" or "cosine" (see :class:`Schedule`).
        lr_decay: multiplicative decay factor in (0, 1] of "plateau" and "step".
        patience: epochs without improvement tolerated before a plateau decay (0: decay at once).
        decay_start_epoch: last epoch trained at the full lr under "step".
        warmup: warm-up of "cosine": a number in [0, 1) is a fraction of the planned batches
            (rounded to whole batches), a whole number >= 1 a number of batches.
        min_lr_ratio: the "cosine" schedule's final lr as a fraction of ``lr``, in [0, 1].
        early_stopping: stop after this many epochs without validation improvement (None: never).
        precision: numerics of the training steps, "float32", "tf32" or "bfloat16"; validation and
            scoring are float32 whatever it is (see :mod:`lmbench.models.neural.precision`).
    """

    batch_size: int = 32
    sampling: str = "sequential"
    epochs: int = 30
    time_budget: float | None = None
    optimizer: str = "adam"
    lr: float = 0.005
    weight_decay: float = 0.0
    clip: float | None = 1.0
    lr_schedule: str = "plateau"
    lr_decay: float = 0.5
    patience: int = 0
    decay_start_epoch: int = 4
    early_stopping: int | None = 3
    warmup: float = 0.0
    min_lr_ratio: float = 0.1
    precision: str = "float32"

    def check(self) -> None:
        """Raise LmbenchError naming the first invalid value and what is allowed."""
        check_int("batch_size", self.batch_size, 1)
        check_choice("sampling", self.sampling, SAMPLINGS)
        check_int("epochs", self.epochs, 1)
        if self.time_budget is not None:
            check_number("time_budget", self.time_budget, 0.0, open_low=True, unit=" seconds")
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_number("lr", self.lr, 0.0, open_low=True)
        check_number("weight_decay", self.weight_decay, 0.0)
        if self.clip is not None:
            check_number("clip", self.clip, 0.0)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_number("lr_decay", self.lr_decay, 0.0, 1.0, open_low=True)
        check_int("patience", self.patience, 0)
        check_int("decay_start_epoch", self.decay_start_epoch, 0)
        if self.early_stopping is not None:
            check_int("early_stopping", self.early_stopping, 1)
        check_number("warmup", self.warmup, 0.0)
        if self.warmup >= 1 and self.warmup != int(self.warmup):
            raise LmbenchError(f"warmup must be a fraction in [0, 1) of the planned batches or a whole number of "
                               f"batches, got {self.warmup!r}")
        check_number("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        check_choice("precision", self.precision, PRECISIONS)

    def options(self) -> dict:
        """The training options of this object (e.g. a model) by name."""
        return {name: getattr(self, name) for name in TrainingOptions.__dataclass_fields__}


@dataclass(kw_only=True)
class TrainConfig(TrainingOptions):
    """What the loop reads: the training options and the window length ``num_steps`` (time steps per batch).

    A model's window is its ``num_steps`` (recurrent) or its ``context`` (Transformer).
    """

    num_steps: int

    def check(self) -> None:
        check_int("num_steps", self.num_steps, 1)
        super().check()

    def warmup_steps(self, total_steps: int) -> int:
        """Warm-up batches of the "cosine" schedule for ``total_steps`` planned batches."""
        if self.warmup < 1:
            return int(round(self.warmup * total_steps))
        return int(self.warmup)

    def min_train_tokens(self) -> int:
        """Tokens needed for one full batch of ``num_steps`` windows after the largest random offset."""
        return self.batch_size * self.num_steps + self.num_steps - 1


# ---------------------------------------------------------------- batches


def training_stream(ids: np.ndarray, bos_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Input and target arrays of a split, int64 on ``device``: the first token is learned from ``<s>``.

    Returns:
        (inputs (N,), targets (N,)): inputs are ``[bos, x0 .. x_{N-2}]``, targets ``[x0 .. x_{N-1}]``.
    """
    targets = torch.as_tensor(np.asarray(ids, dtype=np.int64))  # (N,)
    inputs = torch.cat([torch.tensor([bos_id], dtype=torch.int64), targets[:-1]])  # (N,)
    return inputs.to(device), targets.to(device)


def sequential_batches(inputs: torch.Tensor, targets: torch.Tensor, batch_size: int, num_steps: int,
                       offset: int, part: tuple[int, int] = (0, 1)) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
    """Consecutive (T, B) windows of ``batch_size`` parallel streams (d2l's sequential partitioning).

    After skipping ``offset`` pairs, the stream is cut into B contiguous rows, the columns of an
    (L, B) array (PyTorch word_language_model's ``batchify``); consecutive windows continue each
    column, so the state is carried from one batch to the next. Up to B - 1 trailing pairs are
    left out of the epoch::

        stream  a b c d e f g h i j k l m n o p q r     (N = 18, B = 3, L = 6, num_steps = 4)

                 col 0  col 1  col 2
        t = 0      a      g      m     \\
        t = 1      b      h      n      | batch 1: rows 0-3, state starts at zero
        t = 2      c      i      o      |
        t = 3      d      j      p     /
        t = 4      e      k      q     \\  batch 2: rows 4-5, state carried from batch 1
        t = 5      f      l      r     /   (the last window may be shorter)

    Args:
        inputs, targets: the training stream (N,).
        batch_size: B, the number of parallel streams.
        num_steps: T, the window length.
        offset: pairs skipped at the start of this epoch.
        part: (rank, W) of a data-parallel fit: this rank's B / W columns, ``rank * B / W`` onwards
            (its own contiguous slice of the stream). W must divide B.

    Yields:
        (X, Y, weight): X and Y (T, B / W) int64; weight 1.0 (see :func:`random_batches`).
    """
    rank, world = part
    length = (inputs.numel() - offset) // batch_size
    used = slice(offset, offset + batch_size * length)
    mine = slice(rank * batch_size // world, (rank + 1) * batch_size // world)
    x = inputs[used].view(batch_size, length)[mine].t().contiguous()  # (L, B / W)
    y = targets[used].view(batch_size, length)[mine].t().contiguous()  # (L, B / W)
    for start in range(0, length, num_steps):
        yield x[start:start + num_steps], y[start:start + num_steps], 1.0  # (T, B / W), (T, B / W)


def random_batches(inputs: torch.Tensor, targets: torch.Tensor, batch_size: int, num_steps: int,
                   offset: int, generator: torch.Generator,
                   part: tuple[int, int] = (0, 1)) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
    """Shuffled (T, B) windows of ``num_steps`` pairs, ``batch_size`` per batch (d2l's random partitioning).

    Args:
        inputs, targets: the training stream (N,).
        batch_size: windows per batch (the last batch may be smaller).
        num_steps: T, the window length.
        offset: pairs skipped at the start of this epoch.
        generator: the CPU generator that shuffles the windows (seeded alike on every rank).
        part: (rank, W) of a data-parallel fit: of each batch's b windows, this rank takes
            ``[rank * b // W, (rank + 1) * b // W)``; a last batch of fewer than W windows is left out.

    Yields:
        (X, Y, weight): X and Y (T, b_r) int64, no state carried; weight ``W * b_r / b``, which makes
        the average of the ranks' mean losses (what DDP's averaged gradients minimize) the batch mean.
    """
    rank, world = part
    n_windows = (inputs.numel() - offset) // num_steps
    order = torch.randperm(n_windows, generator=generator).to(inputs.device)  # (n_windows,)
    steps = torch.arange(num_steps, device=inputs.device)[:, None]  # (T, 1)
    for first in range(0, n_windows, batch_size):
        batch = order[first:first + batch_size]  # (b,)
        if batch.numel() < world:
            return
        mine = batch[rank * batch.numel() // world:(rank + 1) * batch.numel() // world]  # (b_r,)
        index = offset + mine[None, :] * num_steps + steps  # (T, b_r)
        yield inputs[index], targets[index], world * mine.numel() / batch.numel()


def count_batches(n_pairs: int, config: TrainConfig, offset: int, world: int = 1) -> int:
    """Number of batches one epoch yields on each of ``world`` ranks."""
    if config.sampling == "sequential":
        return math.ceil(((n_pairs - offset) // config.batch_size) / config.num_steps)
    n_windows = (n_pairs - offset) // config.num_steps
    last = n_windows % config.batch_size
    return n_windows // config.batch_size + int(last >= world)


def detach_state(state):
    """Cut the autograd history of a recurrent state (a tensor, a tuple of tensors, or None)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


# ---------------------------------------------------------------- optimizer and schedule

#: modules whose own parameters are never decayed: embedding tables and normalization layers.
NO_DECAY_MODULES = (nn.Embedding, nn.EmbeddingBag, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm,
                    nn.modules.batchnorm._NormBase)


def parameter_groups(net: nn.Module, weight_decay: float) -> list[dict]:
    """Optimizer parameter groups that put weight decay on weight matrices only (nanoGPT's rule).

    A trainable parameter is decayed when it has two or more dimensions (the weight matrix of a
    linear or recurrent layer), as in nanoGPT's ``configure_optimizers``; biases, normalization
    gains and embedding tables are not, nor (unlike nanoGPT) an embedding tied to the output layer.
    Shared parameters are listed once.

    Returns:
        ``[{"params": matrices, "weight_decay": weight_decay}, {"params": others, "weight_decay": 0.0}]``
        with an empty group left out.
    """
    tables = {id(p) for module in net.modules() if isinstance(module, NO_DECAY_MODULES)
              for p in module.parameters(recurse=False)}
    decay, no_decay = [], []
    for param in net.parameters():
        if param.requires_grad:
            (decay if param.dim() >= 2 and id(param) not in tables else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": float(weight_decay)}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def make_optimizer(options: TrainingOptions, net: nn.Module) -> torch.optim.Optimizer:
    """The optimizer named by ``options.optimizer`` with its lr, decaying matrices only (:func:`parameter_groups`)."""
    return OPTIMIZERS[options.optimizer](parameter_groups(net, options.weight_decay), lr=options.lr)


class Schedule:
    """The learning-rate schedule of ``lr_schedule``: the loop calls :meth:`after_batch` and :meth:`after_epoch`.

    * "plateau": ``ReduceLROnPlateau`` on the validation perplexity, factor ``lr_decay`` after more
      than ``patience`` epochs without improvement (any decrease improves; every decay applies);
      acts after validated epochs only.
    * "step": lr of epoch e (from 1) is ``lr * lr_decay ** max(0, e - decay_start_epoch)``
      (Zaremba et al. 2014), set after each epoch.
    * "cosine": batch s (from 0, over the whole fit) trains at ``lr *``
      :func:`cosine_multiplier` ``(s, planned_batches, warmup, min_lr_ratio)``, set after each batch
      as warm-up schedules are (GPT-2, nanoGPT). A fit cut short ends before the floor.

    A learning-curve row's lr is the one its epoch started with.

    Args:
        options: the schedule's hyperparameters.
        optimizer: the optimizer whose groups' lr the schedule sets.
        planned_batches: optimizer steps of a fit that runs every epoch (the cosine's length).
    """

    def __init__(self, options: TrainConfig, optimizer: torch.optim.Optimizer, planned_batches: int):
        self.optimizer = optimizer
        self.kind = options.lr_schedule
        if self.kind == "plateau":
            self.scheduler = ReduceLROnPlateau(optimizer, mode="min", factor=options.lr_decay,
                                               patience=options.patience, threshold=0.0, threshold_mode="abs",
                                               cooldown=0, min_lr=0.0, eps=0.0)
        elif self.kind == "cosine":
            self.scheduler = LambdaLR(optimizer, partial(cosine_multiplier, total_steps=planned_batches,
                                                         warmup_steps=options.warmup_steps(planned_batches),
                                                         min_lr_ratio=options.min_lr_ratio))
        else:
            self.scheduler = LambdaLR(optimizer, partial(_step_multiplier, lr_decay=options.lr_decay,
                                                         decay_start_epoch=options.decay_start_epoch))

    @property
    def lr(self) -> float:
        """The current lr of the first parameter group (every group has the same)."""
        return float(self.optimizer.param_groups[0]["lr"])

    def after_batch(self) -> None:
        if self.kind == "cosine":
            self.scheduler.step()

    def after_epoch(self, valid_ppl: float | None) -> None:
        """Advance past an epoch; ``valid_ppl`` is None when the epoch was not validated."""
        if self.kind == "plateau":
            if valid_ppl is not None:
                self.scheduler.step(valid_ppl)
        elif self.kind == "step":
            self.scheduler.step()


def cosine_multiplier(step: int, total_steps: int, warmup_steps: int, min_lr_ratio: float) -> float:
    """The "cosine" schedule's lr multiplier for batch ``step`` (from 0): linear warm-up, then cosine decay.

    Loshchilov & Hutter (2017), "SGDR", without restarts; warm-up and floor as in nanoGPT's ``get_lr``::

        s < W:   (s + 1) / W
        s >= W:  r + (1 - r) * (1 + cos(pi * p)) / 2,   p = min(1, (s - W) / max(1, S - W))

    with S = ``total_steps``, W = ``warmup_steps``, r = ``min_lr_ratio``.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def step_decay(epoch: int, lr_decay: float, decay_start_epoch: int) -> float:
    """The "step" schedule's lr multiplier for epoch ``epoch`` (from 1)."""
    return lr_decay ** max(0, epoch - decay_start_epoch)


def _step_multiplier(index: int, lr_decay: float, decay_start_epoch: int) -> float:
    return step_decay(index + 1, lr_decay, decay_start_epoch)  # LambdaLR counts epochs from 0


def planned_steps(n_pairs: int, config: TrainConfig, world: int = 1) -> int:
    """Optimizer steps of a fit that runs every epoch (an upper bound: an offset can cost an epoch one batch)."""
    return config.epochs * count_batches(n_pairs, config, 0, world)


# ---------------------------------------------------------------- the time budget and rank 0's decisions

#: tokens of the validation split timed before training to estimate a whole pass (time budget only).
PROBE_TOKENS = 2048
#: training stops early enough to leave this multiple of the expected validation time.
VALID_MARGIN = 1.1


@dataclass(frozen=True)
class Validation:
    """The validation split as :func:`train_network` uses it.

    Args:
        n_tokens: tokens in the split.
        mean_nll: ``mean_nll(n, stop=None)`` is the mean NLL, in nats per token, of the first ``n``
            tokens under the current weights (eval mode, no gradients); ``stop`` (a callable),
            when given, is asked between scoring chunks and a True answer abandons the pass (None).
    """

    n_tokens: int
    mean_nll: Callable[..., float | None]


class TimeBudget:
    """The limit of a whole fit, validation included, decided before every batch from measured times.

    The next batch starts only if it and a validation pass are expected to end within the budget:
    ``now + batch + VALID_MARGIN * validation <= end``, where ``batch`` is the slower of the last
    batch and the mean batch of the epoch so far (so a machine that slows down is noticed at the
    next batch), and ``validation`` the last whole pass, before the first one the first
    :data:`PROBE_TOKENS` tokens timed and scaled to the split. A validation pass starts only if it
    is expected to end in time, and is abandoned at the next scoring chunk once the budget has run
    out (the epoch then counts as not validated and training stops).

    Tolerance: a fit ends by ``time_budget`` plus at most (a) what the last batch took beyond that
    estimate and (b) one scoring chunk of validation (``eval_tokens`` tokens). A budget shorter than
    one batch is exceeded by that batch: at least one batch is always trained.

    Args:
        seconds: the budget (None: no limit).
        clock: seconds from a fixed origin, e.g. ``time.perf_counter``.
        started_at: ``clock()`` when the fit started.
    """

    def __init__(self, seconds: float | None, clock: Callable[[], float], started_at: float):
        self.clock = clock
        self.end = math.inf if seconds is None else started_at + seconds
        self.valid_seconds = 0.0  # expected duration of a validation pass
        self.batch_seconds = 0.0  # expected duration of the next batch

    @property
    def limited(self) -> bool:
        return math.isfinite(self.end)

    def batch_fits(self) -> bool:
        """Whether the next batch and a validation pass after it are expected to end within the budget."""
        return self.clock() + self.batch_seconds + VALID_MARGIN * self.valid_seconds <= self.end

    def validation_fits(self) -> bool:
        """Whether a validation pass started now is expected to end within the budget."""
        return self.clock() + self.valid_seconds <= self.end

    def spent(self) -> bool:
        return self.clock() > self.end

    def estimate_validation(self, valid: Validation) -> float:
        """Expected seconds of a whole pass: the first PROBE_TOKENS tokens timed, scaled to the split.

        A few tokens are scored first, untimed, so one-time costs (allocations, kernel selection) are
        not scaled up with the rest.
        """
        valid.mean_nll(min(valid.n_tokens, 16))
        n = min(valid.n_tokens, PROBE_TOKENS)
        start = self.clock()
        valid.mean_nll(n)
        return (self.clock() - start) * valid.n_tokens / n


class Coordinator:
    """Every decision of a fit that depends on rank 0's clock, validation or random draws, broadcast to all ranks.

    In a data-parallel fit (:mod:`lmbench.models.neural.distributed`) rank 0 alone times and
    validates; each method below returns rank 0's answer on every rank, so that all ranks take the
    same branches, run the same number of steps and reach the same collectives. Without a time
    budget nothing is broadcast per batch; in a single process nothing is broadcast at all.
    """

    def __init__(self, world: World, budget: TimeBudget):
        self.world = world
        self.budget = budget

    def shared_seed(self) -> int:
        """A seed drawn from torch's global generator (on every rank, so their streams stay aligned): rank 0's."""
        return broadcast_from_main(int(torch.randint(0, 2**62, ()).item()))

    def plan_validation(self, valid: Validation | None) -> None:
        """With a time budget, rank 0 probes how long a validation pass takes (before training)."""
        if valid is not None and self.budget.limited:
            estimate = self.budget.estimate_validation(valid) if self.world.is_main else None
            self.budget.valid_seconds = broadcast_from_main(estimate)

    def next_batch_fits(self, last_batch_s: float, mean_batch_s: float) -> bool:
        """Whether to start another batch (always, without a budget); the estimate is the slower of the two."""
        if not self.budget.limited:
            return True
        self.budget.batch_seconds = max(last_batch_s, mean_batch_s)
        return broadcast_from_main(self.budget.batch_fits())

    def next_epoch_fits(self) -> bool:
        """Whether to start another epoch: its first batch fits, by the last batch's estimate."""
        return not self.budget.limited or broadcast_from_main(self.budget.batch_fits())

    def validate(self, valid: Validation | None) -> tuple[bool, float]:
        """One validation pass by rank 0 if the budget has room: (validated, perplexity or NaN)."""
        if valid is None:
            return False, math.nan
        outcome = (False, math.nan)
        if self.world.is_main and self.budget.validation_fits():
            start = self.budget.clock()
            nll = valid.mean_nll(valid.n_tokens, stop=self.budget.spent if self.budget.limited else None)
            if nll is not None:
                self.budget.valid_seconds = self.budget.clock() - start
                outcome = (True, exp_or_inf(nll))
        return broadcast_from_main(outcome) if self.world.distributed else outcome


# ---------------------------------------------------------------- the loop


@dataclass
class TrainingLog:
    """What training produced besides the weights: the learning curve and how it ended."""

    rows: list[dict]
    best_epoch: int | None
    best_valid_ppl: float | None
    stopped_by: str

    def summary(self) -> dict:
        """Plain values for ``fitted_summary``: epochs, best epoch, final lr, how training ended, what it trained."""
        last = self.rows[-1]
        return {"epochs_run": int(last["epoch"]), "best_epoch": self.best_epoch,
                "best_valid_ppl": self.best_valid_ppl, "final_lr": float(last["lr"]), "stopped_by": self.stopped_by,
                "train_tokens_per_s": float(np.mean([r["tokens_per_s"] for r in self.rows])),
                **curve_totals(self.rows)}


def curve_totals(rows: list[dict]) -> dict:
    """Tokens trained, whole epochs completed and whether the last epoch was cut short, from curve rows."""
    return {"tokens_trained": int(sum(r["train_tokens"] for r in rows)),
            "epochs_completed": int(sum(bool(r["complete"]) for r in rows)),
            "last_epoch_partial": bool(rows) and not rows[-1]["complete"]}


@dataclass
class EpochStats:
    nll_nats: float  # summed over the epoch's tokens, all ranks
    n_tokens: int
    seconds: float
    complete: bool


def train_network(net: nn.Module, train_ids: np.ndarray, *, bos_id: int, config: TrainConfig,
                  device: torch.device, valid: Validation | None = None,
                  clock: Callable[[], float] = time.perf_counter, started_at: float | None = None,
                  observer: TrainingObserver | None = None, label: str = "") -> TrainingLog:
    """Train ``net`` in place and leave it holding the weights of its best validated epoch (else the last).

    In a data-parallel fit every rank calls this with the same arguments; the network is wrapped in
    DistributedDataParallel, each rank trains on its part of every batch, and rank 0's decisions
    (:class:`Coordinator`) are followed by all. Curve figures are those of all ranks together.

    Args:
        net: a network on ``device`` (see the module docstring for its forward).
        train_ids: the training split (N,), N >= ``config.min_train_tokens()``.
        bos_id: the start-of-text input id.
        config: hyperparameters.
        device: where the network lives.
        valid: the validation split, scored once per epoch (None: the last weights are kept and the
            plateau schedule and early stopping never act).
        clock: seconds from a fixed origin (tests pass a fake one).
        started_at: ``clock()`` when the fit began, from which ``config.time_budget`` counts (None: now).
        observer: told of every batch and epoch (None: nothing is shown).
        label: the model's name, for the warning of a budget too short to validate.

    Returns:
        The learning curve and the stopping reason ("epochs", "early_stopping" or "time_budget").
    """
    world = current_world()
    check_divides(config, world)
    observer = observer or TrainingObserver()
    budget = TimeBudget(config.time_budget, clock, clock() if started_at is None else started_at)
    coordinator = Coordinator(world, budget)
    inputs, targets = training_stream(train_ids, bos_id, device)  # (N,), (N,)
    generator = torch.Generator().manual_seed(coordinator.shared_seed())  # offsets and window order
    model = data_parallel(net, device, coordinator)
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = make_optimizer(config, net)
    schedule = Schedule(config, optimizer, planned_steps(inputs.numel(), config, world.size))
    best = BestWeights()
    coordinator.plan_validation(valid)
    rows, stopped_by, start = [], "epochs", clock()
    try:
        for epoch in range(1, config.epochs + 1):
            if epoch > 1 and not coordinator.next_epoch_fits():
                stopped_by = "time_budget"
                break
            lr = schedule.lr
            offset = int(torch.randint(0, config.num_steps, (), generator=generator))
            observer.epoch_started(epoch, count_batches(inputs.numel(), config, offset, world.size))
            stats = run_epoch(model, optimizer, params, inputs, targets, config, offset, generator, schedule,
                              coordinator, observer)
            if not math.isfinite(stats.nll_nats):
                raise LmbenchError(f"training diverged in epoch {epoch} (loss {stats.nll_nats}); "
                                   f"lower lr (now {lr:g}) or clip gradients (clip={config.clip})")
            validated, valid_ppl = coordinator.validate(valid)
            rows.append(curve_row(epoch, stats, valid_ppl, lr, clock() - start))
            observer.epoch_ended(epoch, rows[-1], inputs.numel(), validated, valid is not None)
            best.update(valid_ppl, epoch, net)
            schedule.after_epoch(valid_ppl if validated else None)
            if not stats.complete or (valid is not None and not validated):
                stopped_by = "time_budget"
                break
            if valid is not None and config.early_stopping is not None \
                    and epoch - (best.epoch or 0) >= config.early_stopping:
                stopped_by = "early_stopping"
                break
    finally:
        observer.close()
    best.restore(net)
    if world.distributed:
        del model
        release_collectives()
    if valid is not None and best.epoch is None and stopped_by == "time_budget" and world.is_main:
        warn_unvalidated(label, config.time_budget, rows, inputs.numel())
    return TrainingLog(rows, best.epoch, best.valid_ppl, stopped_by)


def warn_unvalidated(label: str, budget: float, rows: list[dict], n_train: int) -> None:
    """The one-line warning of a fit whose time budget left no room for a single validation pass."""
    trained = sum(r["train_tokens"] for r in rows)
    warnings.warn(f"{label + ': ' if label else ''}the time budget of {budget:g} s left no time to validate: "
                  f"trained {trained:,} of the {n_train:,} training tokens; the last weights are kept, "
                  f"raise time_budget", stacklevel=3)


def check_divides(config: TrainConfig, world: World) -> None:
    """Raise unless a sequential fit's ``batch_size`` streams split evenly over the ranks."""
    if config.sampling == "sequential" and config.batch_size % world.size:
        raise LmbenchError(f"batch_size={config.batch_size} streams do not split evenly over {world.size} processes; "
                           f"set batch_size to a multiple of {world.size} (it is the batch of all processes together)")


def data_parallel(net: nn.Module, device: torch.device, coordinator: Coordinator) -> nn.Module:
    """``net`` wrapped in DistributedDataParallel for a data-parallel fit (``net`` itself in one process).

    DDP copies rank 0's weights to every rank and averages the gradients in ``backward``. The global
    torch generator is then reseeded per rank, so dropout masks differ between ranks as they would
    between the columns of one large batch.
    """
    world = coordinator.world
    if not world.distributed:
        return net
    from torch.nn.parallel import DistributedDataParallel

    wrapped = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    torch.manual_seed(coordinator.shared_seed() + world.rank)
    return wrapped


def curve_row(epoch: int, stats: EpochStats, valid_ppl: float, lr: float, elapsed_s: float) -> dict:
    """One learning-curve row (plain Python values, so it can be saved with the model)."""
    return {"epoch": epoch, "train_ppl": exp_or_inf(stats.nll_nats / max(stats.n_tokens, 1)),
            "valid_ppl": float(valid_ppl), "lr": float(lr),
            "tokens_per_s": stats.n_tokens / stats.seconds if stats.seconds > 0 else math.nan,
            "seconds": float(stats.seconds), "elapsed_seconds": float(elapsed_s),
            "train_tokens": int(stats.n_tokens), "complete": bool(stats.complete)}


def run_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, params: list[nn.Parameter],
              inputs: torch.Tensor, targets: torch.Tensor, config: TrainConfig, offset: int,
              generator: torch.Generator, schedule: Schedule, coordinator: Coordinator,
              observer: TrainingObserver) -> EpochStats:
    """One pass of truncated BPTT over the training stream, ended early when the next batch would not fit the budget.

    No host-device synchronization per batch: the summed loss stays on the device until the end (the
    observer may read it now and then). ``model`` may be wrapped in DistributedDataParallel; the
    returned loss and tokens are summed over the ranks.
    """
    world = coordinator.world
    clock = coordinator.budget.clock
    model.train()
    carry, part = config.sampling == "sequential", (world.rank, world.size)
    if carry:
        batches = sequential_batches(inputs, targets, config.batch_size, config.num_steps, offset, part)
    else:
        batches = random_batches(inputs, targets, config.batch_size, config.num_steps, offset, generator, part)
    n_batches = count_batches(inputs.numel(), config, offset, world.size)
    accumulate = torch.float32 if inputs.device.type == "mps" else torch.float64  # MPS has no float64
    nll_sum = torch.zeros((), dtype=accumulate, device=inputs.device)  # nats, this rank
    n_tokens, state, done = 0, None, 0
    start = last = clock()
    with training_matmuls(config.precision, inputs.device):
        for x, y, weight in batches:  # (T, b), (T, b), float
            loss, state = train_step(model, optimizer, params, x, y, weight, detach_state(state) if carry else None,
                                     config)
            schedule.after_batch()
            nll_sum += loss * y.numel()
            n_tokens += y.numel()
            done += 1
            now = clock()
            observer.batch_done(nll_sum, n_tokens, now - start, world.size)
            if done < n_batches and not coordinator.next_batch_fits(now - last, (now - start) / done):
                break
            last = now
    nll, n_tokens = all_reduce_sum(float(nll_sum.item()), n_tokens)  # .item() synchronizes: the time includes all work
    return EpochStats(nll_nats=nll, n_tokens=int(n_tokens), seconds=clock() - start, complete=done == n_batches)


def train_step(net: nn.Module, optimizer: torch.optim.Optimizer, params: list[nn.Parameter], x: torch.Tensor,
               y: torch.Tensor, weight: float, state, config: TrainConfig) -> tuple[torch.Tensor, object]:
    """One optimizer step: forward and loss in the training precision, backward, clipping, update.

    Args:
        x, y: inputs and targets (T, b).
        weight: the factor on this rank's mean loss (see :func:`random_batches`).
        state: the recurrent state to start from (None: zeros).

    Returns:
        (mean NLL of the batch in nats per token, detached; the new state).
    """
    with training_autocast(config.precision, x.device):
        logits, state = net(x, state)  # (T, b, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))  # autocast computes it in float32
    optimizer.zero_grad(set_to_none=True)
    (loss * weight if weight != 1.0 else loss).backward()
    if config.clip:
        nn.utils.clip_grad_norm_(params, config.clip)
    optimizer.step()
    return loss.detach(), state


class BestWeights:
    """A copy of the weights of the epoch with the lowest validation perplexity so far."""

    def __init__(self):
        self.epoch: int | None = None
        self.valid_ppl: float | None = None
        self.state: dict | None = None

    def update(self, valid_ppl: float, epoch: int, net: nn.Module) -> bool:
        """Keep ``net``'s weights if ``valid_ppl`` is the best so far; return whether it improved (NaN never does)."""
        if not math.isfinite(valid_ppl) or (self.valid_ppl is not None and valid_ppl >= self.valid_ppl):
            return False
        self.epoch, self.valid_ppl = epoch, float(valid_ppl)
        self.state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        return True

    def restore(self, net: nn.Module) -> None:
        """Load the best weights back into ``net`` (no-op if none were kept)."""
        if self.state is not None:
            net.load_state_dict(self.state)
