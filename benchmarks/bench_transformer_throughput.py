"""Training throughput of lmbench's Transformer against a bare PyTorch loop with the same shapes.

Both train the same network (:class:`lmbench.models.neural.transformer.TransformerNet`: pre-LN blocks, tied
embeddings) on the same synthetic token ids, with the same vocabulary, sizes, batches
(``batch_size`` random windows of ``context`` tokens), optimizer (AdamW, weight decay on matrices
only, lr warm-up then cosine decay stepped per batch) and gradient clipping. The bare loop is what
one would write by hand: a fixed list of shuffled windows, forward, cross-entropy, backward, clip,
step, schedule step. After one untimed warm-up of each, the two run in adjacent pairs (which goes
first alternates); the headline is the median over pairs of lmbench/bare tokens/s (target: >=
0.90), which is robust to load from other processes drifting during the benchmark.

lmbench's figure is its own per-epoch training rate (``tokens_per_s`` of the learning curve: the
batch loop, without building the network or validating); the whole ``fit()`` call, network
construction and data preparation included, is reported too.

The same script measures lmbench 0.2 when a checkout of it comes first on ``PYTHONPATH``.

Usage::

    python benchmarks/bench_transformer_throughput.py                    # the "transformer" preset's shapes
    python benchmarks/bench_transformer_throughput.py --vocab 10000 --d-model 256 --layers 2 --d-ff 1024 \\
        --batch-size 8 --dropout 0.2 --lr 1.5e-3                           # "transformer-word" on PTB
    python benchmarks/bench_transformer_throughput.py --device cuda --batches 200
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

try:  # the layered layout
    from lmbench.data.vocab import Vocabulary
    from lmbench.models.neural.devices import select_device
    from lmbench.models.neural.training import cosine_multiplier, parameter_groups
    from lmbench.models.neural.transformer import TransformerArchitecture, TransformerLM, TransformerNet
    from lmbench.models.seeding import seed_everything

    LAYERS = "num_layers"
except ImportError:  # lmbench 0.2 (PYTHONPATH=a checkout of it), to measure the code before the redesign
    from lmbench.models.transformer import TransformerArchitecture, TransformerLM, TransformerNet
    from lmbench.seeding import seed_everything
    from lmbench.training import cosine_multiplier, parameter_groups, select_device
    from lmbench.vocab import Vocabulary

    LAYERS = "n_layers"  # the parameter's name in 0.2


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", type=int, default=28, help="vocabulary size V (default 28, characters)")
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--d-ff", type=int, default=512)
    parser.add_argument("--context", type=int, default=128, help="window length (tokens)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--batches", type=int, default=20, help="training batches per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed pairs of runs")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--warmup", type=int, default=2, help="warm-up batches of the cosine schedule")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    return parser.parse_args()


def synthetic_ids(args) -> np.ndarray:
    """Token ids for exactly ``batches`` full batches of windows after any random offset."""
    n = args.batch_size * args.context * args.batches + args.context - 1
    return np.random.default_rng(0).integers(0, args.vocab, size=n).astype(np.int32)


def vocabulary(size: int) -> Vocabulary:
    return Vocabulary(["<unk>", "</s>"] + [f"w{i}" for i in range(size - 2)])


def run_lmbench(ids: np.ndarray, args) -> tuple[float, float, int]:
    """Train lmbench's Transformer for one epoch over ``ids``; return (loop tokens/s, fit tokens/s, tokens)."""
    model = TransformerLM(d_model=args.d_model, n_heads=args.heads, d_ff=args.d_ff, context=args.context,
                          dropout=args.dropout, batch_size=args.batch_size, sampling="random", epochs=1,
                          optimizer="adamw", lr=args.lr, weight_decay=args.weight_decay, clip=args.clip,
                          lr_schedule="cosine", warmup=args.warmup, early_stopping=None, device=args.device,
                          progress=False, **{LAYERS: args.layers})
    start = time.perf_counter()
    model.fit(ids, None, vocab=vocabulary(args.vocab))
    fit_seconds = time.perf_counter() - start
    row = model.training_curve()[0]
    return row["tokens_per_s"], row["train_tokens"] / fit_seconds, row["train_tokens"]


def run_bare(ids: np.ndarray, args, device: torch.device) -> tuple[float, int]:
    """The same training as a plain PyTorch loop; return (tokens/s of the batch loop, tokens)."""
    V, C, B = args.vocab, args.context, args.batch_size
    net = TransformerNet(TransformerArchitecture(V, args.d_model, args.layers, args.heads, args.d_ff, C,
                                                 args.dropout)).to(device).train()
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameter_groups(net, args.weight_decay), lr=args.lr)
    schedule = LambdaLR(optimizer, lambda s: cosine_multiplier(s, args.batches, args.warmup, 0.1))
    data = torch.as_tensor(ids.astype(np.int64), device=device)
    inputs, targets = torch.cat([data.new_tensor([V]), data[:-1]]), data  # <s> = V starts the stream
    starts = torch.randperm(args.batches * B, device=device) * C  # (W,) shuffled window starts
    steps = torch.arange(C, device=device)[:, None]  # (C, 1)
    tokens = 0
    start = time.perf_counter()
    for first in range(0, starts.numel(), B):
        index = starts[first:first + B][None, :] + steps  # (C, B)
        x, y = inputs[index], targets[index]  # (C, B)
        logits, _ = net(x)  # (C, B, V)
        loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, args.clip)
        optimizer.step()
        schedule.step()
        tokens += y.numel()
    loss.item()  # wait for queued work before stopping the clock
    return tokens / (time.perf_counter() - start), tokens


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    ids = synthetic_ids(args)
    import lmbench

    print(f"lmbench {lmbench.__version__} ({lmbench.__file__})")
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads; V={args.vocab}, "
          f"{args.layers}x{args.d_model} Transformer ({args.heads} heads, MLP {args.d_ff}), context {args.context}, "
          f"batch {args.batch_size}, dropout {args.dropout}, {args.batches} batches per run, AdamW lr {args.lr} "
          f"wd {args.weight_decay} cosine, clip {args.clip}")
    seed_everything(0)
    run_bare(ids, args, device)  # warm-up (allocator, kernels)
    run_lmbench(ids, args)
    bare, loop, fit, ratios = [], [], [], []
    for r in range(args.repeats):
        seed_everything(r)
        if r % 2:  # alternate which side goes first, so a drifting machine load favours neither
            l, f, n_lm = run_lmbench(ids, args)
            b, n_bare = run_bare(ids, args, device)
        else:
            b, n_bare = run_bare(ids, args, device)
            l, f, n_lm = run_lmbench(ids, args)
        bare.append(b), loop.append(l), fit.append(f), ratios.append(l / b)
        print(f"pair {r + 1}: bare {b:,.0f} tok/s ({n_bare} tokens)   lmbench {l:,.0f} tok/s "
              f"({n_lm} tokens; whole fit {f:,.0f} tok/s)   ratio {l / b:.3f}", flush=True)
    mb, ml, mf = statistics.median(bare), statistics.median(loop), statistics.median(fit)
    print(f"median tokens/s: bare {mb:,.0f}, lmbench {ml:,.0f} (batch loop), {mf:,.0f} (whole fit)")
    print(f"ratio lmbench/bare: median of paired runs {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}); ratio of medians {ml / mb:.3f} (batch loop), "
          f"{mf / mb:.3f} (whole fit); target >= 0.90")


if __name__ == "__main__":
    main()
