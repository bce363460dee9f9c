"""Recurrent language models: networks, every preset, the scoring contract, generation, persistence, parameters."""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lmbench.errors import LmbenchError
from lmbench.models.base import LanguageModel
from lmbench.models.checkpoint import load_model
from lmbench.models.neural.devices import deterministic_kernels, select_device
from lmbench.models.neural.recurrent import CELLS, Architecture, DeepRecurrentLM, RecurrentLM, stream_logprobs
from lmbench.models.presets import NEURAL_PRESETS, resolve_class
from lmbench.models.registry import resolve
from lmbench.models.seeding import seed_everything

TINY = dict(hidden_size=8, num_steps=8, batch_size=4, epochs=1, progress=False, device="cpu")
needs_cuda = pytest.mark.gpu  # skipped without CUDA (conftest.py)


def tiny(cell="lstm", cls=RecurrentLM, **kw):
    return cls(cell=cell, **{**TINY, **kw})


def fitted(char_splits, cell="lstm", seed=0, **kw) -> RecurrentLM:
    vocab, train, valid, _ = char_splits
    seed_everything(seed)
    return tiny(cell, **kw).fit(train, valid, vocab=vocab)


@pytest.fixture(scope="module")
def lstm(char_splits) -> RecurrentLM:
    """A fitted tiny LSTM with an embedding, two epochs (shared: tests must not change it)."""
    return fitted(char_splits, "lstm", embedding_size=6, epochs=2)


# ---------------------------------------------------------------- networks and shapes


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_network_shapes_and_state_carried_across_calls(cell):
    net = CELLS[cell].build(Architecture(vocab_size=11, hidden_size=6, num_layers=1))
    x = torch.randint(0, 12, (5, 3))  # (T, B), <s> = 11 included
    logits, state = net(x)
    assert logits.shape == (5, 3, 11)
    h = state[0] if isinstance(state, tuple) else state
    assert h.shape == (1, 3, 6)
    again, _ = net(x[3:], net(x[:3])[1])
    assert torch.allclose(again, logits[3:], atol=1e-6)


def test_deep_network_feeds_layers_in_time():
    """A 2-layer network equals layer 2 run on layer 1's outputs at the same time steps."""
    torch.manual_seed(0)
    deep = CELLS["lstm"].build(Architecture(vocab_size=7, hidden_size=5, num_layers=2, embedding_size=4))
    x = torch.randint(0, 8, (6, 2))
    logits, (h, c) = deep(x)
    assert h.shape == (2, 2, 5) and c.shape == (2, 2, 5)
    first, second = torch.nn.LSTM(4, 5), torch.nn.LSTM(5, 5)
    with torch.no_grad():
        for layer, sub in ((0, first), (1, second)):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(sub, f"{name}_l0").copy_(getattr(deep.rnn, f"{name}_l{layer}"))
    out1, _ = first(deep.embedding(x))
    out2, _ = second(out1)
    assert torch.allclose(deep.decoder(out2), logits, atol=1e-6)


def test_scratch_rnn_computes_what_nn_rnn_computes():
    """d2l's explicit W_xh, W_hh, b_h, W_hq, b_q with nn.RNN's weights give nn.RNN's logits and state."""
    torch.manual_seed(0)
    arch = Architecture(vocab_size=9, hidden_size=5)
    torch_rnn, scratch = CELLS["rnn"].build(arch), CELLS["rnn-scratch"].build(arch)
    w = torch_rnn.state_dict()
    scratch.load_state_dict({"W_xh": w["rnn.weight_ih_l0"].t(), "W_hh": w["rnn.weight_hh_l0"].t(),
                             "b_h": w["rnn.bias_ih_l0"] + w["rnn.bias_hh_l0"],
                             "W_hq": w["decoder.weight"].t(), "b_q": w["decoder.bias"]})
    x = torch.randint(0, 10, (7, 3))
    (a, ha), (b, hb) = torch_rnn(x), scratch(x)
    assert torch.allclose(a, b, atol=1e-6) and torch.allclose(ha, hb, atol=1e-6)


def test_n_params_counts_trainable_parameters_and_tied_weights_once(char_splits):
    V, H, E = len(char_splits[0]), 8, 6
    model = fitted(char_splits, "lstm", embedding_size=E)
    assert model.n_params == (V + 1) * E + 4 * (H * E + H * H + 2 * H) + H * V + V
    tied = fitted(char_splits, "gru", embedding_size=H, tie_weights=True)
    assert tied.n_params == (V + 1) * H + 3 * (H * H + H * H + 2 * H) + V
    before = tied.next_logprobs(char_splits[3][:4])
    with torch.no_grad():
        tied.net_.embedding.weight[2].add_(1.0)  # row 2 is also output token 2
    assert not np.isclose(before[2], tied.next_logprobs(char_splits[3][:4])[2])
    scratch = fitted(char_splits, "rnn-scratch")
    assert scratch.n_params == (V + 1) * H + H * H + H + H * V + V


