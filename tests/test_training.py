"""The generic training loop: batches, state handling, optimizer groups, schedules, stopping, the time budget."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from lmbench.errors import LmbenchError
from lmbench.models.neural.recurrent import CELLS, Architecture
from lmbench.models.seeding import seed_everything
from lmbench.models.neural.training import (TrainConfig, Validation, make_optimizer, make_scheduler, parameter_groups,
                              random_batches, sequential_batches, step_scheduler, train_network, training_stream)
from lmbench.data.vocab import Vocabulary

TEXT = ("the time traveller for so it will be convenient to speak of him\n"
        "was expounding a recondite matter to us his grey eyes shone and twinkled\n")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def corpus():
    """A character vocabulary and a training split of a few hundred ids."""
    tokens = list(TEXT * 4)
    vocab = Vocabulary.build(tokens, "\n")
    ids, _ = vocab.encode(tokens)
    return vocab, ids


@pytest.fixture
def timing():
    """For timing tests: torch on one thread (two spinning threads stall on a loaded 2-core machine), and
    torch's one-time import on the first optimizer construction (about 1 s) done before any clock starts."""
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_config(**kw) -> TrainConfig:
    return TrainConfig(**{"num_steps": 8, "batch_size": 4, "progress": False, **kw})


def scripted(values) -> Validation:
    """A validation split whose mean NLL per pass is taken from ``values`` in turn."""
    values = iter(values)
    return Validation(n_tokens=1, mean_nll=lambda n: next(values))


# ---------------------------------------------------------------- batches


def test_training_stream_starts_with_bos():
    inputs, targets = training_stream(np.array([5, 6, 7]), bos_id=9, device=CPU)
    assert inputs.tolist() == [9, 5, 6] and targets.tolist() == [5, 6, 7]


def test_sequential_batches_continue_each_stream():
    stream = torch.arange(18)
    batches = list(sequential_batches(stream, stream + 100, batch_size=3, num_steps=4, offset=0))
    assert [x.shape for x, _, _ in batches] == [(4, 3), (2, 3)]
    columns = torch.cat([x for x, _, _ in batches]).t()  # (B, L)
    assert columns.tolist() == [list(range(0, 6)), list(range(6, 12)), list(range(12, 18))]
    assert torch.equal(torch.cat([y for _, y, _ in batches]), torch.cat([x for x, _, _ in batches]) + 100)
    shifted = list(sequential_batches(stream, stream, batch_size=3, num_steps=4, offset=2))
    assert torch.cat([x for x, _, _ in shifted]).t()[0].tolist() == [2, 3, 4, 5, 6]


def test_random_batches_are_disjoint_whole_windows():
    stream = torch.arange(50)
    gen = torch.Generator().manual_seed(0)
    batches = list(random_batches(stream, stream + 1, batch_size=4, num_steps=5, offset=3, generator=gen))
    windows = torch.cat([x for x, _, _ in batches], dim=1).t()  # (W, T)
    assert windows.shape == (9, 5) and [x.shape[1] for x, _, _ in batches] == [4, 4, 1]
    assert sorted(w[0].item() for w in windows) == list(range(3, 48, 5))
    assert all(torch.equal(w, torch.arange(w[0], w[0] + 5)) for w in windows)
    assert torch.equal(torch.cat([y for _, y, _ in batches], 1), torch.cat([x for x, _, _ in batches], 1) + 1)


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
def test_state_carried_and_detached_or_fresh(corpus, sampling):
    vocab, train = corpus
    net = Recorder(CELLS["lstm"].build(Architecture(len(vocab), 8)))
    train_network(net, train, bos_id=vocab.bos_id, config=small_config(sampling=sampling, epochs=1), device=CPU)
    assert len(net.calls) > 3 and net.calls[0] is None
    if sampling == "random":
        assert all(call is None for call in net.calls)
    else:
        assert all(call == (False, True) for call in net.calls[1:])  # carried, detached


# ---------------------------------------------------------------- weight decay on matrices only


def names_by_decay(net: torch.nn.Module, weight_decay: float = 0.1) -> dict[float, set[str]]:
    name_of = {id(p): n for n, p in net.named_parameters()}
    return {g["weight_decay"]: {name_of[id(p)] for p in g["params"]} for g in parameter_groups(net, weight_decay)}


