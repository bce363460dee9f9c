"""Neural language models: shapes, training schemes, the scoring contract, persistence, generation."""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lmbench.errors import LmbenchError
from lmbench.models.base import LanguageModel
from lmbench.models.neural.recurrent import CELLS, Architecture, DeepRecurrentLM, RecurrentLM, stream_logprobs
from lmbench.models.presets import NEURAL_PRESETS, resolve_class
from lmbench.models.checkpoint import load_model
from lmbench.models.registry import resolve
from lmbench.runs.runner import RunConfig, run_benchmark
from lmbench.models.neural.devices import deterministic_kernels
from lmbench.models.seeding import seed_everything
from lmbench.models.neural.training import TrainConfig, select_device
from lmbench.data.vocab import Vocabulary

TEXT = ("the time traveller for so it will be convenient to speak of him\n"
        "was expounding a recondite matter to us his grey eyes shone and twinkled\n"
        "and his usually pale face was flushed and animated\n"
        "the fire burned brightly and the soft radiance of the incandescent lights\n")
TINY = dict(hidden_size=12, num_steps=8, batch_size=4, epochs=1, progress=False)
needs_cuda = pytest.mark.gpu  # skipped without CUDA (conftest.py)


@pytest.fixture
def timing():
    """For timing tests: torch on one thread (two spinning threads stall on a loaded 2-core machine), and
    torch's one-time import on the first optimizer construction (about 1 s) done before any clock starts."""
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    """A character corpus: vocabulary and train/valid/test id arrays (a few hundred tokens each)."""
    tokens = list(TEXT * 3)
    vocab = Vocabulary.build(tokens, "\n")
    ids, _ = vocab.encode(tokens)
    n = ids.size
    return vocab, ids[: n * 6 // 10], ids[n * 6 // 10: n * 8 // 10], ids[n * 8 // 10:]


def tiny(cell="lstm", cls=RecurrentLM, **kw):
    return cls(cell=cell, **{**TINY, **kw})


def fitted(data, cell="lstm", seed=0, **kw):
    vocab, train, valid, _ = data
    seed_everything(seed)
    return tiny(cell, **kw).fit(train, valid, vocab=vocab)


# ---------------------------------------------------------------- networks and shapes


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_network_shapes(cell):
    arch = Architecture(vocab_size=11, hidden_size=6, num_layers=1)
    net = CELLS[cell].build(arch)
    x = torch.randint(0, 12, (5, 3))  # (T, B), <s> = 11 included
    logits, state = net(x)
    assert logits.shape == (5, 3, 11)
    h = state[0] if isinstance(state, tuple) else state
    assert h.shape == (1, 3, 6)
    again, _ = net(x[3:], net(x[:3])[1])  # the state carries across calls
    assert torch.allclose(again, logits[3:], atol=1e-6)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_fitted_model_outputs(data, cell):
    vocab, _, _, test = data
    model = fitted(data, cell)
    lp = model.logprobs(test)
    assert lp.shape == test.shape and lp.dtype == np.float64
    assert np.all(lp < 0) and np.all(np.isfinite(lp))
    nxt = model.next_logprobs(test[:5])
    assert nxt.shape == (len(vocab),)
    assert math.isclose(np.logaddexp.reduce(nxt), 0.0, abs_tol=1e-5)
    assert model.next_logprobs(np.array([], dtype=np.int64)).shape == (len(vocab),)


def test_deep_network_feeds_layers_in_time():
    """A 2-layer network equals layer 2 run on layer 1's outputs at the same time steps."""
    torch.manual_seed(0)
    deep = CELLS["lstm"].build(Architecture(vocab_size=7, hidden_size=5, num_layers=2, embedding_size=4))
    x = torch.randint(0, 8, (6, 2))
    logits, (h, c) = deep(x)
    assert h.shape == (2, 2, 5) and c.shape == (2, 2, 5)
    rnn = deep.rnn
    first = torch.nn.LSTM(4, 5)
    second = torch.nn.LSTM(5, 5)
    with torch.no_grad():
        for layer, sub in ((0, first), (1, second)):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(sub, f"{name}_l0").copy_(getattr(rnn, f"{name}_l{layer}"))
    out1, _ = first(deep.embedding(x))
    out2, _ = second(out1)
    assert torch.allclose(deep.decoder(out2), logits, atol=1e-6)


def test_n_params_counts_trainable_parameters(data):
    vocab = data[0]
    V, H, E = len(vocab), 12, 10
    model = fitted(data, "lstm", embedding_size=E)
    assert model.n_params == (V + 1) * E + 4 * (H * E + H * H + 2 * H) + H * V + V
    tied = fitted(data, "lstm", embedding_size=H, tie_weights=True)
    assert tied.n_params == (V + 1) * H + 4 * (H * H + H * H + 2 * H) + V  # output matrix shared
    scratch = fitted(data, "rnn-scratch")
    assert scratch.n_params == (V + 1) * H + H * H + H + H * V + V


def test_tied_output_layer_uses_the_embedding(data):
    model = fitted(data, "gru", embedding_size=12, tie_weights=True)
    before = model.next_logprobs(data[3][:4])
    with torch.no_grad():
        model.net_.embedding.weight[2].add_(1.0)  # row 2 is also output token 2
    after = model.next_logprobs(data[3][:4])
    assert not np.isclose(before[2], after[2])


# ---------------------------------------------------------------- every registry name trains


RECURRENT_PRESETS = sorted(n for n, (path, _, _) in NEURAL_PRESETS.items() if path.startswith("lmbench.models.neural.recurrent:"))


@pytest.mark.parametrize("name", RECURRENT_PRESETS)
def test_every_registry_name_trains_one_epoch(data, name):
    vocab, train, valid, test = data
    overrides = {"hidden_size": 8, "num_steps": 8, "batch_size": 4, "epochs": 1, "progress": False,
                 "device": "cpu"}
    if NEURAL_PRESETS[name][1].get("embedding_size") is not None:
        overrides["embedding_size"] = 8
    model = resolve(name, overrides).build()
    model.check_params()
    seed_everything(0)
    model.fit(train, valid, vocab=vocab)
    result = model.evaluate(test)
    assert result.n_tokens == test.size and math.isfinite(result.perplexity)
    assert model.n_params > 0
    curve = model.training_curve()
    assert len(curve) == 1
    assert {"epoch", "train_ppl", "valid_ppl", "lr", "tokens_per_s", "seconds"} <= set(curve[0])
    assert curve[0]["train_tokens"] > 0 and math.isfinite(curve[0]["valid_ppl"])


# ---------------------------------------------------------------- scratch RNN == nn.RNN


def test_scratch_rnn_matches_nn_rnn(data):
    vocab, _, _, test = data
    torch_rnn = fitted(data, "rnn")
    scratch = fitted(data, "rnn-scratch")
    w = torch_rnn.net_.state_dict()
    scratch.net_.load_state_dict({
        "W_xh": w["rnn.weight_ih_l0"].t(), "W_hh": w["rnn.weight_hh_l0"].t(),
        "b_h": w["rnn.bias_ih_l0"] + w["rnn.bias_hh_l0"],
        "W_hq": w["decoder.weight"].t(), "b_q": w["decoder.bias"]})
    a, b = torch_rnn.logprobs(test), scratch.logprobs(test)
    assert np.allclose(a, b, rtol=0, atol=1e-5)
    assert math.isclose(a.sum(), b.sum(), rel_tol=1e-6)


# ---------------------------------------------------------------- scoring contract


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn-scratch"])
def test_chunked_evaluation_equals_one_stream(data, cell):
    """Any chunking of the one stream, and a token-by-token loop, give the same total NLL."""
    vocab, _, _, test = data
    model = fitted(data, cell, num_layers=1)
    totals = {}
    for chunk in (1, 7, 35, test.size):
        totals[chunk] = -stream_logprobs(model.net_, test, vocab.bos_id, chunk, model.device_).sum()
    stepwise = -sum(model.next_logprobs(test[:i])[test[i]] for i in range(test.size))
    for total in [*totals.values(), stepwise]:
        assert math.isclose(total, totals[test.size], rel_tol=1e-6)
    model.eval_chunk = 7
    assert math.isclose(model.evaluate(test).nll_nats, totals[test.size], rel_tol=1e-6)


def test_first_token_is_scored_from_the_start_state(data):
    vocab, _, _, test = data
    model = fitted(data, "lstm")
    lp = model.logprobs(test)
    assert lp[0] == pytest.approx(model.next_logprobs(np.array([], dtype=np.int64))[test[0]], abs=1e-6)
    assert lp[-1] == pytest.approx(model.next_logprobs(test[:-1])[test[-1]], abs=1e-5)


def test_runner_scores_identical_tokens_and_writes_curves(tmp_path):
    """n-gram and neural rows have the same n_tokens; curves, plot and checkpoints are written."""
    corpus = tmp_path / "tiny.txt"
    corpus.write_text(TEXT * 6, encoding="utf-8")
    small = {"hidden_size": 8, "num_steps": 8, "batch_size": 4, "progress": False}
    config = RunConfig(models=["bigram-add1", "lstm", "deep-gru"], corpus=str(corpus), tokenizer="char",
                       out=str(tmp_path / "run"), params={"lstm": small, "deep-gru": small},
                       shared_params={"epochs": 2, "device": "cpu"})
    result = run_benchmark(config, echo=lambda *a: None)
    assert not result.failures
    table = result.table
    for split in ("valid", "test"):
        counts = set(table[table["split"] == split]["n_tokens"])
        assert len(counts) == 1
    out = tmp_path / "run"
    curve = pd.read_csv(out / "curves" / "lstm.csv")
    assert list(curve["epoch"]) == [1, 2]
    assert {"train_ppl", "valid_ppl", "lr", "tokens_per_s", "seconds"} <= set(curve.columns)
    assert (out / "curves.png").stat().st_size > 0
    assert not (out / "curves" / "bigram-add1.csv").exists()
    loaded = load_model(out / "models" / "deep-gru.pt")
    row = table[(table["model"] == "deep-gru") & (table["split"] == "test")].iloc[0]
    assert loaded.n_params == row["n_params"]


# ---------------------------------------------------------------- determinism, persistence, generation


@pytest.mark.parametrize("options", [{}, {"sampling": "random", "dropout": 0.3, "embedding_size": 6,
                                          "num_layers": 2, "epochs": 2}])
def test_same_seed_same_scores(data, options):
    test = data[3]
    a = fitted(data, "lstm", seed=3, **options).logprobs(test)
    b = fitted(data, "lstm", seed=3, **options).logprobs(test)
    c = fitted(data, "lstm", seed=4, **options).logprobs(test)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("cell", ["gru", "rnn-scratch"])
def test_save_load_round_trip(data, tmp_path, cell):
    test = data[3]
    model = fitted(data, cell, epochs=2)
    model.save(tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert type(loaded) is RecurrentLM and loaded.get_params() == model.get_params()
    assert np.array_equal(loaded.logprobs(test), model.logprobs(test))
    assert loaded.training_curve() == model.training_curve()
    assert loaded.fitted_summary() == model.fitted_summary()
    assert np.array_equal(loaded.generate(test[:5], 20, seed=1), model.generate(test[:5], 20, seed=1))


@pytest.mark.parametrize("kwargs", [{"greedy": True}, {"seed": 7}, {"seed": 7, "temperature": 0.5, "top_k": 3}])
def test_generate_matches_the_history_rereading_definition(data, kwargs):
    """The state-carrying generate gives the tokens of the base class's re-read-everything loop."""
    model = fitted(data, "lstm", epochs=2)
    prefix = data[3][:6]
    fast = model.generate(prefix, 15, **kwargs)
    slow = LanguageModel.generate(model, prefix, 15, **kwargs)
    assert fast.shape == (15,) and np.array_equal(fast, slow)
    assert np.array_equal(model.generate([], 4, greedy=True), LanguageModel.generate(model, [], 4, greedy=True))


# ---------------------------------------------------------------- training through the model


def test_model_training_defaults_are_train_config_defaults():
    """One source of defaults: every training argument defaults to TrainConfig's value, and get_params lists it."""
    signature = inspect.signature(RecurrentLM.__init__).parameters
    for field in dataclasses.fields(TrainConfig):
        assert signature[field.name].default == field.default, field.name
    assert RecurrentLM().train_config() == TrainConfig()
    params = DeepRecurrentLM(lr=0.1, epochs=2).get_params()
    assert {f.name for f in dataclasses.fields(TrainConfig)} <= set(params)
    assert (params["lr"], params["epochs"], params["optimizer"]) == (0.1, 2, TrainConfig.optimizer)


def test_time_budget_bounds_the_whole_fit_validation_included(timing):
    """The scratch RNN scores one token per Python step, so one validation pass takes most of the budget.

    The budget used to bound training only (a 25 s budget gave a 105 s fit): here epoch 1 and its
    validation (about 0.9 s of the 1 s) would have been followed by epoch 2 and a second validation.
    Now the fit ends within the budget; slack 0.5 s.
    """
    rng = np.random.default_rng(0)
    vocab = Vocabulary.build(list("abcdefghijklmnopqrst"), "\n")
    train, valid = rng.integers(0, len(vocab), 2_000), rng.integers(0, len(vocab), 60_000)
    seed_everything(0)
    model = RecurrentLM(cell="rnn-scratch", hidden_size=16, epochs=1000, early_stopping=None, time_budget=1.0,
                        progress=False, device="cpu")
    start = time.perf_counter()
    model.fit(train, valid, vocab=vocab)
    assert time.perf_counter() - start <= 1.0 + 0.5
    assert model.fitted_summary()["stopped_by"] == "time_budget"


def test_a_budget_shorter_than_one_batch_trains_one_batch_and_skips_validation(data):
    model = fitted(data, "lstm", epochs=50, time_budget=1e-6)
    curve = model.training_curve()
    assert len(curve) == 1 and not curve[0]["complete"] and curve[0]["train_tokens"] == 8 * 4
    assert math.isnan(curve[0]["valid_ppl"])  # no time was left to validate
    summary = model.fitted_summary()
    assert summary["stopped_by"] == "time_budget" and summary["best_epoch"] is None
    assert model.valid_use() == ""  # valid did not choose anything: its score is held out


def test_min_train_tokens_is_enough_and_needed(data):
    vocab, train, valid, _ = data
    for sampling in ("sequential", "random"):
        model = tiny("lstm", sampling=sampling, batch_size=5, num_steps=7)
        need = model.min_train_tokens()
        assert need == 5 * 7 + 6
        for _ in range(3):  # different random offsets
            model.fit(train[:need], valid, vocab=vocab)
            assert model.training_curve()[0]["train_tokens"] >= 35
        with pytest.raises(LmbenchError, match="training split has"):
            model.fit(train[: need - 1], valid, vocab=vocab)


# ---------------------------------------------------------------- presets (torch-free)


def test_presets_module_imports_neither_torch_nor_the_networks():
    """n-gram-only runs must not pay for torch: the presets table is plain data."""
    path = Path(__file__).resolve().parents[1] / "lmbench" / "models" / "presets.py"
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('lmbench.models.presets', {str(path)!r})\n"
            "module = importlib.util.module_from_spec(spec)\n"
            "spec.loader.exec_module(module)\n"
            "print(len(module.NEURAL_PRESETS), sorted(m for m in sys.modules if m.startswith(('torch', 'lmbench'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"{len(NEURAL_PRESETS)} ['lmbench', 'lmbench.errors']"


def test_every_preset_names_a_model_class_and_valid_parameters():
    for name, (path, params, description) in NEURAL_PRESETS.items():
        assert re.fullmatch(r"lmbench\.models\.neural\.(recurrent:(Deep)?RecurrentLM|transformer:TransformerLM)", path), name
        cls = resolve_class(path)
        assert resolve(name).cls is cls
        cls(**params).check_params()
        assert description and "\n" not in description


def test_a_bad_class_path_is_a_one_line_error():
    for path, message in [("lmbench.models.neural.recurrent", "must look like"), ("lmbench.models.neural.recurrent:Nope", "cannot load"),
                          ("lmbench.nope:X", "cannot load")]:
        with pytest.raises(LmbenchError, match=message):
            resolve_class(path)


# ---------------------------------------------------------------- initialization


def uniform_stats(t: torch.Tensor) -> tuple[float, float, float]:
    t = t.detach().double()
    return float(t.abs().max()), float(t.std()), float(t.mean())


def assert_uniform(t: torch.Tensor, bound: float, rel: float = 0.02) -> None:
    """``t`` looks like U(-bound, bound): within the bound and reaching it, std bound / sqrt(3), mean 0."""
    top, std, mean = uniform_stats(t)
    assert bound * 0.98 < top <= bound
    assert std == pytest.approx(bound / math.sqrt(3), rel=rel)
    assert abs(mean) < 4 * bound / math.sqrt(3 * t.numel())


@pytest.mark.parametrize("name", ["lstm-word", "lstm-word-medium"])
def test_word_presets_initialize_like_the_pytorch_example(name):
    """RNNModel.init_weights: encoder, decoder weights U(-0.1, 0.1), decoder bias 0, LSTM at torch's U(-k, k)."""
    params = NEURAL_PRESETS[name][1]
    torch.manual_seed(0)
    net = resolve(name).build()._build_network(vocab_size=2_000)
    assert_uniform(net.embedding.weight, 0.1)
    if params.get("tie_weights"):
        assert net.decoder is None and torch.count_nonzero(net.decoder_bias) == 0
    else:
        assert_uniform(net.decoder.weight, 0.1)
        assert torch.count_nonzero(net.decoder.bias) == 0
    k = 1 / math.sqrt(params["hidden_size"])  # torch's LSTM default, not 0.1
    for pname, p in net.rnn.named_parameters():
        assert_uniform(p, k, rel=0.02 if p.dim() == 2 else 0.1)


def test_zaremba_preset_initializes_every_parameter_uniformly():
    torch.manual_seed(0)
    net = resolve("lstm-zaremba-small").build()._build_network(vocab_size=2_000)
    for pname, p in net.named_parameters():
        assert_uniform(p, 0.1, rel=0.02 if p.dim() == 2 else 0.1)


# ---------------------------------------------------------------- progress and environment


class Terminal(io.StringIO):
    """A stand-in for stderr on a terminal."""

    def isatty(self) -> bool:
        return True


def test_scoring_a_split_shows_a_bar_on_a_terminal_only(data, monkeypatch):
    model = fitted(data, "lstm")
    test = data[3]
    expected = model.logprobs(test)
    model.progress, model.label = True, "my-lstm"
    for stream, progress, shown in [(Terminal(), True, True), (io.StringIO(), True, False),
                                    (Terminal(), False, False)]:
        monkeypatch.setattr(sys, "stderr", stream)
        model.progress = progress
        assert np.array_equal(model.logprobs(test), expected)
        assert ("my-lstm scoring" in stream.getvalue()) is shown
        assert bool(stream.getvalue()) is shown


@pytest.mark.parametrize("label, shown", [("", "gru"), ("run-a/gru", "run-a/gru")])
def test_epoch_lines_name_the_model_label_or_else_the_cell(data, capsys, label, shown):
    vocab, train, valid, _ = data
    model = tiny("gru", epochs=2, progress=True)
    model.label = label
    model.fit(train, valid, vocab=vocab)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[:2] for line in lines] == [[shown, "epoch 1/2"], [shown, "epoch 2/2"]]


def test_environment_names_device_threads_cpu_and_torch(data):
    model = fitted(data, "lstm", device="cpu")
    env = model.environment()
    assert env["device"] == "cpu" and env["torch"] == torch.__version__
    assert env["torch_threads"] == torch.get_num_threads()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists() and "model name" in cpuinfo.read_text():
        assert env["cpu"] == re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M).group(1).strip()
    assert env["cpu"] and "cuda_device" not in env
    json.dumps(env)  # plain values, for config.json


