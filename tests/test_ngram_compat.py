"""Checkpoints written by lmbench 0.2 (tests/data/v0.2/run-0.2) still load and score exactly as that run stored."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from lmbench.models.checkpoint import load_model

RUN = Path(__file__).parent / "data" / "v0.2" / "run-0.2"
#: the n-gram checkpoints of the 0.2 run (3gram-wb was fitted on disk: its checkpoint carries its tables).
NGRAM_CHECKPOINTS = ["bigram-add1", "3gram-kn", "3gram-wb", "3gram-katz", "3gram-interp", "3gram-addk",
                     "3gram-stupid", "infgram-wb"]


@pytest.fixture(scope="module")
def targets():
    with np.load(RUN / "scores" / "targets.npz") as npz:
        return {"valid": npz["valid_ids"], "test": npz["test_ids"]}


@pytest.mark.parametrize("name", NGRAM_CHECKPOINTS)
def test_a_02_checkpoint_scores_its_run_exactly(name, targets):
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # fitted hyperparameters are loaded, never estimated again
        model = load_model(RUN / "models" / f"{name}.pt")
    with np.load(RUN / "scores" / f"{name}.npz") as stored:
        for split, ids in targets.items():
            # numpy's log follows the CPU's vector units: AVX-512 and AVX2 may differ in the last bit
            np.testing.assert_array_max_ulp(model.logprobs(ids), stored[split], maxulp=1)


def test_the_02_disk_fit_loads_on_disk_and_katz_reads_its_renamed_parameter():
    wb, katz = load_model(RUN / "models" / "3gram-wb.pt"), load_model(RUN / "models" / "3gram-katz.pt")
    assert wb.on_disk and wb.storage == "disk"
    assert katz.max_count == 5 and "k" not in katz.get_params()       # saved by 0.2 as k=5