def test_weight_decay_groups_hold_matrices_not_biases_or_embeddings():
    lstm = CELLS["lstm"].build(Architecture(vocab_size=9, hidden_size=6, num_layers=2, embedding_size=5))
    matrices = {f"rnn.weight_{kind}_l{layer}" for kind in ("ih", "hh") for layer in (0, 1)} | {"decoder.weight"}
    biases = {f"rnn.bias_{kind}_l{layer}" for kind in ("ih", "hh") for layer in (0, 1)} | {"decoder.bias"}
    assert names_by_decay(lstm) == {0.1: matrices, 0.0: biases | {"embedding.weight"}}
    tied = CELLS["gru"].build(Architecture(vocab_size=9, hidden_size=6, embedding_size=6, tie_weights=True))
    assert names_by_decay(tied) == {0.1: {"rnn.weight_ih_l0", "rnn.weight_hh_l0"},
                                    0.0: {"rnn.bias_ih_l0", "rnn.bias_hh_l0", "embedding.weight", "decoder_bias"}}
    scratch = CELLS["rnn-scratch"].build(Architecture(vocab_size=9, hidden_size=6))
    assert names_by_decay(scratch) == {0.1: {"W_xh", "W_hh", "W_hq"}, 0.0: {"b_h", "b_q"}}


def test_weight_decay_skips_normalization_layers_and_shared_tables():
    """A Transformer-like block: LayerNorm gains and an output layer tied to the embedding are not decayed."""
    embedding = torch.nn.Embedding(7, 4)
    head = torch.nn.Linear(4, 7, bias=False)
    head.weight = embedding.weight  # tied, as in GPT-2
    net = torch.nn.ModuleDict({"wte": embedding, "ln": torch.nn.LayerNorm(4), "mlp": torch.nn.Linear(4, 4),
                               "head": head})
    assert names_by_decay(net) == {0.1: {"mlp.weight"}, 0.0: {"wte.weight", "ln.weight", "ln.bias", "mlp.bias"}}


def test_sgd_weight_decay_shrinks_matrices_and_leaves_biases_and_embeddings():
    """One SGD step with zero gradients: only the decay acts, p <- p (1 - lr wd), on matrices only."""
    torch.manual_seed(0)
    net = CELLS["lstm"].build(Architecture(vocab_size=9, hidden_size=6, embedding_size=5))
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    optimizer = make_optimizer(TrainConfig(optimizer="sgd", lr=0.5, weight_decay=0.2), net)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    for name, p in net.named_parameters():
        expected = before[name] * (1 - 0.5 * 0.2) if p.dim() >= 2 and name != "embedding.weight" else before[name]
        assert torch.allclose(p.detach(), expected, rtol=0, atol=1e-7), name
    assert torch.equal(net.embedding.weight.detach(), before["embedding.weight"])


# ---------------------------------------------------------------- learning-rate schedules (torch.optim.lr_scheduler)


def test_plateau_schedule_reproduces_the_old_learning_rates(corpus):
    """ReduceLROnPlateau gives, epoch by epoch, the rates of lmbench's former hand-written schedule.

    Validation NLL 3.0 2.0 2.5 2.6 1.5 1.6 1.7 1.8 with patience 1: epochs 3-4 are two epochs without
    improvement (> patience), so epoch 5 trains at lr 0.1; epochs 6-7 again, so epoch 8 at 0.01.
    """
    vocab, train = corpus
    net = CELLS["gru"].build(Architecture(len(vocab), 8))
    config = small_config(epochs=8, optimizer="sgd", lr=1.0, lr_decay=0.1, patience=1, early_stopping=None)
    log = train_network(net, train, bos_id=vocab.bos_id, config=config, device=CPU,
                        valid=scripted([3.0, 2.0, 2.5, 2.6, 1.5, 1.6, 1.7, 1.8]))
    assert [r["lr"] for r in log.rows] == [1.0, 1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.1 * 0.1]
    assert log.best_epoch == 5


def test_plateau_with_no_patience_decays_after_every_bad_epoch_and_equal_is_not_better(corpus):
    vocab, train = corpus
    net = CELLS["gru"].build(Architecture(len(vocab), 8))
    config = small_config(epochs=5, optimizer="sgd", lr=2.0, lr_decay=0.5, patience=0, early_stopping=None)
    log = train_network(net, train, bos_id=vocab.bos_id, config=config, device=CPU,
                        valid=scripted([2.0, 2.0, 1.0, 3.0, 0.5]))
    assert [r["lr"] for r in log.rows] == [2.0, 2.0, 1.0, 1.0, 0.5]


