"""Training throughput of lmbench's LSTM against a bare nn.LSTM loop with the same shapes.

Both train a word-level LSTM language model (embedding -> nn.LSTM -> linear) on the same synthetic
token ids, with the same vocabulary, sizes, batch layout (``batch_size`` parallel streams,
``num_steps`` windows, hidden state carried and detached), optimizer (SGD) and gradient clipping.
Runs alternate (bare, lmbench, bare, lmbench, ...) after one untimed warm-up of each, and the
median tokens/s of each side is reported with their ratio (target: lmbench >= 0.90 x bare).

lmbench's figure is its own per-epoch training rate (``tokens_per_s`` of the learning curve: the
batch loop, without building the network or validating); the whole ``fit()`` call, network
construction and data preparation included, is reported too.

Usage::

    python benchmarks/bench_lstm_throughput.py                      # PTB-like: V=10000, 2x200, batch 20, 35 steps
    python benchmarks/bench_lstm_throughput.py --batches 30 --repeats 5 --threads 2
    python benchmarks/bench_lstm_throughput.py --device cuda --batches 400
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn

from lmbench.models.neural import DeepRecurrentLM, RecurrentLM
from lmbench.seeding import seed_everything
from lmbench.training import select_device
from lmbench.vocab import Vocabulary


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", type=int, default=10_000, help="vocabulary size V (default 10000, PTB)")
    parser.add_argument("--hidden", type=int, default=200, help="hidden and embedding size")
    parser.add_argument("--layers", type=int, default=2, help="LSTM layers")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--num-steps", type=int, default=35)
    parser.add_argument("--batches", type=int, default=50, help="training batches per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side")
    parser.add_argument("--clip", type=float, default=5.0)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    return parser.parse_args()


def synthetic_ids(args) -> np.ndarray:
    """Token ids for exactly ``batches`` full windows after any random offset."""
    n = args.batch_size * args.num_steps * args.batches + args.num_steps - 1
    return np.random.default_rng(0).integers(0, args.vocab, size=n).astype(np.int32)


def run_lmbench(ids: np.ndarray, args) -> tuple[float, float, int]:
    """Train lmbench's LSTM for one epoch over ``ids``; return (loop tokens/s, fit tokens/s, tokens)."""
    cls = DeepRecurrentLM if args.layers >= 2 else RecurrentLM
    model = cls(cell="lstm", num_layers=args.layers, hidden_size=args.hidden, embedding_size=args.hidden,
                init_scale=0.1, num_steps=args.num_steps, batch_size=args.batch_size, epochs=1,
                optimizer="sgd", lr=args.lr, clip=args.clip, early_stopping=None, device=args.device,
                progress=False)
    vocab = Vocabulary(["<unk>", "</s>"] + [f"w{i}" for i in range(args.vocab - 2)])
    start = time.perf_counter()
    model.fit(ids, None, vocab=vocab)
    fit_seconds = time.perf_counter() - start
    row = model.training_curve()[0]
    return row["tokens_per_s"], row["train_tokens"] / fit_seconds, row["train_tokens"]


def run_bare(ids: np.ndarray, args, device: torch.device) -> tuple[float, int]:
    """The same training as a plain PyTorch loop; return (tokens/s of the batch loop, tokens)."""
    V, H, B, T = args.vocab, args.hidden, args.batch_size, args.num_steps
    embedding, lstm, decoder = nn.Embedding(V + 1, H), nn.LSTM(H, H, args.layers), nn.Linear(H, V)
    modules = nn.ModuleList([embedding, lstm, decoder]).to(device)
    for p in modules.parameters():
        nn.init.uniform_(p, -0.1, 0.1)
    params = list(modules.parameters())
    optimizer = torch.optim.SGD(params, lr=args.lr)
    data = torch.as_tensor(ids.astype(np.int64), device=device)
    length = (data.numel() - 1) // B
    x_all = data[: B * length].view(B, length).t().contiguous()  # (L, B)
    y_all = data[1: B * length + 1].view(B, length).t().contiguous()  # (L, B)
    state, tokens = None, 0
    start = time.perf_counter()
    for i in range(0, args.batches * T, T):
        x, y = x_all[i:i + T], y_all[i:i + T]  # (T, B)
        if state is not None:
            state = tuple(s.detach() for s in state)
        out, state = lstm(embedding(x), state)  # (T, B, H)
        logits = decoder(out)  # (T, B, V)
        loss = nn.functional.cross_entropy(logits.view(-1, V), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, args.clip)
        optimizer.step()
        tokens += y.numel()
    loss.item()  # wait for queued work before stopping the clock
    return tokens / (time.perf_counter() - start), tokens


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    ids = synthetic_ids(args)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads; "
          f"V={args.vocab}, {args.layers}x{args.hidden} LSTM, batch {args.batch_size}, {args.num_steps} steps, "
          f"{args.batches} batches per run, SGD lr {args.lr}, clip {args.clip}")
    seed_everything(0)
    run_bare(ids, args, device)  # warm-up (allocator, kernels)
    run_lmbench(ids, args)
    bare, loop, fit = [], [], []
    for r in range(args.repeats):
        seed_everything(r)
        b, n_bare = run_bare(ids, args, device)
        seed_everything(r)
        l, f, n_lm = run_lmbench(ids, args)
        bare.append(b), loop.append(l), fit.append(f)
        print(f"run {r + 1}: bare {b:,.0f} tok/s ({n_bare} tokens)   lmbench {l:,.0f} tok/s "
              f"({n_lm} tokens; whole fit {f:,.0f} tok/s)   ratio {l / b:.3f}")
    mb, ml, mf = statistics.median(bare), statistics.median(loop), statistics.median(fit)
    print(f"median: bare {mb:,.0f} tok/s, lmbench {ml:,.0f} tok/s, whole fit {mf:,.0f} tok/s")
    print(f"ratio lmbench/bare: {ml / mb:.3f} (batch loop), {mf / mb:.3f} (whole fit); target >= 0.90")


if __name__ == "__main__":
    main()