# ---------------------------------------------------------------- every preset trains; the scoring contract


RECURRENT_PRESETS = sorted(n for n, (path, _, _) in NEURAL_PRESETS.items() if ":" in path and "recurrent" in path)


@pytest.mark.parametrize("name", RECURRENT_PRESETS)
def test_every_recurrent_preset_trains_and_scores_every_token(char_splits, name):
    vocab, train, valid, test = char_splits
    overrides = {"hidden_size": 6, "num_steps": 8, "batch_size": 4, "epochs": 1, "progress": False,
                 "device": "cpu"}
    if NEURAL_PRESETS[name][1].get("embedding_size") is not None:
        overrides["embedding_size"] = 6
    model = resolve(name, overrides).build()
    seed_everything(0)
    model.fit(train, valid, vocab=vocab)
    lp = model.logprobs(test)
    assert lp.shape == test.shape and lp.dtype == np.float64 and np.all(lp < 0) and np.all(np.isfinite(lp))
    nxt = model.next_logprobs(test[:5])
    assert nxt.shape == (len(vocab),) and math.isclose(np.logaddexp.reduce(nxt), 0.0, abs_tol=1e-5)
    assert model.next_logprobs(np.array([], dtype=np.int64)).shape == (len(vocab),)
    curve = model.training_curve()
    assert len(curve) == 1 and curve[0]["train_tokens"] > 0 and math.isfinite(curve[0]["valid_ppl"])
    assert {"epoch", "train_ppl", "valid_ppl", "lr", "tokens_per_s", "seconds", "complete"} <= set(curve[0])


@pytest.mark.parametrize("cell", ["lstm", "rnn-scratch"])
def test_chunked_scoring_equals_one_stream_and_the_token_by_token_definition(char_splits, cell):
    """Any chunking of the one stream, and next_logprobs of every prefix, give the same scores; the first
    token is scored from the start state."""
    vocab, _, _, test = char_splits
    model = fitted(char_splits, cell)
    whole = stream_logprobs(model.net_, test, vocab.bos_id, test.size, model.device_)
    for chunk in (1, 7, 35):
        assert np.allclose(stream_logprobs(model.net_, test, vocab.bos_id, chunk, model.device_), whole,
                           rtol=0, atol=1e-6)
    stepwise = np.array([model.next_logprobs(test[:i])[test[i]] for i in range(test.size)])
    assert np.allclose(stepwise, whole, rtol=0, atol=1e-5)
    model.eval_tokens = 7
    assert np.allclose(model.logprobs(test), whole, rtol=0, atol=1e-6)
    assert model.logprobs(test[:0]).shape == (0,)


# ---------------------------------------------------------------- determinism, persistence, generation


@pytest.mark.parametrize("options", [{}, {"sampling": "random", "dropout": 0.3, "embedding_size": 6,
                                          "num_layers": 2}])