def test_step_schedule_reproduces_zaremba_rates_whatever_validation_says(corpus):
    vocab, train = corpus
    net = CELLS["lstm"].build(Architecture(len(vocab), 8))
    config = small_config(epochs=7, optimizer="sgd", lr=1.0, lr_schedule="step", lr_decay=0.5, decay_start_epoch=4,
                          early_stopping=None)
    log = train_network(net, train, bos_id=vocab.bos_id, config=config, device=CPU,
                        valid=scripted([5.0, 4.0, 6.0, 6.0, 6.0, 6.0, 6.0]))
    assert [r["lr"] for r in log.rows] == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125]


def test_step_schedule_from_epoch_one_and_every_parameter_group():
    net = CELLS["lstm"].build(Architecture(vocab_size=5, hidden_size=3, embedding_size=3))
    config = TrainConfig(optimizer="sgd", lr=3.0, lr_schedule="step", lr_decay=0.5, decay_start_epoch=0,
                         weight_decay=0.1)
    optimizer = make_optimizer(config, net)
    scheduler = make_scheduler(config, optimizer)
    rates = []
    for _ in range(3):
        rates.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        step_scheduler(scheduler, None)
    assert rates == [[1.5, 1.5], [0.75, 0.75], [0.375, 0.375]]


def test_best_weights_plateau_decay_and_early_stopping(corpus):
    vocab, train = corpus
    net = CELLS["gru"].build(Architecture(len(vocab), 8))
    values = iter([3.0, 2.0, 2.5, 2.6, 2.7, 2.8])
    snapshots = []

    def mean_nll(n):
        snapshots.append({k: v.clone() for k, v in net.state_dict().items()})
        return next(values)

    config = small_config(epochs=6, optimizer="adam", lr=0.01, lr_decay=0.5, patience=0, early_stopping=2)
    seed_everything(0)
    log = train_network(net, train, bos_id=vocab.bos_id, config=config, device=CPU, valid=Validation(1, mean_nll))
    assert [r["epoch"] for r in log.rows] == [1, 2, 3, 4]
    assert log.stopped_by == "early_stopping" and log.best_epoch == 2
    assert log.best_valid_ppl == pytest.approx(math.exp(2.0))
    assert [r["lr"] for r in log.rows] == [0.01, 0.01, 0.01, 0.005]
    for name, value in net.state_dict().items():
        assert torch.equal(value, snapshots[1][name])
        assert not torch.equal(value, snapshots[3][name])


def test_without_validation_the_last_weights_and_the_initial_lr_are_kept(corpus):
    vocab, train = corpus
    net = CELLS["lstm"].build(Architecture(len(vocab), 8))
    config = small_config(epochs=3, lr=0.5, early_stopping=1)
    log = train_network(net, train, bos_id=vocab.bos_id, config=config, device=CPU)
    assert [r["lr"] for r in log.rows] == [0.5, 0.5, 0.5] and log.stopped_by == "epochs"
    assert log.best_epoch is None and all(math.isnan(r["valid_ppl"]) for r in log.rows)


def test_divergence_is_reported(corpus):
    vocab, train = corpus
    net = CELLS["rnn"].build(Architecture(len(vocab), 8))
    with torch.no_grad():
        net.decoder.bias[0] = math.nan
    with pytest.raises(LmbenchError, match="training diverged in epoch 1"):
        train_network(net, train, bos_id=vocab.bos_id, config=small_config(epochs=2), device=CPU)


# ---------------------------------------------------------------- the time budget covers validation

#: the slack over the budget allowed to a fit: one training batch, the loop's bookkeeping, and a loaded CI machine.
SLACK_S = 0.5


def slow_validation(seconds_per_pass: float, n_tokens: int = 100_000, calls: list | None = None) -> Validation:
    """A validation split that takes ``seconds_per_pass`` for a whole pass (proportionally less for a prefix)."""
    def mean_nll(n: int) -> float:
        time.sleep(seconds_per_pass * n / n_tokens)
        if calls is not None:
            calls.append(n)
        return 2.0
    return Validation(n_tokens, mean_nll)


