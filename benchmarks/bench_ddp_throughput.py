"""Training throughput of data-parallel lmbench with 1 and N processes (torchrun, gloo on CPU, nccl on GPU).

Each configuration trains the same network on the same synthetic token ids for one epoch with the
same global batch, launched with ``torchrun --standalone --nproc_per_node=P``, and reports rank 0's
training rate (the learning curve's ``tokens_per_s``: tokens of all ranks per second of the batch
loop). Configurations run in rounds (order rotating) and the median per configuration is shown
with the ratio to the first one. On a CPU, give every configuration the same cores: ``--threads``
is the torch threads per process, so "1x2" (1 process, 2 threads) and "2x1" (2 processes, 1 thread
each) use two cores each.

Usage::

    python benchmarks/bench_ddp_throughput.py                           # 1x1, 1x2, 2x1 on this CPU
    python benchmarks/bench_ddp_throughput.py --configs 1x1,2x1,4x1 --device cuda   # GPUs: 1 thread per process

The script launches itself under torchrun for each configuration; a run under torchrun (WORLD_SIZE
set) is such a worker.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="1x1,1x2,2x1",
                        help="PROCESSESxTHREADS configurations, comma-separated (default 1x1,1x2,2x1)")
    parser.add_argument("--vocab", type=int, default=10_000, help="vocabulary size (default 10000, PTB)")
    parser.add_argument("--hidden", type=int, default=200, help="hidden and embedding size, 2 LSTM layers")
    parser.add_argument("--batch-size", type=int, default=20, help="global batch: streams of all processes")
    parser.add_argument("--num-steps", type=int, default=35)
    parser.add_argument("--batches", type=int, default=40, help="training batches per timed epoch")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the configurations")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def synthetic_ids(args) -> np.ndarray:
    n = args.batch_size * args.num_steps * args.batches + args.num_steps - 1
    return np.random.default_rng(0).integers(0, args.vocab, size=n).astype(np.int32)


def worker(args) -> None:
    """One epoch of the word-level LSTM inside lmbench's process group; rank 0 prints its rate as JSON."""
    from lmbench.models.neural.distributed import process_group
    from lmbench.models.neural.recurrent import RecurrentLM
    from lmbench.models.seeding import seed_everything
    from lmbench.data.vocab import Vocabulary

    vocab = Vocabulary(["<unk>", "</s>"] + [f"w{i}" for i in range(args.vocab - 2)])
    with process_group() as world:
        seed_everything(0)
        model = RecurrentLM(cell="lstm", num_layers=2, hidden_size=args.hidden, embedding_size=args.hidden,
                            batch_size=args.batch_size, num_steps=args.num_steps, optimizer="sgd", lr=1.0, clip=5.0,
                            epochs=1, device=args.device, progress=False)
        model.fit(synthetic_ids(args), vocab=vocab)
        if world.is_main:
            row = model.training_curve()[0]
            print(json.dumps({"tokens_per_s": row["tokens_per_s"], "tokens": row["train_tokens"],
                              "world_size": world.size, "backend": world.backend}))


def launch(args, processes: int, threads: int) -> dict:
    """Run one configuration under torchrun; rank 0's JSON line."""
    path = os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": path}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               __file__, "--worker", "--vocab", str(args.vocab), "--hidden", str(args.hidden),
               "--batch-size", str(args.batch_size), "--num-steps", str(args.num_steps),
               "--batches", str(args.batches), "--device", args.device]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        sys.exit(f"{processes}x{threads} failed:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args)
        return
    configs = [tuple(int(x) for x in c.split("x")) for c in args.configs.split(",")]
    rates: dict = {c: [] for c in configs}
    for round_ in range(args.repeats):
        for c in configs[round_ % len(configs):] + configs[:round_ % len(configs)]:
            result = launch(args, *c)
            rates[c].append(result["tokens_per_s"])
            print(f"round {round_ + 1}: {c[0]} process(es) x {c[1]} thread(s): {result['tokens_per_s']:,.0f} tokens/s "
                  f"({result['tokens']:,} tokens, backend {result['backend']})", flush=True)
    base = statistics.median(rates[configs[0]])
    print(f"\nword LSTM 2x{args.hidden}, V={args.vocab}, global batch {args.batch_size} x {args.num_steps} steps, "
          f"device {args.device}; median of {args.repeats}")
    for c in configs:
        median = statistics.median(rates[c])
        print(f"  {c[0]} process(es) x {c[1]} thread(s): {median:>9,.0f} tokens/s  ({median / base:.2f}x "
              f"the {configs[0][0]}x{configs[0][1]} rate)")


if __name__ == "__main__":
    main()
