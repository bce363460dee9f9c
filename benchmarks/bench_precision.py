"""Training precision side by side: float32 against bfloat16 autocast (or tf32) on The Time Machine.

Fits the same networks from the same seed with each ``precision`` and prints training tokens/s and
the valid and test perplexities (always scored in float32), so the speed-up and the change in the
reported figures are read off one table.

Usage::

    python benchmarks/bench_precision.py                              # CPU: float32 vs bfloat16
    python benchmarks/bench_precision.py --device cuda --precisions float32,tf32,bfloat16
"""

from __future__ import annotations

import argparse

import numpy as np

from lmbench.models.neural.recurrent import RecurrentLM
from lmbench.models.neural.transformer import TransformerLM
from lmbench.runs.runner import RunConfig, load_dataset
from lmbench.models.seeding import seed_everything


def networks(device: str) -> dict:
    """name -> precision -> a fresh model (the lstm preset's network for 2 epochs; a 2-block Transformer for 1)."""
    return {
        "LSTM 256, 2 epochs": lambda p: RecurrentLM(hidden_size=256, epochs=2, device=device, progress=False,
                                                    precision=p),
        "Transformer 2x128, 1 epoch": lambda p: TransformerLM(d_model=128, num_layers=2, context=64, epochs=1,
                                                              device=device, progress=False, precision=p),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precisions", default="float32,bfloat16")
    args = parser.parse_args()
    data = load_dataset(RunConfig(models=["lstm"], corpus="timemachine"))
    train, valid, test = (data.splits[s] for s in ("train", "valid", "test"))
    print("| model | precision | training tokens/s | valid ppl | test ppl |\n| --- | --- | ---: | ---: | ---: |")
    for name, build in networks(args.device).items():
        base = None
        for precision in args.precisions.split(","):
            seed_everything(0)
            model = build(precision).fit(train, valid, vocab=data.vocab)
            curve = model.training_curve()
            rate = float(np.mean([row["tokens_per_s"] for row in curve]))
            base = base or rate
            print(f"| {name} | {precision} | {rate:,.0f} ({rate / base:.2f}x) | {curve[-1]['valid_ppl']:.4f} "
                  f"| {model.perplexity(test):.4f} |", flush=True)


if __name__ == "__main__":
    main()