def test_time_budget_leaves_room_for_the_validation_pass(corpus, timing):
    """The old loop bounded training only and validated on top (a 25 s budget gave a 105 s fit).

    With 0.9 s of validation and a 1 s budget it would train and validate epoch 1 (0.9 s), start epoch 2
    and validate again (1.8 s); now epoch 2 is not started, since its validation could not end in time.
    """
    vocab, train = corpus
    net = CELLS["lstm"].build(Architecture(len(vocab), 8))
    budget, calls = 1.0, []
    config = small_config(epochs=100_000, time_budget=budget, early_stopping=None)
    start = time.perf_counter()
    log = train_network(net, train, bos_id=vocab.bos_id, config=config, device=CPU,
                        valid=slow_validation(0.9, calls=calls), started_at=start)
    assert time.perf_counter() - start <= budget + SLACK_S
    assert log.stopped_by == "time_budget" and len(log.rows) == 1
    assert calls.count(100_000) == sum(math.isfinite(r["valid_ppl"]) for r in log.rows)


def test_validation_that_cannot_fit_is_skipped_and_the_last_weights_kept(corpus, timing):
    vocab, train = corpus
    net = CELLS["lstm"].build(Architecture(len(vocab), 8))
    calls = []
    config = small_config(epochs=50, time_budget=0.3, early_stopping=None)
    start = time.perf_counter()
    log = train_network(net, train, bos_id=vocab.bos_id, config=config, device=CPU,
                        valid=slow_validation(1.0, calls=calls), started_at=start)
    assert time.perf_counter() - start <= 0.3 + SLACK_S
    assert 100_000 not in calls  # only the short probe ran
    assert len(log.rows) == 1 and not log.rows[0]["complete"] and log.rows[0]["train_tokens"] == 8 * 4
    assert math.isnan(log.rows[0]["valid_ppl"]) and log.best_epoch is None and log.stopped_by == "time_budget"


def test_budget_counts_from_the_start_of_the_fit(corpus):
    """Time already spent before train_network (network construction in fit) comes off the budget."""
    vocab, train = corpus
    net = CELLS["lstm"].build(Architecture(len(vocab), 8))
    config = small_config(epochs=1000, time_budget=5.0, early_stopping=None)
    log = train_network(net, train, bos_id=vocab.bos_id, config=config, device=CPU,
                        started_at=time.perf_counter() - 10.0)
    assert len(log.rows) == 1 and log.rows[0]["train_tokens"] == 8 * 4  # one batch, then the budget is gone
    assert log.stopped_by == "time_budget"


def test_an_unlimited_fit_never_probes_validation(corpus):
    """Without a budget no extra validation work is done: one whole pass per epoch, nothing else."""
    vocab, train = corpus
    net = CELLS["lstm"].build(Architecture(len(vocab), 8))
    calls = []
    train_network(net, train, bos_id=vocab.bos_id, config=small_config(epochs=2, early_stopping=None),
                  device=CPU, valid=slow_validation(0.0, calls=calls))
    assert calls == [100_000, 100_000]


# ---------------------------------------------------------------- configuration


def test_train_config_defaults_are_the_char_level_setting():
    config = TrainConfig()
    assert (config.num_steps, config.batch_size, config.epochs, config.optimizer, config.lr, config.clip,
            config.early_stopping) == (35, 32, 30, "adam", 0.005, 1.0, 3)
    config.check()


def test_epoch_lines_name_the_model_when_stderr_is_not_a_terminal(corpus, capsys):
    vocab, train = corpus
    net = CELLS["lstm"].build(Architecture(len(vocab), 8))
    config = TrainConfig(num_steps=8, batch_size=4, epochs=2, progress=True)
    train_network(net, train, bos_id=vocab.bos_id, config=config, device=CPU, valid=scripted([2.0, 1.0]),
                  label="my-lstm")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("my-lstm: epoch 1/2: ") and lines[1].startswith("my-lstm: epoch 2/2: ")
    assert "valid ppl 7.39" in lines[0] and "valid ppl 2.72" in lines[1]


def test_every_config_field_is_validated():
    """Every field is checked: an invalid value of each is a one-line error naming the field."""
    bad = {"num_steps": 0, "batch_size": 0, "sampling": "x", "epochs": 0, "time_budget": -1.0, "optimizer": "x",
           "lr": 0.0, "weight_decay": -1.0, "clip": -1.0, "lr_schedule": "x", "lr_decay": 0.0, "patience": -1,
           "decay_start_epoch": -1, "early_stopping": 0, "progress": "yes"}
    for name, value in bad.items():
        with pytest.raises(LmbenchError, match=name):
            TrainConfig(**{name: value}).check()