def test_same_seed_same_scores(char_splits, options):
    test = char_splits[3]
    a = fitted(char_splits, "lstm", seed=3, **options).logprobs(test)
    b = fitted(char_splits, "lstm", seed=3, **options).logprobs(test)
    c = fitted(char_splits, "lstm", seed=4, **options).logprobs(test)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_save_load_round_trip(char_splits, lstm, tmp_path):
    test = char_splits[3]
    lstm.save(tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert type(loaded) is RecurrentLM and loaded.get_params() == lstm.get_params()
    assert np.array_equal(loaded.logprobs(test), lstm.logprobs(test))
    assert loaded.training_curve() == lstm.training_curve() and loaded.fitted_summary() == lstm.fitted_summary()
    assert np.array_equal(loaded.generate(test[:5], 20, seed=1), lstm.generate(test[:5], 20, seed=1))


@pytest.mark.parametrize("kwargs", [{"greedy": True}, {"seed": 7}, {"seed": 7, "temperature": 0.5, "top_k": 3}])
def test_generate_matches_the_history_rereading_definition(char_splits, lstm, kwargs):
    """The state-carrying generate gives the tokens of the base class's re-read-everything loop."""
    prefix = char_splits[3][:6]
    fast = lstm.generate(prefix, 15, **kwargs)
    assert fast.shape == (15,) and np.array_equal(fast, LanguageModel.generate(lstm, prefix, 15, **kwargs))
    assert np.array_equal(lstm.generate([], 4, greedy=True), LanguageModel.generate(lstm, [], 4, greedy=True))
    with pytest.raises(LmbenchError, match="takes token ids"):
        lstm.generate("the time", 5)


def test_min_train_tokens_is_enough_and_needed(char_splits):
    vocab, train, valid, _ = char_splits
    for sampling in ("sequential", "random"):
        model = tiny("lstm", sampling=sampling, batch_size=5, num_steps=7)
        need = model.min_train_tokens()
        assert need == 5 * 7 + 6
        for _ in range(3):  # different random offsets
            model.fit(train[:need], None, vocab=vocab)
            assert model.training_curve()[0]["train_tokens"] >= 35
        with pytest.raises(LmbenchError, match=r"training split has 40 tokens; batch_size=5 and num_steps=7 need 41"):
            model.fit(train[: need - 1], valid, vocab=vocab)


def test_one_hot_inputs_over_a_large_vocabulary_warn(char_splits):
    from lmbench.data.vocab import Vocabulary

    big = Vocabulary(["<unk>", "</s>"] + [f"w{i}" for i in range(1100)])
    ids = np.random.default_rng(0).integers(0, len(big), 200)
    with pytest.warns(UserWarning, match=r"one-hot inputs over 1,103 ids are slow; set embedding_size"):
        tiny("rnn", hidden_size=2).fit(ids, None, vocab=big)


# ---------------------------------------------------------------- presets (torch-free)


def test_presets_module_imports_neither_torch_nor_the_networks():
    """n-gram-only runs must not pay for torch: the presets table is plain data."""
    path = Path(__file__).resolve().parents[1] / "lmbench" / "models" / "presets.py"
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('lmbench.models.presets', {str(path)!r})\n"
            "module = importlib.util.module_from_spec(spec)\n"
            "spec.loader.exec_module(module)\n"
            "print(len(module.NEURAL_PRESETS), sorted(m for m in sys.modules\n"
            "                                          if m.startswith(('torch', 'lmbench.models.neural'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"{len(NEURAL_PRESETS)} []"


def test_every_preset_names_a_model_class_and_valid_parameters():
    for name, (path, params, description) in NEURAL_PRESETS.items():
        assert re.fullmatch(r"lmbench\.models\.neural\.(recurrent:(Deep)?RecurrentLM|transformer:TransformerLM)", path), name
        cls = resolve_class(path)
        assert resolve(name).cls is cls
        cls(**params).check_params()
        assert description and "\n" not in description
    zaremba = resolve("lstm-zaremba-small").params
    assert (zaremba["num_layers"], zaremba["hidden_size"], zaremba["batch_size"], zaremba["num_steps"]) == (2, 200, 20, 20)
    # Zaremba: lr 1 and clip 5 on the loss summed over num_steps; here the per-token mean loss
    assert (zaremba["lr"], zaremba["clip"]) == (1.0 * zaremba["num_steps"], 5.0 / zaremba["num_steps"])


def test_a_bad_class_path_is_a_one_line_error():
    for path, message in [("lmbench.models.neural.recurrent", "must look like"),
                          ("lmbench.models.neural.recurrent:Nope", "cannot load"), ("lmbench.nope:X", "cannot load")]:
        with pytest.raises(LmbenchError, match=message):
            resolve_class(path)


# ---------------------------------------------------------------- initialization


def assert_uniform(t: torch.Tensor, bound: float, rel: float = 0.02) -> None:
    """``t`` looks like U(-bound, bound): within the bound and reaching it, std bound / sqrt(3), mean 0."""
    t = t.detach().double()
    assert bound * 0.98 < float(t.abs().max()) <= bound
    assert float(t.std()) == pytest.approx(bound / math.sqrt(3), rel=rel)
    assert abs(float(t.mean())) < 4 * bound / math.sqrt(3 * t.numel())


@pytest.mark.parametrize("name", ["lstm-word", "lstm-word-medium"])
def test_word_presets_initialize_like_the_pytorch_example(name):
    """RNNModel.init_weights: encoder, decoder weights U(-0.1, 0.1), decoder bias 0, LSTM at torch's U(-k, k)."""
    params = NEURAL_PRESETS[name][1]
    torch.manual_seed(0)
    net = resolve(name).build().build_network(vocab_size=2_000)
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
    net = resolve("lstm-zaremba-small").build().build_network(vocab_size=2_000)
    for pname, p in net.named_parameters():
        assert_uniform(p, 0.1, rel=0.02 if p.dim() == 2 else 0.1)


# ---------------------------------------------------------------- progress and environment


class Terminal(io.StringIO):
    """A stand-in for stderr on a terminal."""

    def isatty(self) -> bool:
        return True


def test_scoring_shows_a_bar_on_a_terminal_only(char_splits, lstm, monkeypatch):
    test = char_splits[3]
    expected = lstm.logprobs(test)
    lstm.label = "my-lstm"
    try:
        for stream, progress, shown in [(Terminal(), True, True), (io.StringIO(), True, False),
                                        (Terminal(), False, False)]:
            monkeypatch.setattr(sys, "stderr", stream)
            lstm.progress = progress
            assert np.array_equal(lstm.logprobs(test), expected)
            assert ("my-lstm scoring" in stream.getvalue()) is shown and bool(stream.getvalue()) is shown
    finally:
        lstm.label, lstm.progress = "", False


@pytest.mark.parametrize("label, shown", [("", "gru"), ("run-a/gru", "run-a/gru")])
def test_epoch_lines_name_the_model_label_or_else_the_cell(char_splits, capsys, label, shown):
    vocab, train, valid, _ = char_splits
    model = tiny("gru", epochs=2, progress=True)
    model.label = label
    model.fit(train[:200], valid, vocab=vocab)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[:2] for line in lines] == [[shown, "epoch 1/2"], [shown, "epoch 2/2"]]