# ---------------------------------------------------------------- seeds and deterministic kernels


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, "3", None])
def test_seed_everything_rejects_seeds_numpy_cannot_take(seed):
    with pytest.raises(LmbenchError, match=r"^seed must be a whole number in 0\.\.4294967295, got") as exc:
        seed_everything(seed)
    assert "\n" not in str(exc.value)


def test_seed_everything_accepts_the_whole_range_and_repeats():
    for seed in (0, 2**32 - 1, np.int64(7)):
        seed_everything(seed)
        first = (np.random.rand(), torch.rand(()).item())
        seed_everything(seed)
        assert (np.random.rand(), torch.rand(()).item()) == first


def test_seeding_imports_no_torch_but_seeds_it_once_imported():
    """An n-gram-only run seeds without loading torch; a run with a neural model has torch seeded."""
    code = ("import sys\nfrom lmbench.models.seeding import seed_everything\nseed_everything(5)\n"
            "print('torch' in sys.modules)\nimport torch\nseed_everything(5)\nprint(torch.rand(()).item())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    torch.manual_seed(5)
    assert out == ["False", str(torch.rand(()).item())]


def determinism_flags() -> tuple:
    return (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
            os.environ.get("CUBLAS_WORKSPACE_CONFIG"))


def test_deterministic_kernels_are_scoped_to_the_block(monkeypatch):
    """The CUDA settings hold inside the block only, are undone after an exception, and CPU changes nothing."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = determinism_flags()
    with pytest.raises(KeyError):
        with deterministic_kernels(torch.device("cuda")):
            assert determinism_flags() == (True, True, True, False, ":4096:8")
            raise KeyError("inside")
    assert determinism_flags() == before
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # the user's own setting is kept
    with deterministic_kernels(torch.device("cuda")):
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    with deterministic_kernels(torch.device("cpu")):
        assert determinism_flags() == (*before[:4], ":16:8")


@needs_cuda
def test_cuda_training_is_repeatable_with_the_same_seed(data):
    """Deterministic kernels make two same-seed CUDA fits agree; tolerance 1e-6 nats per token, in case an op
    with only a nondeterministic CUDA kernel ran (it warns under warn_only instead of failing)."""
    test = data[3]
    options = {"device": "cuda", "epochs": 2, "embedding_size": 6, "num_layers": 2, "dropout": 0.3}
    a = fitted(data, "lstm", seed=3, **options).logprobs(test)
    b = fitted(data, "lstm", seed=3, **options).logprobs(test)
    c = fitted(data, "lstm", seed=4, **options).logprobs(test)
    assert np.abs(a - b).max() <= 1e-6
    assert np.abs(a - c).max() > 1e-3


@needs_cuda
def test_cuda_fit_leaves_global_determinism_settings_as_they_were(data):
    before = determinism_flags()
    model = fitted(data, "gru", device="cuda")
    model.logprobs(data[3])
    assert determinism_flags() == before
    env = model.environment()
    assert env["device"].startswith("cuda") and env["cuda_device"] == torch.cuda.get_device_name()
    assert env["cuda_deterministic"] is True


# ---------------------------------------------------------------- checkpoints that do not fit


def saved_payload(data, tmp_path) -> dict:
    fitted(data, "lstm").save(tmp_path / "m.pt")
    return torch.load(tmp_path / "m.pt", weights_only=True)


def test_checkpoint_with_other_shapes_is_a_one_line_error(data, tmp_path):
    payload = saved_payload(data, tmp_path)
    payload["params"]["hidden_size"] = 10  # the file's tensors are 12 wide
    torch.save(payload, tmp_path / "bad.pt")
    n_in = len(data[0]) + 1
    with pytest.raises(LmbenchError, match=re.escape(f"rnn.weight_ih_l0 is (48, {n_in}) in the checkpoint, "
                                                     f"(40, {n_in}) in the network")) as exc:
        load_model(tmp_path / "bad.pt")
    assert "\n" not in str(exc.value) and "and 2 more" in str(exc.value)  # 5 tensors differ, 3 named


def test_checkpoint_with_missing_or_unexpected_tensors_is_a_one_line_error(data, tmp_path):
    payload = saved_payload(data, tmp_path)
    payload["params"]["num_layers"] = 2
    torch.save(payload, tmp_path / "deeper.pt")
    with pytest.raises(LmbenchError, match=r"do not match .*: missing rnn\.weight_ih_l1, rnn\.weight_hh_l1, "
                                           r"rnn\.bias_ih_l1 and 1 more"):
        load_model(tmp_path / "deeper.pt")
    network = dict(payload["state"]["network"])
    model = load_model(tmp_path / "m.pt")
    with pytest.raises(LmbenchError, match=r"unexpected extra\.weight; decoder\.bias is a list, not a tensor"):
        model.load_state_dict({**payload["state"], "network": {**network, "extra.weight": torch.zeros(1),
                                                               "decoder.bias": [0.0]}})
    with pytest.raises(LmbenchError, match="holds no network weights"):
        model.load_state_dict({"curve": [], "summary": {}})


# ---------------------------------------------------------------- parameters and devices


@pytest.mark.parametrize("params, message", [
    ({"hidden_size": 0}, "hidden_size must be a whole number >= 1"),
    ({"hidden_size": 2.5}, "hidden_size must be a whole number"),
    ({"num_layers": 0}, "num_layers"),
    ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\)"),
    ({"optimizer": "adm"}, "unknown optimizer 'adm'; did you mean 'adam'"),
    ({"cell": "lstn"}, "did you mean 'lstm'"),
    ({"sampling": "sequental"}, "did you mean 'sequential'"),
    ({"lr_schedule": "exponential"}, "unknown lr_schedule"),
    ({"lr": 0}, r"lr must be a number in \(0, inf\)"),
    ({"batch_size": 0}, "batch_size"),
    ({"num_steps": -1}, "num_steps"),
    ({"lr_decay": 1.5}, "lr_decay"),
    ({"clip": -1}, "clip"),
    ({"time_budget": 0}, "time_budget"),
    ({"tie_weights": True}, "tie_weights needs embedding_size equal to hidden_size"),
    ({"cell": "rnn-scratch", "num_layers": 2}, "cell 'rnn-scratch' supports only num_layers=1"),
    ({"cell": "rnn-scratch", "embedding_size": 8}, "supports only embedding_size=None"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
    ({"early_stopping": 0}, "early_stopping"),
    ({"init": "xavier"}, "unknown init 'xavier'"),
    ({"init": "embedding-output", "embedding_size": 8}, "needs init_scale .* and an embedding"),
    ({"init": "embedding-output", "init_scale": 0.1}, "needs init_scale .* and an embedding"),
])
def test_invalid_parameters(params, message):
    with pytest.raises(LmbenchError, match=message):
        RecurrentLM(**params).check_params()


def test_deep_models_need_two_layers():
    with pytest.raises(LmbenchError, match="num_layers >= 2"):
        DeepRecurrentLM(cell="gru", num_layers=1).check_params()
    DeepRecurrentLM(cell="gru", num_layers=2).check_params()
    with pytest.raises(LmbenchError, match="num_layers >= 2"):
        resolve("deep-lstm", {"num_layers": 1}).build().check_params()


def test_registry_defaults_are_valid():
    for name in NEURAL_PRESETS:
        resolve(name).build().check_params()
    zaremba = resolve("lstm-zaremba-small").params
    assert (zaremba["num_layers"], zaremba["hidden_size"], zaremba["batch_size"], zaremba["num_steps"]) == (2, 200, 20, 20)
    # Zaremba: lr 1 and clip 5 on the loss summed over num_steps; here the per-token mean loss
    assert (zaremba["lr"], zaremba["clip"]) == (1.0 * zaremba["num_steps"], 5.0 / zaremba["num_steps"])


def test_device_selection(monkeypatch):
    assert select_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    with pytest.raises(LmbenchError, match="not available"):
        select_device("cuda")
    with pytest.raises(LmbenchError, match="--device cuda was asked for but is not available"):
        RecurrentLM(device="cuda").check_params()  # before any data is read
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert select_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto") == torch.device("cuda")
