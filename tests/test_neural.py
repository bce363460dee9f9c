"""Neural language models: shapes, training schemes, the scoring contract, persistence, generation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from lmbench.errors import LmbenchError
from lmbench.models.base import LanguageModel
from lmbench.models.neural import (CELLS, NEURAL_MODELS, Architecture, DeepRecurrentLM, RecurrentLM,
                                   stream_logprobs)
from lmbench.registry import load_model, resolve
from lmbench.runner import RunConfig, run_benchmark
from lmbench.seeding import seed_everything
from lmbench.training import (LRSchedule, TrainConfig, random_batches, select_device, sequential_batches,
                              train_network, training_stream)
from lmbench.vocab import Vocabulary

TEXT = ("the time traveller for so it will be convenient to speak of him\n"
        "was expounding a recondite matter to us his grey eyes shone and twinkled\n"
        "and his usually pale face was flushed and animated\n"
        "the fire burned brightly and the soft radiance of the incandescent lights\n")
TINY = dict(hidden_size=12, num_steps=8, batch_size=4, epochs=1, progress=False)


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


@pytest.mark.parametrize("name", sorted(NEURAL_MODELS))
def test_every_registry_name_trains_one_epoch(data, name):
    vocab, train, valid, test = data
    overrides = {"hidden_size": 8, "num_steps": 8, "batch_size": 4, "epochs": 1, "progress": False,
                 "device": "cpu"}
    if NEURAL_MODELS[name][1].get("embedding_size") is not None:
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


# ---------------------------------------------------------------- training loop


def test_training_stream_starts_with_bos():
    inputs, targets = training_stream(np.array([5, 6, 7]), bos_id=9, device=torch.device("cpu"))
    assert inputs.tolist() == [9, 5, 6] and targets.tolist() == [5, 6, 7]


def test_sequential_batches_continue_each_stream():
    stream = torch.arange(18)
    batches = list(sequential_batches(stream, stream + 100, batch_size=3, num_steps=4, offset=0))
    assert [x.shape for x, _ in batches] == [(4, 3), (2, 3)]
    columns = torch.cat([x for x, _ in batches]).t()  # (B, L)
    assert columns.tolist() == [list(range(0, 6)), list(range(6, 12)), list(range(12, 18))]
    assert torch.equal(torch.cat([y for _, y in batches]), torch.cat([x for x, _ in batches]) + 100)
    shifted = list(sequential_batches(stream, stream, batch_size=3, num_steps=4, offset=2))
    assert torch.cat([x for x, _ in shifted]).t()[0].tolist() == [2, 3, 4, 5, 6]


def test_random_batches_are_disjoint_whole_windows():
    stream = torch.arange(50)
    gen = torch.Generator().manual_seed(0)
    batches = list(random_batches(stream, stream + 1, batch_size=4, num_steps=5, offset=3, generator=gen))
    windows = torch.cat([x for x, _ in batches], dim=1).t()  # (W, T)
    assert windows.shape == (9, 5) and [x.shape[1] for x, _ in batches] == [4, 4, 1]
    assert sorted(w[0].item() for w in windows) == list(range(3, 48, 5))
    assert all(torch.equal(w, torch.arange(w[0], w[0] + 5)) for w in windows)
    assert torch.equal(torch.cat([y for _, y in batches], 1), torch.cat([x for x, _ in batches], 1) + 1)


class Recorder(torch.nn.Module):
    """Wraps a network and records what state each training batch starts from."""

    def __init__(self, net):
        super().__init__()
        self.net, self.calls = net, []

    def forward(self, x, state=None):
        if self.training:
            h = state[0] if isinstance(state, tuple) else state
            self.calls.append(None if h is None else (h.requires_grad, h.grad_fn is None))
        return self.net(x, state)


@pytest.mark.parametrize("sampling", ["sequential", "random"])
def test_state_carried_and_detached_or_fresh(data, sampling):
    vocab, train, _, _ = data
    net = Recorder(CELLS["lstm"].build(Architecture(len(vocab), 8)))
    config = TrainConfig(num_steps=8, batch_size=4, sampling=sampling, epochs=1, progress=False)
    train_network(net, train, bos_id=vocab.bos_id, config=config, device=torch.device("cpu"))
    assert len(net.calls) > 3 and net.calls[0] is None
    if sampling == "random":
        assert all(call is None for call in net.calls)
    else:
        assert all(call == (False, True) for call in net.calls[1:])  # carried, detached


def test_best_weights_plateau_decay_and_early_stopping(data):
    vocab, train, _, _ = data
    net = CELLS["gru"].build(Architecture(len(vocab), 8))
    scripted = iter([3.0, 2.0, 2.5, 2.6, 2.7, 2.8])
    snapshots = []

    def valid_nll():
        snapshots.append({k: v.clone() for k, v in net.state_dict().items()})
        return next(scripted)

    config = TrainConfig(num_steps=8, batch_size=4, epochs=6, optimizer="adam", lr=0.01, lr_decay=0.5,
                         patience=0, early_stopping=2, progress=False)
    seed_everything(0)
    log = train_network(net, train, bos_id=vocab.bos_id, config=config, device=torch.device("cpu"),
                        valid_nll=valid_nll)
    assert [r["epoch"] for r in log.rows] == [1, 2, 3, 4]
    assert log.stopped_by == "early_stopping" and log.best_epoch == 2
    assert log.best_valid_ppl == pytest.approx(math.exp(2.0))
    assert [r["lr"] for r in log.rows] == [0.01, 0.01, 0.01, 0.005]
    for name, value in net.state_dict().items():
        assert torch.equal(value, snapshots[1][name])
        assert not torch.equal(value, snapshots[3][name])


def test_without_validation_the_last_weights_and_the_initial_lr_are_kept(data):
    vocab, train, _, _ = data
    net = CELLS["lstm"].build(Architecture(len(vocab), 8))
    config = TrainConfig(num_steps=8, batch_size=4, epochs=3, lr=0.5, early_stopping=1, progress=False)
    log = train_network(net, train, bos_id=vocab.bos_id, config=config, device=torch.device("cpu"))
    assert [r["lr"] for r in log.rows] == [0.5, 0.5, 0.5] and log.stopped_by == "epochs"
    assert log.best_epoch is None and all(math.isnan(r["valid_ppl"]) for r in log.rows)


def test_step_schedule_is_zaremba():
    schedule = LRSchedule(TrainConfig(lr=1.0, lr_schedule="step", lr_decay=0.5, decay_start_epoch=4))
    assert [schedule.lr_for_epoch(e) for e in range(1, 8)] == [1, 1, 1, 1, 0.5, 0.25, 0.125]
    schedule.after_epoch(False)
    assert schedule.lr_for_epoch(2) == 1


def test_plateau_patience():
    schedule = LRSchedule(TrainConfig(lr=1.0, lr_decay=0.1, patience=1))
    lrs = []
    for improved in (True, False, False, False, True, False, False):
        schedule.after_epoch(improved)
        lrs.append(schedule.lr_for_epoch(0))
    assert lrs == pytest.approx([1, 1, 0.1, 0.1, 0.1, 0.1, 0.01])


def test_time_budget_stops_training(data):
    model = fitted(data, "lstm", epochs=50, time_budget=1e-6)
    curve = model.training_curve()
    assert len(curve) == 1 and not curve[0]["complete"]
    assert model.fitted_summary()["stopped_by"] == "time_budget"
    assert model.fitted_summary()["best_epoch"] == 1  # the partial epoch was validated and kept


def test_divergence_is_reported(data):
    vocab, train, _, _ = data
    net = CELLS["rnn"].build(Architecture(len(vocab), 8))
    with torch.no_grad():
        net.decoder.bias[0] = math.nan
    config = TrainConfig(num_steps=8, batch_size=4, epochs=2, progress=False)
    with pytest.raises(LmbenchError, match="training diverged in epoch 1"):
        train_network(net, train, bos_id=vocab.bos_id, config=config, device=torch.device("cpu"))


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


# ---------------------------------------------------------------- parameters and devices


@pytest.mark.parametrize("params, message", [
    ({"hidden_size": 0}, "hidden_size must be a whole number >= 1"),
    ({"hidden_size": 2.5}, "hidden_size must be a whole number"),
    ({"num_layers": 0}, "num_layers"),
    ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\)"),
    ({"optimizer": "adm"}, "unknown optimizer 'adm'; did you mean 'adam'"),
    ({"cell": "lstn"}, "did you mean 'lstm'"),
    ({"sampling": "sequental"}, "did you mean 'sequential'"),
    ({"lr_schedule": "cosine"}, "unknown lr_schedule"),
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
    for name in NEURAL_MODELS:
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
