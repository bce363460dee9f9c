"""Training precision (float32, tf32, bfloat16), float32 scoring, and checkpoints that move between devices.

Tests marked ``gpu`` run only where CUDA is present (see conftest.py); the others run everywhere.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from lmbench.errors import LmbenchError
from lmbench.models.neural.recurrent import RecurrentLM, stream_logprobs
from lmbench.models.neural.transformer import TransformerLM, window_logprobs
from lmbench.models.neural import recurrent
from lmbench.models.neural.precision import _cuda_tf32, cpu_has_bfloat16_lstm, float32_scoring
from lmbench.models.checkpoint import load_model
from lmbench.models.seeding import seed_everything
from lmbench.models.neural.training import TrainingOptions
from lmbench.data.vocab import Vocabulary

TEXT = ("the time traveller for so it will be convenient to speak of him was expounding a recondite "
        "matter to us his grey eyes shone and twinkled and his usually pale face was flushed and animated\n") * 6
#: largest relative change of a reported perplexity allowed from scoring with TF32 instead of float32.
TF32_RTOL = 1e-3


@pytest.fixture(scope="module")
def data():
    tokens = list(TEXT)
    vocab = Vocabulary.build(tokens, "\n")
    ids, _ = vocab.encode(tokens)
    n = ids.size
    return vocab, ids[: n * 7 // 10], ids[n * 7 // 10: n * 85 // 100], ids[n * 85 // 100:]


def lstm(**kw) -> RecurrentLM:
    return RecurrentLM(**{"cell": "lstm", "hidden_size": 32, "embedding_size": 16, "num_steps": 10, "batch_size": 4,
                          "epochs": 2, "lr": 0.01, "progress": False, "device": "cpu", **kw})


def transformer(**kw) -> TransformerLM:
    return TransformerLM(**{"d_model": 16, "num_layers": 1, "n_heads": 2, "context": 16, "dropout": 0.0, "batch_size": 4,
                            "epochs": 2, "progress": False, "device": "cpu", **kw})


#: an LSTM under bfloat16 on a CPU needs oneDNN's bfloat16 kernels (AVX-512 BF16 or AMX).
needs_bf16_lstm = pytest.mark.skipif(not cpu_has_bfloat16_lstm(), reason="this CPU has no bfloat16 LSTM kernels")


def fit(model, data, seed=0):
    vocab, train, valid, _ = data
    seed_everything(seed)
    return model.fit(train, valid, vocab=vocab)


def test_an_unknown_precision_is_refused_with_the_choices():
    with pytest.raises(LmbenchError, match=r"precision.*bfloat16"):
        TrainingOptions(precision="bf16").check()
    with pytest.raises(LmbenchError, match="precision"):
        lstm(precision="half").check_params()


@pytest.mark.parametrize("build", [pytest.param(lstm, marks=needs_bf16_lstm), transformer])
def test_bfloat16_training_really_runs_in_bfloat16_and_lands_near_float32(data, build):
    full, mixed = fit(build(), data), fit(build(precision="bfloat16"), data)
    full_curve, mixed_curve = full.training_curve(), mixed.training_curve()
    assert mixed_curve[0]["train_ppl"] != full_curve[0]["train_ppl"]  # autocast was on: another trajectory
    for a, b in zip(full_curve, mixed_curve):
        assert b["train_ppl"] == pytest.approx(a["train_ppl"], rel=0.05)
    assert all(p.dtype == torch.float32 for p in mixed.net_.parameters())  # weights stay float32
    _, _, _, test = data
    assert mixed.perplexity(test) == pytest.approx(full.perplexity(test), rel=0.05)


@pytest.mark.parametrize("build", [pytest.param(lstm, marks=needs_bf16_lstm), transformer])
def test_validation_and_scoring_are_float32_after_bfloat16_training(data, build):
    vocab, _, valid, _ = data
    model = fit(build(precision="bfloat16", epochs=2), data)
    best = min(row["valid_ppl"] for row in model.training_curve())
    scored = model.logprobs(valid)
    assert scored.dtype == np.float64
    assert math.exp(-scored.mean()) == pytest.approx(best, rel=1e-9)  # validation scored exactly as test is


def test_a_bfloat16_lstm_on_a_cpu_without_its_kernels_is_refused_before_training(data, monkeypatch):
    monkeypatch.setattr(recurrent, "cpu_has_bfloat16_lstm", lambda: False)
    with pytest.raises(LmbenchError, match=r"bfloat16.*LSTM.*use precision float32") as refused:
        fit(lstm(precision="bfloat16"), data)
    assert "\n" not in str(refused.value)
    for fine in (lstm(precision="float32"), lstm(cell="gru", precision="bfloat16"), transformer(precision="bfloat16")):
        fine.check_params()


def test_tf32_is_float32_on_a_cpu(data):
    full, tf32 = fit(lstm(), data), fit(lstm(precision="tf32"), data)
    for a, b in zip(full.net_.state_dict().values(), tf32.net_.state_dict().values()):
        assert torch.equal(a, b)


def test_tf32_switches_are_restored_after_the_block_even_after_an_error():
    cudnn = torch.backends.cudnn
    before = (torch.get_float32_matmul_precision(), cudnn.allow_tf32)
    with pytest.raises(RuntimeError):
        with _cuda_tf32(torch.device("cuda"), allowed=True):
            assert torch.get_float32_matmul_precision() == "high" and cudnn.allow_tf32
            raise RuntimeError("boom")
    assert (torch.get_float32_matmul_precision(), cudnn.allow_tf32) == before
    with float32_scoring(torch.device("cuda")):
        assert torch.get_float32_matmul_precision() == "highest" and not cudnn.allow_tf32
    assert (torch.get_float32_matmul_precision(), cudnn.allow_tf32) == before


def test_a_checkpoint_of_a_gpu_model_loads_and_scores_on_a_cpu_only_machine(data, tmp_path, monkeypatch):
    """A model trained with device="cuda" is saved with CPU tensors and its device; a machine without CUDA loads it on the CPU."""
    vocab, _, _, test = data
    model = fit(lstm(), data)
    model.device = "cuda"  # as a model fitted on a GPU is saved: its parameters name the device
    model.save(tmp_path / "gpu.pt")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = load_model(tmp_path / "gpu.pt")
    assert loaded.device == "cuda" and loaded.device_ == torch.device("cpu")
    assert np.array_equal(loaded.logprobs(test), model.logprobs(test))


# ---------------------------------------------------------------- on a GPU (skipped without one)


@pytest.mark.gpu
@pytest.mark.parametrize("build", [lstm, transformer])
def test_gpu_bfloat16_training_lands_near_float32(data, build):
    _, _, _, test = data
    full, mixed = fit(build(device="cuda"), data), fit(build(device="cuda", precision="bfloat16"), data)
    assert mixed.perplexity(test) == pytest.approx(full.perplexity(test), rel=0.05)


@pytest.mark.gpu
@pytest.mark.parametrize("build", [lstm, transformer])
def test_gpu_scores_with_tf32_stay_within_the_stated_tolerance_of_float32(data, build):
    _, _, _, test = data
    model = fit(build(device="cuda"), data)
    strict = model.perplexity(test)
    with _cuda_tf32(torch.device("cuda"), allowed=True):
        relaxed = float(np.exp(-np.mean(unguarded_logprobs(model, test))))
    assert relaxed == pytest.approx(strict, rel=TF32_RTOL)


def unguarded_logprobs(model, ids) -> np.ndarray:
    """The model's scores computed without :func:`float32_scoring` (whatever TF32 switches are set)."""
    if isinstance(model, RecurrentLM):
        return stream_logprobs(model.net_, ids, model.vocab_.bos_id, model.eval_tokens, model.device_)
    return window_logprobs(model.net_, ids, model.vocab_.bos_id, model.context, model.scoring_stride(),
                           model.eval_tokens // model.context, model.device_)


@pytest.mark.gpu
def test_gpu_checkpoint_loads_on_the_cpu_with_map_location(data, tmp_path):
    """Saved on the GPU, loaded where CUDA is hidden: torch.load(map_location="cpu"), scores equal to float32 noise."""
    vocab, _, _, test = data
    model = fit(lstm(device="cuda"), data)
    model.save(tmp_path / "gpu.pt")
    torch.save({k: v for k, v in model.net_.state_dict().items()}, tmp_path / "raw.pt")  # CUDA tensors
    np.save(tmp_path / "test.npy", test)
    np.save(tmp_path / "gpu_scores.npy", model.logprobs(test))
    script = (
        "import numpy as np, torch; from lmbench.models.checkpoint import load_model\n"
        f"raw = torch.load({str(tmp_path / 'raw.pt')!r}, map_location='cpu', weights_only=True)\n"
        "assert all(t.device.type == 'cpu' for t in raw.values())\n"
        f"m = load_model({str(tmp_path / 'gpu.pt')!r}); assert m.device_.type == 'cpu'\n"
        f"cpu = m.logprobs(np.load({str(tmp_path / 'test.npy')!r}))\n"
        f"gpu = np.load({str(tmp_path / 'gpu_scores.npy')!r})\n"
        "assert np.allclose(cpu, gpu, rtol=0, atol=1e-4), np.abs(cpu - gpu).max()\n"
    )
    env = {**__import__("os").environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
