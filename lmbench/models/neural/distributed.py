"""Data-parallel training across processes and machines: the process group that torchrun sets up.

PyTorch's DistributedDataParallel (Li et al. 2020, "PyTorch Distributed"): lmbench does not start
processes itself; ``torchrun ... -m lmbench run ...`` does and describes each process's place in
environment variables. Every rank fits the neural models on its part of each batch; rank 0 alone
validates, fits the other models, scores and writes (:mod:`lmbench.models.neural.training`). The
backend is gloo on CPUs and nccl for CUDA tensors; each process uses the GPU of its ``LOCAL_RANK``.
"""

from __future__ import annotations

import datetime as _dt
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from ...errors import LmbenchError

#: how long a rank waits in a collective before giving up: rank 0 scores and writes while the
#: others wait for the next fit, which can take long on a large run. A crashed rank is noticed at
#: once by torchrun, which stops the others.
COLLECTIVE_TIMEOUT = _dt.timedelta(hours=6)
#: how long joining waits for every process to arrive (``LMBENCH_RENDEZVOUS_SECONDS`` overrides it): a
#: torchrun launch has started them all by then; variables left over from a job script would wait forever.
RENDEZVOUS_SECONDS = 120


class RankError(LmbenchError):
    """An error that only this rank meets (rank 0 cannot report it), so every rank prints it."""


@dataclass(frozen=True)
class World:
    """Where this process stands: its rank among ``size`` processes, its rank on this machine, the backend."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Whether this process validates, scores and writes (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def describe(self) -> dict:
        """What config.json records: world size, backend, machines and processes per machine."""
        return {"world_size": self.size, "backend": self.backend,
                "nodes": _env_int("GROUP_WORLD_SIZE", 1), "processes_per_node": _env_int("LOCAL_WORLD_SIZE", 1)}


def launched_world() -> World:
    """The world torchrun describes in this process's environment (a world of one without it).

    Raises:
        LmbenchError: ``WORLD_SIZE`` says several processes but the rendezvous address torchrun
            sets (``MASTER_ADDR``, ``MASTER_PORT``) is missing, e.g. a variable left over from a
            job script; joining would wait for processes that were never started.
    """
    size = _env_int("WORLD_SIZE", 1)
    if size == 1:
        return World()
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
    if missing:
        raise LmbenchError(f"WORLD_SIZE={size} is set but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                           f"not; start lmbench with torchrun (see README), or unset WORLD_SIZE for one process")
    return World(rank=_env_int("RANK", 0), size=size, local_rank=_env_int("LOCAL_RANK", 0))


def launched_rank() -> int:
    """This process's rank as torchrun set it in ``RANK`` (0 without torchrun, or when unreadable: never raises)."""
    value = os.environ.get("RANK", "0")
    return int(value) if value.isdigit() else 0


def current_world() -> World:
    """The world of the process group this process has joined (a world of one if none)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return World()
    return World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=_env_int("LOCAL_RANK", 0),
                 backend=str(dist.get_backend()))


@contextmanager
def process_group() -> Iterator[World]:
    """Join the process group of a torchrun launch for the block (nothing to do for a single process).

    Inside another such block (a script that runs lmbench within its own group) the group joined
    there is used, and left there.

    Raises:
        LmbenchError: torch has no distributed support here, or the group could not be formed.
    """
    world = launched_world()
    if not world.distributed:
        yield world
        return
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        raise LmbenchError("this torch build has no torch.distributed; run lmbench in one process (without torchrun)")
    if dist.is_initialized():
        yield current_world()
        return
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(world.local_rank % torch.cuda.device_count())
        backend = "cpu:gloo,cuda:nccl"
    dist.init_process_group(backend, store=rendezvous(world), rank=world.rank, world_size=world.size,
                            timeout=COLLECTIVE_TIMEOUT)
    yield current_world()
    # Leave together: a rank that tears its group down while others still use theirs aborts in gloo.
    # After an error there is no barrier (the others may be inside another collective): the process
    # ends with an error and torchrun stops the rest.
    release_collectives()
    dist.barrier()
    dist.destroy_process_group()


def rendezvous(world: World):
    """The key-value store every process of the launch meets at (torchrun's, at MASTER_ADDR:MASTER_PORT).

    Joining waits at most :data:`RENDEZVOUS_SECONDS`, and SIGTERM ends the process while it waits (a
    Python handler could not run inside the wait); then it is a one-line error naming the variables.
    """
    import signal
    import threading

    import torch.distributed as dist

    seconds = _env_int("LMBENCH_RENDEZVOUS_SECONDS", RENDEZVOUS_SECONDS)
    host, port = os.environ["MASTER_ADDR"], _env_int("MASTER_PORT", 0)
    agent_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"  # torchrun's agent hosts the store
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL) if main_thread else None
    try:
        return dist.TCPStore(host, port, world.size, is_master=world.rank == 0 and not agent_store,
                             timeout=_dt.timedelta(seconds=seconds), wait_for_workers=True)
    except (RuntimeError, ValueError, OSError) as exc:
        raise RankError(f"rank {world.rank} of WORLD_SIZE={world.size} waited {seconds} s at MASTER_ADDR={host} "
                        f"MASTER_PORT={port} and not every process arrived ({str(exc).splitlines()[0][:120]}); "
                        f"start lmbench with torchrun, or unset WORLD_SIZE, RANK, MASTER_ADDR and MASTER_PORT "
                        f"left over in the environment") from None
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def release_collectives() -> None:
    """Collect what DistributedDataParallel leaves in reference cycles while the process group is alive.

    Left to the interpreter's exit, those objects are destroyed after the group, and gloo then aborts
    the process now and then ("terminate called without an active exception").
    """
    import gc

    gc.collect()


def broadcast_from_main(value):
    """Broadcast: rank 0's ``value`` (a picklable object) on every rank; the value itself in a single process.

    Decisions that depend on a clock or on validation are made by rank 0 and shared this way, so
    that every rank takes the same branch and reaches the same collectives.
    """
    import torch.distributed as dist

    if not current_world().distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(*values: float) -> tuple[float, ...]:
    """All-reduce: the sums over all ranks of a few numbers, on every rank (the numbers themselves in one process)."""
    import torch
    import torch.distributed as dist

    if not current_world().distributed:
        return tuple(float(v) for v in values)
    total = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":  # a pure nccl group reduces CUDA tensors only
        total = total.cuda()
    dist.all_reduce(total)
    return tuple(float(v) for v in total.cpu())


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return int(value) if value else default
    except ValueError:
        raise LmbenchError(f"the environment variable {name}={value!r} is not a whole number; "
                           f"start lmbench with torchrun, which sets it") from None
