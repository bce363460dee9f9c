"""Neural checkpoints written by lmbench 0.2 (tests/data/v0.2/run-0.2, old parameter names) still load and score
as that run stored (to float32 rounding: bit-identical on the machine that wrote them, within 1e-5 elsewhere,
where the kernels sum in another order)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lmbench.models.checkpoint import load_model
from lmbench.models.neural.recurrent import RecurrentLM
from lmbench.models.neural.transformer import TransformerLM

RUN = Path(__file__).parent / "data" / "v0.2" / "run-0.2"


@pytest.fixture(scope="module")
def targets():
    with np.load(RUN / "scores" / "targets.npz") as data:
        return {"valid": data["valid_ids"], "test": data["test_ids"]}


@pytest.mark.parametrize("name, cls, old_names", [("lstm", RecurrentLM, {"eval_chunk"}),
                                                  ("transformer", TransformerLM, {"n_layers", "eval_batch"})])
def test_a_0_2_checkpoint_loads_and_scores_as_stored(targets, name, cls, old_names):
    path = RUN / "models" / f"{name}.pt"
    saved = torch.load(path, weights_only=True)["params"]
    assert old_names <= set(saved)  # written with the old names
    model = load_model(path)
    assert type(model) is cls and not old_names & set(model.get_params())
    with np.load(RUN / "scores" / f"{name}.npz") as stored:
        for split, ids in targets.items():
            np.testing.assert_allclose(model.logprobs(ids), stored[split], rtol=1e-5, atol=1e-6, err_msg=split)
    summary = model.fitted_summary()
    assert (summary["stopped_by"], summary["epochs_completed"], summary["last_epoch_partial"]) == ("epochs", 1, False)
    assert summary["tokens_trained"] == model.training_curve()[0]["train_tokens"]


def test_old_names_become_the_new_ones_with_their_values():
    lstm, transformer = load_model(RUN / "models" / "lstm.pt"), load_model(RUN / "models" / "transformer.pt")
    assert lstm.eval_tokens == 1024  # eval_chunk: time steps per forward, the same unit
    assert (transformer.num_layers, transformer.context, transformer.eval_tokens) == (1, 16, 16 * 16)
