"""Training neural language models: batching, truncated BPTT, optimizers, schedules, stopping.

The loop here is generic: it trains any ``nn.Module`` whose ``forward(inputs, state)`` maps
time-major token ids (T, B) and a recurrent state (None: zeros) to logits (T, B, V) and the new
state. :mod:`lmbench.models.neural.recurrent` builds such networks and calls :func:`train_network`; so does
:mod:`lmbench.models.neural.transformer`, whose network carries no state (it ignores ``state`` and returns
None), trained on windows of its context length.

The training stream. A split of N tokens ``x0 .. x_{N-1}`` becomes N (input, target) pairs::

    inputs:   <s>  x0  x1  ...  x_{N-2}
    targets:  x0   x1  x2  ...  x_{N-1}

so the first token is learned from the start-of-text id, exactly as it is scored. Both of
d2l's minibatch schemes cut windows of ``num_steps`` pairs from these two arrays, after skipping
a random offset of 0 .. num_steps-1 pairs each epoch (as d2l does) so window edges move:

* ``sequential`` (d2l "sequential partitioning", the PyTorch word_language_model ``batchify``):
  the stream is cut into ``batch_size`` contiguous rows which become the columns of a (L, B)
  array; consecutive windows continue each column, so the hidden state is carried from one
  batch to the next and only detached (truncated BPTT)::

      stream  a b c d e f g h i j k l m n o p q r     (N = 18, B = 3, L = 6, num_steps = 4)

                 col 0  col 1  col 2
      t = 0        a      g      m     \\
      t = 1        b      h      n      | batch 1: rows 0-3, state starts at zero
      t = 2        c      i      o      |
      t = 3        d      j      p     /
      t = 4        e      k      q     \\  batch 2: rows 4-5, state carried from batch 1
      t = 5        f      l      r     /   (the last window may be shorter)

  Up to B - 1 trailing pairs that do not fill a row are left out of that epoch.
* ``random`` (d2l ``seq_data_iter_random``): the stream is cut into windows of ``num_steps``
  pairs, shuffled, and grouped ``batch_size`` at a time; every batch starts from a zero state.

The time budget bounds the whole fit, validation included. Before training, the validation pass is
timed on its first :data:`PROBE_TOKENS` tokens and scaled to the whole split; after each pass, the
measured time replaces the estimate. Training stops early enough to leave :data:`VALID_MARGIN`
times that long for validation, and an epoch is not started once that point has passed. A
validation pass that would still end past the budget (the estimate was too low, or the first batch
alone used the budget up) is skipped, and training stops: the weights kept are those of the best
validated epoch, or the last weights if no epoch could be validated. At least one batch is always
trained, so a budget shorter than one batch is exceeded by that batch.

Data-parallel fits (launched with torchrun, see :mod:`lmbench.models.neural.distributed`). ``batch_size`` is the
batch of all W processes together. Each rank takes its part of every batch: under sequential
batching its ``batch_size / W`` contiguous streams (columns ``rank * B / W`` onwards of the layout
above, i.e. its own contiguous slice of the stream, with its own carried state), under random
batching its share of each batch's shuffled windows (the shuffle is seeded alike on every rank).
DistributedDataParallel averages the gradients, so an optimizer step of W processes is the step one
process takes on the whole batch, and the same hyperparameters give the same training to rounding.
Rank 0 times and validates; every decision that depends on a clock or on validation (stopping an
epoch or the fit, the plateau schedule, early stopping, which weights to keep) is rank 0's, sent to
the others, so all ranks run the same number of steps. With a time budget that is one small
broadcast per batch (a host-device synchronization on GPUs); without one there is none.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, fields
from functools import partial
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, ReduceLROnPlateau
from tqdm.auto import tqdm

from .distributed import World, current_world, from_main, release_collectives, summed
from ...errors import LmbenchError, check_choice, check_int, check_number, unknown_name_error
from ...scoring.metrics import exp_or_inf
from .devices import cpu_model
from .precision import PRECISIONS, training_autocast, training_matmuls

OPTIMIZERS: dict[str, type] = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
SAMPLINGS = ("sequential", "random")
LR_SCHEDULES = ("plateau", "step", "cosine")
DEVICES = ("auto", "cpu", "cuda", "mps")


# ---------------------------------------------------------------- devices


def select_device(name: str = "auto") -> torch.device:
    """The torch device for a ``--device`` value.

    Args:
        name: "auto" (CUDA if available, else Apple MPS, else CPU), "cpu", "cuda" or "mps".

    Returns:
        The device; asking for an accelerator that is not available raises LmbenchError.
    """
    if name not in DEVICES:
        raise unknown_name_error("device", str(name), DEVICES)
    cuda, mps = torch.cuda.is_available(), _mps_available()
    if name == "auto":
        name = "cuda" if cuda else "mps" if mps else "cpu"
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise LmbenchError(f"--device {name} was asked for but is not available here; use --device cpu or auto")
    if name == "cuda" and current_world().distributed:  # one GPU per process: the one of its LOCAL_RANK
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(name)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def describe_device(device: torch.device) -> dict:
    """Where training runs, for config.json: device, CPU or GPU model, torch's version and CPU threads."""
    env = {"device": str(device), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
           "cpu": cpu_model()}
    world = current_world()
    if world.distributed:
        env.update(world_size=world.size, backend=world.backend)
    if device.type == "cuda":
        env.update(cuda_device=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(),
                   cuda_deterministic=True)  # fits and scoring run under seeding.deterministic_kernels
    return env


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class TrainConfig:
    """Training hyperparameters and their defaults, the one place where those defaults are defined.

    Models take these as constructor arguments of the same names with these defaults (see
    :class:`lmbench.models.neural.recurrent.RecurrentLM`) and build a config with :meth:`from_object`. The
    defaults are d2l's character-level setting (35-step windows, 32 streams, gradient clipping at
    norm 1) with Adam at lr 0.005 instead of plain SGD, so that a few epochs suffice on a CPU, and
    up to 30 epochs with early stopping after 3 without validation improvement.

    Args:
        num_steps: truncated-BPTT window length (time steps per batch).
        batch_size: parallel streams (sequential) or windows (random) per batch.
        sampling: "sequential" (state carried across batches) or "random" (fresh state per batch).
        epochs: maximum number of passes over the training split.
        time_budget: seconds the whole fit may take, validation included (None: no limit); see the
            module docstring.
        optimizer: "sgd", "adam" or "adamw".
        lr: initial learning rate.
        weight_decay: L2 penalty on weight matrices only (decoupled for adamw); biases, normalization
            layers and embedding tables are not decayed (see :func:`parameter_groups`).
        clip: maximum global gradient norm (None or 0: no clipping).
        lr_schedule: "plateau" (multiply lr by ``lr_decay`` when validation perplexity has not
            improved for more than ``patience`` epochs; ``ReduceLROnPlateau``), "step" (lr of epoch
            e, counted from 1, is ``lr * lr_decay ** max(0, e - decay_start_epoch)``, Zaremba et al.'s
            schedule; ``LambdaLR``) or "cosine" (linear warm-up over ``warmup`` batches, then cosine
            decay to ``lr * min_lr_ratio`` at the end of the planned batches, ``epochs`` times the
            batches of an epoch, stepped per batch; see :func:`cosine_multiplier`: a fit cut short
            by the time budget or early stopping ends before the floor, so set ``epochs`` to what
            the budget allows). The plateau and step schedules change lr between epochs; a
            learning-curve row's lr is the one its epoch started with.
        lr_decay: multiplicative decay factor in (0, 1].
        patience: epochs without improvement tolerated before a plateau decay (0: decay at once).
        decay_start_epoch: last epoch trained at the full lr under the "step" schedule.
        warmup: warm-up length of the "cosine" schedule: a number in [0, 1) is a fraction of the
            planned batches (rounded to whole batches), a whole number >= 1 a number of batches.
        min_lr_ratio: the "cosine" schedule's final lr as a fraction of ``lr``, in [0, 1].
        early_stopping: stop after this many epochs without validation improvement (None: never).
        progress: show a progress bar per epoch on stderr with tokens/s and the running training
            perplexity when stderr is a terminal; otherwise (a log file, CI) one plain line per epoch.
        precision: numerics of the training steps, "float32", "tf32" (TF32 tensor cores on CUDA) or
            "bfloat16" (bfloat16 autocast); validation and scoring are float32 whatever it is (see
            :mod:`lmbench.models.neural.precision`).
    """

    num_steps: int = 35
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
    progress: bool = True
    warmup: float = 0.0
    min_lr_ratio: float = 0.1
    precision: str = "float32"

    @classmethod
    def from_object(cls, obj) -> "TrainConfig":
        """Read every field from the attribute of the same name (e.g. a model's hyperparameters).

        A field the object has no attribute for keeps its default here (a model that does not offer
        that option), so the defaults still come from this class only.
        """
        return cls(**{f.name: getattr(obj, f.name) for f in fields(cls) if hasattr(obj, f.name)})

    def check(self) -> None:
        """Raise LmbenchError naming the first invalid value and what is allowed."""
        check_int("num_steps", self.num_steps, 1)
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
        if not isinstance(self.progress, bool):
            raise LmbenchError(f"progress must be true or false, got {self.progress!r}")
        check_number("warmup", self.warmup, 0.0)
        if self.warmup >= 1 and self.warmup != int(self.warmup):
            raise LmbenchError(f"warmup must be a fraction in [0, 1) of the planned batches or a whole number of "
                               f"batches, got {self.warmup!r}")
        check_number("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        check_choice("precision", self.precision, PRECISIONS)

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
    """Input and target arrays of a split (see the module docstring), int64 on ``device``.

    Returns:
        (inputs (N,), targets (N,)): inputs are ``[bos, x0 .. x_{N-2}]``, targets ``[x0 .. x_{N-1}]``.
    """
    targets = torch.as_tensor(np.asarray(ids, dtype=np.int64))  # (N,)
    inputs = torch.cat([torch.tensor([bos_id], dtype=torch.int64), targets[:-1]])  # (N,)
    return inputs.to(device), targets.to(device)


def sequential_batches(inputs: torch.Tensor, targets: torch.Tensor, batch_size: int, num_steps: int,
                       offset: int, part: tuple[int, int] = (0, 1)) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
    """Consecutive (T, B) windows of ``batch_size`` parallel streams (layout in the module docstring).

    Args:
        inputs, targets: the training stream (N,).
        batch_size: B, the number of parallel streams.
        num_steps: T, the window length (the last window of the epoch may be shorter).
        offset: pairs skipped at the start of this epoch.
        part: (rank, W) of a data-parallel fit: this rank's B / W columns of the (L, B) layout,
            columns ``rank * B / W`` onwards, i.e. its own contiguous slice of the stream. W must
            divide B.

    Yields:
        (X, Y, weight): X and Y (T, B / W) int64, window k+1 continuing every column of window k;
        weight 1.0 (every rank holds the same number of tokens; see :func:`random_batches`).
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
    """Shuffled (T, B) windows of ``num_steps`` pairs, ``batch_size`` per batch (the last batch may be smaller).

    Args:
        inputs, targets: the training stream (N,).
        batch_size: windows per batch.
        num_steps: T, the window length.
        offset: pairs skipped at the start of this epoch.
        generator: the CPU generator that shuffles the windows (seeded alike on every rank).
        part: (rank, W) of a data-parallel fit: of each batch's b windows, this rank takes its
            share ``[rank * b // W, (rank + 1) * b // W)``; a last batch of fewer than W windows is
            left out on every rank.

    Yields:
        (X, Y, weight): X and Y (T, b_r) int64, windows unrelated (no state is carried); weight
        ``W * b_r / b``, the factor that makes the average of the ranks' mean losses (what
        DistributedDataParallel's averaged gradients minimize) the mean loss of the whole batch.
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
    """Number of batches one epoch yields on each of ``world`` ranks (progress bar, schedules)."""
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


# ---------------------------------------------------------------- optimizers and schedules

#: modules whose own parameters are never decayed: embedding tables and normalization layers.
NO_DECAY_MODULES = (nn.Embedding, nn.EmbeddingBag, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm,
                    nn.modules.batchnorm._NormBase)


def parameter_groups(net: nn.Module, weight_decay: float) -> list[dict]:
    """Optimizer parameter groups that put weight decay on weight matrices only (nanoGPT's rule).

    As in Karpathy's nanoGPT ``configure_optimizers`` (and minGPT before it), a trainable parameter
    is decayed when it has two or more dimensions, i.e. it is the weight matrix of a linear or
    recurrent layer (``nn.Linear.weight``, ``nn.LSTM.weight_ih_l*`` / ``weight_hh_l*``, the scratch
    RNN's W_xh, W_hh, W_hq). Biases, normalization gains and shifts (one-dimensional) and embedding
    tables are not decayed; unlike nanoGPT, an embedding tied to the output layer is not decayed
    either (it is an embedding table first). Shared parameters are listed once.

    Args:
        net: the network.
        weight_decay: the decay of the first group.

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


def make_optimizer(config: TrainConfig, net: nn.Module) -> torch.optim.Optimizer:
    """The optimizer named by ``config.optimizer`` with its lr, decaying matrices only (:func:`parameter_groups`)."""
    return OPTIMIZERS[config.optimizer](parameter_groups(net, config.weight_decay), lr=config.lr)


def make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer,
                   total_steps: int | None = None) -> LRScheduler | ReduceLROnPlateau:
    """The learning-rate schedule of ``config.lr_schedule``.

    "plateau": ``ReduceLROnPlateau`` on the validation perplexity (mode min) with factor ``lr_decay``
    and ``patience``; any decrease counts as an improvement (threshold 0) and every decay is applied
    (eps 0). "step": ``LambdaLR`` giving epoch e (counted from 1) ``lr * lr_decay ** max(0, e -
    decay_start_epoch)`` (Zaremba et al. 2014). Both are stepped once per epoch by
    :func:`step_scheduler`.

    "cosine": ``LambdaLR`` giving batch s (counted from 0 over the whole fit) ``lr *``
    :func:`cosine_multiplier` ``(s, total_steps, warmup, min_lr_ratio)``, stepped after every
    optimizer step (:func:`is_per_batch`), as warm-up schedules are (GPT-2 and nanoGPT, BERT,
    ``transformers.get_cosine_schedule_with_warmup``): a warm-up of a few hundred batches would be
    lost in one epoch if it were stepped per epoch.

    Args:
        config: the schedule's hyperparameters.
        optimizer: the optimizer whose groups' lr the schedule sets.
        total_steps: planned optimizer steps of the whole fit (needed by "cosine" only).
    """
    if config.lr_schedule == "plateau":
        return ReduceLROnPlateau(optimizer, mode="min", factor=config.lr_decay, patience=config.patience,
                                 threshold=0.0, threshold_mode="abs", cooldown=0, min_lr=0.0, eps=0.0)
    if config.lr_schedule == "cosine":
        if total_steps is None:
            raise ValueError("the cosine schedule needs the planned number of steps")
        warmup = config.warmup_steps(total_steps)
        return LambdaLR(optimizer, partial(cosine_multiplier, total_steps=total_steps, warmup_steps=warmup,
                                           min_lr_ratio=config.min_lr_ratio))
    return LambdaLR(optimizer, lambda index: step_decay(index + 1, config.lr_decay, config.decay_start_epoch))


def cosine_multiplier(step: int, total_steps: int, warmup_steps: int, min_lr_ratio: float) -> float:
    """The "cosine" schedule's lr multiplier for batch ``step`` (counted from 0): warm-up, then cosine decay.

    Linear warm-up from ``1 / warmup_steps`` to 1 over the first ``warmup_steps`` batches, then
    half a cosine from 1 down to ``min_lr_ratio`` (Loshchilov & Hutter 2017, "SGDR", without
    restarts; the warm-up and floor as in GPT-2 / nanoGPT's ``get_lr``)::

        s < W:   (s + 1) / W
        s >= W:  r + (1 - r) * (1 + cos(pi * p)) / 2,   p = min(1, (s - W) / max(1, S - W))

    with S = ``total_steps``, W = ``warmup_steps``, r = ``min_lr_ratio``: batch W trains at the full
    lr and batch S (one past the last planned batch) would reach the floor.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def is_per_batch(config: TrainConfig) -> bool:
    """Whether ``config.lr_schedule`` is stepped after every batch (else once per epoch)."""
    return config.lr_schedule == "cosine"


def planned_steps(n_pairs: int, config: TrainConfig, world: int = 1) -> int:
    """Optimizer steps of a fit that runs every epoch: ``epochs`` times the batches of an epoch at offset 0.

    A random offset can leave an epoch one batch shorter, so this is an upper bound; the cosine
    schedule is laid out over it.
    """
    return config.epochs * count_batches(n_pairs, config, 0, world)


def step_decay(epoch: int, lr_decay: float, decay_start_epoch: int) -> float:
    """The "step" schedule's lr multiplier for epoch ``epoch`` (counted from 1)."""
    return lr_decay ** max(0, epoch - decay_start_epoch)


def step_scheduler(scheduler: LRScheduler | ReduceLROnPlateau, valid_ppl: float | None) -> None:
    """Advance a per-epoch schedule past an epoch; the plateau schedule acts only on a validated epoch (``valid_ppl``).

    A per-batch schedule (:func:`is_per_batch`) is stepped by :func:`run_epoch` instead, not here.
    """
    if isinstance(scheduler, ReduceLROnPlateau):
        if valid_ppl is not None:
            scheduler.step(valid_ppl)
    else:
        scheduler.step()


# ---------------------------------------------------------------- the time budget

#: tokens of the validation split timed before training to estimate a whole pass (time budget only).
PROBE_TOKENS = 2048
#: training stops early enough to leave this multiple of the expected validation time (timing noise).
VALID_MARGIN = 1.1


@dataclass(frozen=True)
class Validation:
    """The validation split as :func:`train_network` uses it.

    Args:
        n_tokens: tokens in the split.
        mean_nll: ``mean_nll(n)`` is the mean NLL, in nats per token, of the first ``n`` tokens of the
            split under the current weights (the network in eval mode, no gradients).
    """

    n_tokens: int
    mean_nll: Callable[[int], float]


class TimeBudget:
    """The wall-clock limit of a whole fit and the validation time it must keep in reserve.

    Args:
        seconds: the budget (None: no limit).
        started_at: ``time.perf_counter()`` when the fit started.
    """

    def __init__(self, seconds: float | None, started_at: float):
        self.end = math.inf if seconds is None else started_at + seconds
        self.valid_seconds = 0.0  # expected duration of one validation pass

    @property
    def limited(self) -> bool:
        return math.isfinite(self.end)

    def train_deadline(self) -> float:
        """When training must stop so that one validation pass still fits."""
        return self.end - VALID_MARGIN * self.valid_seconds

    def fits_validation(self) -> bool:
        """Whether a validation pass started now is expected to end within the budget."""
        return time.perf_counter() + self.valid_seconds <= self.end


def timed(fn: Callable, *args):
    """``(fn(*args), seconds it took)``."""
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def estimate_valid_seconds(valid: Validation) -> float:
    """Expected seconds of a whole validation pass: the first PROBE_TOKENS tokens timed, scaled to the split.

    A few tokens are scored first, untimed, so one-time costs (allocations, kernel selection) are not
    scaled up with the rest.
    """
    valid.mean_nll(min(valid.n_tokens, 16))
    n = min(valid.n_tokens, PROBE_TOKENS)
    _, seconds = timed(valid.mean_nll, n)
    return seconds * valid.n_tokens / n


# ---------------------------------------------------------------- the loop


@dataclass
class TrainingLog:
    """What training produced besides the weights: the learning curve and how it ended."""

    rows: list[dict]
    best_epoch: int | None
    best_valid_ppl: float | None
    stopped_by: str

    def summary(self) -> dict:
        """Plain values for ``fitted_summary``: epochs run, best epoch, final lr, why training stopped."""
        last = self.rows[-1]
        return {"epochs_run": int(last["epoch"]), "best_epoch": self.best_epoch,
                "best_valid_ppl": self.best_valid_ppl, "final_lr": float(last["lr"]), "stopped_by": self.stopped_by,
                "train_tokens_per_s": float(np.mean([r["tokens_per_s"] for r in self.rows]))}


@dataclass
class EpochStats:
    nll_nats: float
    n_tokens: int
    seconds: float
    complete: bool


def train_network(net: nn.Module, train_ids: np.ndarray, *, bos_id: int, config: TrainConfig,
                  device: torch.device, valid: Validation | None = None, started_at: float | None = None,
                  label: str = "") -> TrainingLog:
    """Train ``net`` in place and leave it holding the weights of its best validation epoch.

    In a data-parallel fit (:mod:`lmbench.models.neural.distributed`) every rank calls this with the same
    arguments: the network is wrapped in ``DistributedDataParallel``, each rank trains on its part of
    every batch (``batch_size`` is the global batch), and rank 0 validates and makes the decisions
    that depend on a clock or on validation, which the others follow. The curve's training
    perplexity and tokens/s are those of all ranks together.

    Args:
        net: a recurrent network on ``device`` (see the module docstring for its forward signature).
        train_ids: the training split (N,), N >= ``config.min_train_tokens()``.
        bos_id: the start-of-text input id.
        config: hyperparameters.
        device: where the network lives.
        valid: the validation split, scored once per epoch (by rank 0); None: no validation, the last
            weights are kept and the plateau schedule and early stopping never act.
        started_at: ``time.perf_counter()`` when the fit began, from which ``config.time_budget``
            counts (None: now).
        label: the model's name, shown in progress bars and per-epoch log lines.

    Returns:
        The learning curve and the stopping reason ("epochs", "early_stopping" or "time_budget").
    """
    world = current_world()
    check_divides(config, world)
    budget = TimeBudget(config.time_budget, time.perf_counter() if started_at is None else started_at)
    inputs, targets = training_stream(train_ids, bos_id, device)
    generator = torch.Generator().manual_seed(from_main(int(torch.randint(0, 2**62, ()).item())))
    model = data_parallel(net, device, world)
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = make_optimizer(config, net)
    scheduler = make_scheduler(config, optimizer, planned_steps(inputs.numel(), config, world.size))
    best = BestWeights()
    batch_scheduler = scheduler if is_per_batch(config) else None
    if valid is not None and budget.limited:
        budget.valid_seconds = from_main(estimate_valid_seconds(valid) if world.is_main else None)
    prefix = f"{label}: " if label else ""
    rows, stopped_by, start = [], "epochs", time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        if epoch > 1 and from_main(time.perf_counter() >= budget.train_deadline()):
            stopped_by = "time_budget"
            break
        lr = float(optimizer.param_groups[0]["lr"])
        offset = int(torch.randint(0, config.num_steps, (), generator=generator))
        bar = progress_bar(count_batches(inputs.numel(), config, offset, world.size),
                           f"{prefix}epoch {epoch}/{config.epochs}", config, world)
        stats = run_epoch(model, optimizer, params, inputs, targets, config, offset, generator,
                          budget.train_deadline(), bar, batch_scheduler, world)
        if not math.isfinite(stats.nll_nats):
            bar.close()
            raise LmbenchError(f"training diverged in epoch {epoch} (loss {stats.nll_nats}); "
                               f"lower lr (now {lr:g}) or clip gradients (clip={config.clip})")
        validated, valid_ppl = from_main(validate(valid, budget) if world.is_main else None)
        text = _progress_text(stats.nll_nats, stats.n_tokens, stats.seconds)
        if valid is not None:
            text += f", valid ppl {valid_ppl:.2f}" if validated else ", validation skipped (no time left in the budget)"
        if not bar.disable:
            bar.set_postfix_str(text, refresh=False)
        elif config.progress and world.is_main:  # no terminal (a log file, CI): one plain line per epoch
            print(f"{prefix}epoch {epoch}/{config.epochs}: {text}, lr {lr:g}", file=sys.stderr, flush=True)
        bar.close()  # the finished bar stays: one line per epoch
        best.update(valid_ppl, epoch, net)
        if batch_scheduler is None:
            step_scheduler(scheduler, valid_ppl if validated else None)
        rows.append(curve_row(epoch, stats, valid_ppl, lr, time.perf_counter() - start))
        if not stats.complete or (valid is not None and not validated):
            stopped_by = "time_budget"
            break
        if valid is not None and config.early_stopping is not None \
                and epoch - (best.epoch or 0) >= config.early_stopping:
            stopped_by = "early_stopping"
            break
    best.restore(net)
    if world.distributed:
        del model
        release_collectives()
    return TrainingLog(rows, best.epoch, best.valid_ppl, stopped_by)


def validate(valid: Validation | None, budget: TimeBudget) -> tuple[bool, float]:
    """One validation pass if there is a split and the budget has room: (validated, perplexity or NaN)."""
    if valid is None or not budget.fits_validation():
        return False, math.nan
    valid_nll, budget.valid_seconds = timed(valid.mean_nll, valid.n_tokens)
    return True, exp_or_inf(valid_nll)


def check_divides(config: TrainConfig, world: World) -> None:
    """Raise unless a sequential fit's ``batch_size`` streams split evenly over the ranks."""
    if config.sampling == "sequential" and config.batch_size % world.size:
        raise LmbenchError(f"batch_size={config.batch_size} streams do not split evenly over {world.size} processes; "
                           f"set batch_size to a multiple of {world.size} (it is the batch of all processes together)")


def data_parallel(net: nn.Module, device: torch.device, world: World) -> nn.Module:
    """``net`` wrapped in DistributedDataParallel for a data-parallel fit (``net`` itself in one process).

    DDP copies rank 0's weights to every rank when it wraps the network and averages the gradients
    over the ranks in ``backward``. In a data-parallel fit the global torch generator is then
    reseeded per rank, so dropout masks differ between ranks as they would between the columns of
    one large batch.
    """
    if not world.distributed:
        return net
    from torch.nn.parallel import DistributedDataParallel

    wrapped = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    torch.manual_seed(from_main(int(torch.randint(0, 2**62, ()).item())) + world.rank)
    return wrapped


def curve_row(epoch: int, stats: EpochStats, valid_ppl: float, lr: float, elapsed_s: float) -> dict:
    """One learning-curve row (plain Python values, so it can be saved with the model)."""
    return {"epoch": epoch, "train_ppl": exp_or_inf(stats.nll_nats / max(stats.n_tokens, 1)),
            "valid_ppl": float(valid_ppl), "lr": float(lr),
            "tokens_per_s": stats.n_tokens / stats.seconds if stats.seconds > 0 else math.nan,
            "seconds": float(stats.seconds), "elapsed_seconds": float(elapsed_s),
            "train_tokens": int(stats.n_tokens), "complete": bool(stats.complete)}


def progress_bar(n_batches: int, desc: str, config: TrainConfig, world: World = World()) -> tqdm:
    """A tqdm bar on stderr, shown only on rank 0, if ``config.progress`` and stderr is a terminal."""
    show = config.progress and world.is_main
    return tqdm(total=n_batches, desc=desc, unit="batch", file=sys.stderr, dynamic_ncols=True,
                disable=None if show else True)


def run_epoch(net: nn.Module, optimizer: torch.optim.Optimizer, params: list[nn.Parameter],
              inputs: torch.Tensor, targets: torch.Tensor, config: TrainConfig, offset: int,
              generator: torch.Generator, deadline: float, bar: tqdm,
              batch_scheduler: LRScheduler | None = None, world: World = World()) -> EpochStats:
    """One pass of truncated BPTT over the training stream, stopped before a batch that would end past ``deadline``.

    The first batch always runs; a later one is not started if the mean batch time so far says it
    would end after ``deadline`` (rank 0's clock decides for every rank). The loop does no
    host-device synchronization per batch: the summed loss stays on the device and is read when the
    progress bar refreshes its tokens/s and perplexity (about twice a second) and at the end.
    ``batch_scheduler`` (a per-batch lr schedule) is stepped after every optimizer step. ``net`` may
    be wrapped in DistributedDataParallel; the returned loss and tokens are summed over the ranks.
    """
    net.train()
    carry, part = config.sampling == "sequential", (world.rank, world.size)
    if carry:
        batches = sequential_batches(inputs, targets, config.batch_size, config.num_steps, offset, part)
    else:
        batches = random_batches(inputs, targets, config.batch_size, config.num_steps, offset, generator, part)
    n_batches = count_batches(inputs.numel(), config, offset, world.size)
    accumulate = torch.float32 if inputs.device.type == "mps" else torch.float64  # MPS has no float64
    nll_sum = torch.zeros((), dtype=accumulate, device=inputs.device)
    n_tokens, state, done = 0, None, 0
    start = last_refresh = time.perf_counter()
    with training_matmuls(config.precision, inputs.device):
        for x, y, weight in batches:  # (T, b), (T, b), float
            loss, state = train_step(net, optimizer, params, x, y, weight, detach_state(state) if carry else None,
                                     config)
            if batch_scheduler is not None:
                batch_scheduler.step()
            nll_sum += loss * y.numel()
            n_tokens += y.numel()
            done += 1
            now = time.perf_counter()
            if not bar.disable:
                bar.update()
                if now - last_refresh > 0.5:
                    last_refresh = now
                    bar.set_postfix_str(_progress_text(nll_sum.item() * world.size, n_tokens * world.size, now - start),
                                        refresh=False)
            if done < n_batches and math.isfinite(deadline) and from_main(now + (now - start) / done > deadline):
                break
    nll, n_tokens = summed(float(nll_sum.item()), n_tokens)  # .item() synchronizes: the time includes all work
    seconds = time.perf_counter() - start
    return EpochStats(nll_nats=nll, n_tokens=int(n_tokens), seconds=seconds, complete=done == n_batches)


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


def _progress_text(nll_nats: float, n_tokens: int, seconds: float) -> str:
    return f"{n_tokens / max(seconds, 1e-9):,.0f} tok/s, ppl {exp_or_inf(nll_nats / n_tokens):.2f}"


class BestWeights:
    """A copy of the weights of the epoch with the lowest validation perplexity so far."""

    def __init__(self):
        self.epoch: int | None = None
        self.valid_ppl: float | None = None
        self.state: dict | None = None

    def update(self, valid_ppl: float, epoch: int, net: nn.Module) -> bool:
        """Keep ``net``'s weights if ``valid_ppl`` is the best so far; return whether it improved.

        Without validation (NaN) nothing is kept, so the last weights are the ones used.
        """
        if not math.isfinite(valid_ppl) or (self.valid_ppl is not None and valid_ppl >= self.valid_ppl):
            return False
        self.epoch, self.valid_ppl = epoch, float(valid_ppl)
        self.state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        return True

    def restore(self, net: nn.Module) -> None:
        """Load the best weights back into ``net`` (no-op if none were kept)."""
        if self.state is not None:
            net.load_state_dict(self.state)
