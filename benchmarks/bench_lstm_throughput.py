"""Training throughput of lmbench's LSTM against a bare nn.LSTM loop with the same shapes.

Both train a word-level LSTM language model (embedding -> nn.LSTM -> linear) on the same synthetic
token ids, with the same vocabulary, sizes, batch layout (``batch_size`` parallel streams,
``num_steps`` windows, hidden state carried and detached), optimizer (SGD) and gradient clipping.
After one untimed warm-up of each, the two run in adjacent pairs (which goes first alternates);
the headline is the median over pairs of lmbench/bare tokens/s (target: >= 0.90), which is robust
to load from other processes drifting during the benchmark; the medians of each side are shown too.

lmbench's figure is its own per-epoch training rate (``tokens_per_s`` of the learning curve: the
batch loop, without building the network or validating); the whole ``fit()`` call, network
construction and data preparation included, is reported too.

The same script measures lmbench 0.2 when a checkout of it comes first on ``PYTHONPATH``.

Usage::

    python benchmarks/bench_lstm_throughput.py                      # PTB-like: V=10000, 2x200, batch 20, 35 steps
    python benchmarks/bench_lstm_throughput.py --num-steps 20 --lr 20 --clip 0.25   # lstm-zaremba-small's shapes
    python benchmarks/bench_lstm_throughput.py --device cuda --batches 400
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn

try:  # the layered layout
    from lmbench.data.vocab import Vocabulary
    from lmbench.models.neural.devices import select_device
    from lmbench.models.neural.recurrent import DeepRecurrentLM, RecurrentLM
    from lmbench.models.seeding import seed_everything
except ImportError:  # lmbench 0.2 (PYTHONPATH=a checkout of it), to measure the code before the redesign
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
    parser.add_argument("--batches", type=int, default=30, help="training batches per timed run")
    parser.add_argument("--repeats", type=int, default=7, help="timed pairs of runs")
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
    import lmbench

    print(f"lmbench {lmbench.__version__} ({lmbench.__file__})")
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads; "
          f"V={args.vocab}, {args.layers}x{args.hidden} LSTM, batch {args.batch_size}, {args.num_steps} steps, "
          f"{args.batches} batches per run, SGD lr {args.lr}, clip {args.clip}")
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
              f"({n_lm} tokens; whole fit {f:,.0f} tok/s)   ratio {l / b:.3f}")
    mb, ml, mf = statistics.median(bare), statistics.median(loop), statistics.median(fit)
    print(f"median tokens/s: bare {mb:,.0f}, lmbench {ml:,.0f} (batch loop), {mf:,.0f} (whole fit)")
    print(f"ratio lmbench/bare: median of paired runs {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}); ratio of medians {ml / mb:.3f} (batch loop), "
          f"{mf / mb:.3f} (whole fit); target >= 0.90")


if __name__ == "__main__":
    main()