def test_environment_names_device_threads_cpu_and_torch(lstm):
    env = lstm.environment()
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
    code = "import sys\nfrom lmbench.models.seeding import seed_everything\nseed_everything(5)\nprint('torch' in sys.modules)\n"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == \
        ["False"]
    seed_everything(5)
    drawn = torch.rand(()).item()
    torch.manual_seed(5)
    assert drawn == torch.rand(()).item()


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
def test_cuda_training_is_repeatable_with_the_same_seed(char_splits):
    """Deterministic kernels make two same-seed CUDA fits agree; tolerance 1e-6 nats per token, in case an op
    with only a nondeterministic CUDA kernel ran (it warns under warn_only instead of failing)."""
    test = char_splits[3]
    options = {"device": "cuda", "epochs": 2, "embedding_size": 6, "num_layers": 2, "dropout": 0.3}
    a = fitted(char_splits, "lstm", seed=3, **options).logprobs(test)
    b = fitted(char_splits, "lstm", seed=3, **options).logprobs(test)
    c = fitted(char_splits, "lstm", seed=4, **options).logprobs(test)
    assert np.abs(a - b).max() <= 1e-6
    assert np.abs(a - c).max() > 1e-3


@needs_cuda
def test_cuda_fit_leaves_global_determinism_settings_as_they_were(char_splits):
    before = determinism_flags()
    model = fitted(char_splits, "gru", device="cuda")
    model.logprobs(char_splits[3])
    model.generate(char_splits[3][:3], 4)
    assert determinism_flags() == before
    env = model.environment()
    assert env["device"].startswith("cuda") and env["cuda_device"] == torch.cuda.get_device_name()
    assert env["cuda_deterministic"] is True


# ---------------------------------------------------------------- checkpoints that do not fit


def test_checkpoints_of_another_shape_or_other_tensors_are_one_line_errors(char_splits, tmp_path):
    fitted(char_splits, "lstm").save(tmp_path / "m.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    wider = {**payload, "params": {**payload["params"], "hidden_size": 10}}  # the file's tensors are 8 wide
    torch.save(wider, tmp_path / "bad.pt")
    n_in = len(char_splits[0]) + 1
    with pytest.raises(LmbenchError, match=re.escape(f"rnn.weight_ih_l0 is (32, {n_in}) in the checkpoint, "
                                                     f"(40, {n_in}) in the network")) as exc:
        load_model(tmp_path / "bad.pt")
    assert "\n" not in str(exc.value) and "and 2 more" in str(exc.value)  # 5 tensors differ, 3 named
    deeper = {**payload, "params": {**payload["params"], "num_layers": 2}}
    torch.save(deeper, tmp_path / "deeper.pt")
    with pytest.raises(LmbenchError, match=r"do not match the cell 'lstm', 2x8, vocabulary \d+ network .*: missing "
                                           r"rnn\.weight_ih_l1, rnn\.weight_hh_l1, rnn\.bias_ih_l1 and 1 more"):
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
    ({"eval_tokens": 0}, "eval_tokens must be a whole number >= 1"),
    ({"progress": "yes"}, "progress must be true or false"),
    ({"tie_weights": True}, "tie_weights needs embedding_size equal to hidden_size"),
    ({"tie_weights": 1}, "tie_weights must be true or false"),
    ({"cell": "rnn-scratch", "num_layers": 2}, "cell 'rnn-scratch' supports only num_layers=1"),
    ({"cell": "rnn-scratch", "embedding_size": 8}, "supports only embedding_size=None"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
    ({"early_stopping": 0}, "early_stopping"),
    ({"init_scale": 0}, "init_scale"),
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
