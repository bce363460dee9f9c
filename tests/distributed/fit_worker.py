"""Run under torchrun by tests/test_distributed.py: fit small networks data-parallel, save every rank's weights.

Usage: torchrun --standalone --nproc_per_node 2 tests/distributed/fit_worker.py OUT_DIR

Every rank fits the models of :func:`models` on the same tiny corpus with the same seed, inside
lmbench's process group, and writes ``OUT_DIR/<name>-rank<r>.npz`` (its network weights) and, on
rank 0, ``OUT_DIR/<name>-curve.json`` and ``<name>-summary.json`` (its learning curve and fitted summary).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lmbench.models.neural.distributed import process_group  # noqa: E402
from lmbench.models.neural.recurrent import RecurrentLM  # noqa: E402
from lmbench.models.neural.transformer import TransformerLM  # noqa: E402
from lmbench.models.seeding import seed_everything  # noqa: E402


def corpus():
    """The tiny word corpus both this worker and the single-process reference use."""
    from conftest import make_dataset, random_lines

    rng = np.random.default_rng(7)
    return make_dataset(random_lines(rng, 400), random_lines(rng, 40), random_lines(rng, 40))


def models() -> dict:
    """name -> a fresh model: a sequential LSTM (Adam, clipping) and a randomly batched Transformer (AdamW, cosine).

    The Transformer's training split (2,454 tokens) makes 203 or 204 windows of 12 per epoch, so the last of
    its 8-window batches has 3 or 4 windows; 3 split 1/2 over two ranks (weighted, see random_batches).
    """
    return {
        "lstm": RecurrentLM(cell="lstm", hidden_size=24, embedding_size=12, num_steps=8, batch_size=6, epochs=3,
                            lr=0.01, clip=1.0, device="cpu", progress=False),
        "transformer": TransformerLM(d_model=16, n_layers=1, n_heads=2, context=12, dropout=0.0, batch_size=8,
                                     sampling="random", epochs=2, optimizer="adamw", lr=0.003, weight_decay=0.1,
                                     lr_schedule="cosine", warmup=3, device="cpu", progress=False),
        # stopped by the clock: rank 0 decides when, and every rank must stop at the same batch
        "lstm-budget": RecurrentLM(cell="lstm", hidden_size=24, embedding_size=12, num_steps=8, batch_size=6,
                                   epochs=1000, time_budget=1.5, early_stopping=None, device="cpu", progress=False),
    }


def fit(name: str, dataset):
    seed_everything(0)
    return models()[name].fit(dataset.splits["train"], dataset.splits["valid"], vocab=dataset.vocab)


def weights(model) -> dict:
    return {k: v.detach().cpu().numpy() for k, v in model.net_.state_dict().items()}


def main(out: Path) -> None:
    dataset = corpus()
    with process_group() as world:
        for name in models():
            model = fit(name, dataset)
            np.savez(out / f"{name}-rank{world.rank}.npz", **weights(model))
            if world.is_main:
                (out / f"{name}-curve.json").write_text(json.dumps(model.training_curve()))
                (out / f"{name}-summary.json").write_text(json.dumps(model.fitted_summary()))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
