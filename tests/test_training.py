"""The training loop: batches, state handling, optimizer groups, the schedule, stopping, the time budget (fake clocks)."""

from __future__ import annotations

import io
import math
import sys
import warnings

import numpy as np
import pytest
import torch

from lmbench.errors import LmbenchError
from lmbench.models.neural.distributed import World
from lmbench.models.neural.progress import EpochProgress, TrainingObserver
from lmbench.models.neural.recurrent import CELLS, Architecture
from lmbench.models.neural.training import (PROBE_TOKENS, VALID_MARGIN, Coordinator, Schedule, TimeBudget,
                                            TrainConfig, TrainingLog, TrainingOptions, Validation, curve_totals,
                                            cosine_multiplier, make_optimizer, parameter_groups, random_batches,
                                            sequential_batches, step_decay, train_network, training_stream)
from lmbench.models.seeding import seed_everything
from lmbench.data.vocab import Vocabulary

TEXT = ("the time traveller for so it will be convenient to speak of him\n"
        "was expounding a recondite matter to us his grey eyes shone and twinkled\n")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def corpus():
    """A character vocabulary and a training split of 548 ids (17 batches of 4 x 8)."""
    tokens = list(TEXT * 4)
    vocab = Vocabulary.build(tokens, "\n")
    ids, _ = vocab.encode(tokens)
    return vocab, ids


def small_config(**kw) -> TrainConfig:
    return TrainConfig(**{"num_steps": 8, "batch_size": 4, **kw})


def net_for(vocab, cell="lstm") -> torch.nn.Module:
    return CELLS[cell].build(Architecture(len(vocab), 6))


def scripted(values) -> Validation:
    """A validation split whose mean NLL per pass is taken from ``values`` in turn."""
    values = iter(values)
    return Validation(n_tokens=1, mean_nll=lambda n, stop=None: next(values))


class Ticking(torch.nn.Module):
    """Wraps a network: each training forward advances the fake clock by ``seconds(k)`` for batch k (from 0)."""

    def __init__(self, net, clock, seconds):
        super().__init__()
        self.net, self.clock, self.seconds, self.batches = net, clock, seconds, 0

    def forward(self, x, state=None):
        if self.training:
            self.clock.advance(self.seconds(self.batches))
            self.batches += 1
        return self.net(x, state)


def slow_validation(clock, seconds_per_pass: float, n_tokens: int = 10_000, chunks: int = 10,
                    calls: list | None = None) -> Validation:
    """A validation split scored in ``chunks`` pieces that advance the fake clock (a prefix takes proportionally less)."""
    def mean_nll(n: int, stop=None):
        for _ in range(chunks):
            clock.advance(seconds_per_pass * n / n_tokens / chunks)
            if stop is not None and stop():
                if calls is not None:
                    calls.append(("abandoned", n))
                return None
        if calls is not None:
            calls.append(n)
        return 2.0
    return Validation(n_tokens, mean_nll)


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
    net = Recorder(net_for(vocab))
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
    optimizer = make_optimizer(TrainingOptions(optimizer="sgd", lr=0.5, weight_decay=0.2), net)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    for name, p in net.named_parameters():
        expected = before[name] * (1 - 0.5 * 0.2) if p.dim() >= 2 and name != "embedding.weight" else before[name]
        assert torch.allclose(p.detach(), expected, rtol=0, atol=1e-7), name


# ---------------------------------------------------------------- the schedule: one object, stepped after batches and epochs


def schedule_rates(schedule: Schedule, optimizer, valid_ppls, batches_per_epoch: int = 1) -> list[list[float]]:
    """The lr of every group at the start of each epoch, the schedule stepped as the loop steps it."""
    rates = []
    for ppl in valid_ppls:
        rates.append([g["lr"] for g in optimizer.param_groups])
        for _ in range(batches_per_epoch):
            optimizer.step()
            schedule.after_batch()
        schedule.after_epoch(ppl)
    return rates


def test_plateau_schedule_reproduces_the_old_learning_rates():
    """Validation 3.0 2.0 2.5 2.6 1.5 1.6 1.7 1.8 with patience 1: epochs 3-4 are two epochs without
    improvement (> patience), so epoch 5 trains at lr 0.1; epochs 6-7 again, so epoch 8 at 0.01.
    An epoch without validation (None) changes nothing; equal is not better."""
    net = torch.nn.Linear(2, 2)
    options = small_config(optimizer="sgd", lr=1.0, lr_decay=0.1, patience=1)
    optimizer = make_optimizer(options, net)
    rates = schedule_rates(Schedule(options, optimizer, 8), optimizer, [3.0, 2.0, 2.5, 2.6, 1.5, 1.6, 1.7, 1.8])
    assert [r[0] for r in rates] == [1.0, 1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.1 * 0.1]
    options = small_config(optimizer="sgd", lr=2.0, lr_decay=0.5, patience=0)
    optimizer = make_optimizer(options, net)
    rates = schedule_rates(Schedule(options, optimizer, 8), optimizer, [2.0, 2.0, None, 1.0, 3.0, 0.5])
    assert [r[0] for r in rates] == [2.0, 2.0, 1.0, 1.0, 1.0, 0.5]


def test_step_schedule_is_zaremba_from_any_epoch_and_for_every_group():
    net = CELLS["lstm"].build(Architecture(vocab_size=5, hidden_size=3, embedding_size=3))
    options = small_config(optimizer="sgd", lr=1.0, lr_schedule="step", lr_decay=0.5, decay_start_epoch=4,
                           weight_decay=0.1)
    optimizer = make_optimizer(options, net)
    rates = schedule_rates(Schedule(options, optimizer, 7), optimizer, [5.0, 4.0, None, 6.0, 6.0, 6.0, 6.0])
    assert rates == [[r, r] for r in (1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125)]
    assert [step_decay(e, 0.5, 0) for e in (1, 2, 3)] == [0.5, 0.25, 0.125]


#: lr multipliers of batches 0..7 for 8 planned batches, 2 of warm-up and floor 0.2, worked by hand:
#: warm-up (s+1)/2; then 0.2 + 0.8 (1 + cos(pi p)) / 2 with p = (s - 2) / 6: cos 0, pi/6, pi/3, pi/2, 2pi/3, 5pi/6.
HAND_WORKED = [0.5, 1.0, 1.0, 0.2 + 0.4 * (1 + math.sqrt(3) / 2), 0.8, 0.6, 0.4, 0.2 + 0.4 * (1 - math.sqrt(3) / 2)]


def test_cosine_multiplier_matches_the_hand_worked_sequence():
    assert [cosine_multiplier(s, 8, 2, 0.2) for s in range(8)] == pytest.approx(HAND_WORKED, abs=1e-12)
    assert cosine_multiplier(8, 8, 2, 0.2) == pytest.approx(0.2) and cosine_multiplier(50, 8, 2, 0.2) == 0.2
    # no warm-up, floor 0: (1 + cos(pi s / 4)) / 2
    assert [cosine_multiplier(s, 4, 0, 0.0) for s in range(4)] == \
        pytest.approx([1.0, 0.5 + math.sqrt(2) / 4, 0.5, 0.5 - math.sqrt(2) / 4], abs=1e-12)


def test_cosine_schedule_steps_per_batch_across_epochs_for_every_group():
    net = torch.nn.Linear(3, 3)
    options = small_config(optimizer="adamw", lr=2.0, weight_decay=0.1, lr_schedule="cosine", warmup=2,
                           min_lr_ratio=0.2)
    optimizer = make_optimizer(options, net)
    rates, schedule = [], Schedule(options, optimizer, 8)
    for epoch in range(4):
        for _ in range(2):
            rates.append([g["lr"] for g in optimizer.param_groups])
            optimizer.step()
            schedule.after_batch()
        schedule.after_epoch(1.0)  # no effect per epoch
    assert rates == [[pytest.approx(2.0 * m, abs=1e-12)] * 2 for m in HAND_WORKED]


def test_warmup_is_a_fraction_of_the_planned_batches_or_a_count():
    assert small_config(warmup=0.25).warmup_steps(8) == 2 and small_config(warmup=3).warmup_steps(8) == 3
    assert small_config(warmup=0.0).warmup_steps(1000) == 0


# ---------------------------------------------------------------- best weights, early stopping, divergence


def test_best_weights_plateau_decay_and_early_stopping(corpus):
    vocab, train = corpus
    net = net_for(vocab, "gru")
    values = iter([3.0, 2.0, 2.5, 2.6, 2.7, 2.8])
    snapshots = []

    def mean_nll(n, stop=None):
        snapshots.append({k: v.clone() for k, v in net.state_dict().items()})
        return next(values)

    config = small_config(epochs=6, optimizer="adam", lr=0.01, lr_decay=0.5, patience=0, early_stopping=2)
    seed_everything(0)
    log = train_network(net, train[:200], bos_id=vocab.bos_id, config=config, device=CPU,
                        valid=Validation(1, mean_nll))
    assert [r["epoch"] for r in log.rows] == [1, 2, 3, 4]
    assert log.stopped_by == "early_stopping" and log.best_epoch == 2
    assert log.best_valid_ppl == pytest.approx(math.exp(2.0))
    assert [r["lr"] for r in log.rows] == [0.01, 0.01, 0.01, 0.005]
    for name, value in net.state_dict().items():
        assert torch.equal(value, snapshots[1][name])
        assert not torch.equal(value, snapshots[3][name])


def test_without_validation_the_last_weights_and_the_initial_lr_are_kept(corpus):
    vocab, train = corpus
    log = train_network(net_for(vocab), train[:100], bos_id=vocab.bos_id, config=small_config(epochs=2, lr=0.5,
                        early_stopping=1), device=CPU)
    assert [r["lr"] for r in log.rows] == [0.5, 0.5] and log.stopped_by == "epochs"
    assert log.best_epoch is None and all(math.isnan(r["valid_ppl"]) for r in log.rows)


def test_divergence_is_reported(corpus):
    vocab, train = corpus
    net = net_for(vocab, "rnn")
    with torch.no_grad():
        net.decoder.bias[0] = math.nan
    with pytest.raises(LmbenchError, match="training diverged in epoch 1"):
        train_network(net, train[:100], bos_id=vocab.bos_id, config=small_config(epochs=2), device=CPU)


# ---------------------------------------------------------------- the time budget, on a fake clock


def test_budget_decides_per_batch_from_the_slower_of_the_last_and_the_mean_batch(fake_clock):
    budget = TimeBudget(10.0, fake_clock, started_at=0.0)
    budget.valid_seconds = 2.0
    coordinator = Coordinator(World(), budget)
    fake_clock.now = 7.0
    assert coordinator.next_batch_fits(0.5, 0.3)  # 7 + 0.5 + 1.1 * 2 = 9.7
    assert budget.batch_seconds == 0.5
    assert not coordinator.next_batch_fits(1.0, 0.3)  # 7 + 1.0 + 2.2 > 10
    assert not coordinator.next_batch_fits(0.3, 1.0)
    fake_clock.now = 10.0 - VALID_MARGIN * 2.0 - 0.5
    assert coordinator.next_batch_fits(0.5, 0.5) and coordinator.next_epoch_fits()
    unlimited = Coordinator(World(), TimeBudget(None, fake_clock, 0.0))
    fake_clock.now = 1e9
    assert unlimited.next_batch_fits(1e9, 1e9) and unlimited.next_epoch_fits()


def test_the_validation_estimate_is_a_timed_probe_scaled_to_the_split(fake_clock):
    calls = []
    valid = slow_validation(fake_clock, 5.0, n_tokens=20_000, calls=calls)
    budget = TimeBudget(100.0, fake_clock, 0.0)
    assert budget.estimate_validation(valid) == pytest.approx(5.0)
    assert calls == [16, PROBE_TOKENS]  # a warm-up of 16 tokens, untimed, then the probe


def test_a_budget_without_room_for_validation_stops_after_one_epoch(corpus, fake_clock):
    """0.9 s of validation in a 1 s budget: epoch 1 and its validation fit, epoch 2 is not started."""
    vocab, train = corpus
    net = Ticking(net_for(vocab), fake_clock, lambda k: 0.001)
    calls = []
    log = train_network(net, train, bos_id=vocab.bos_id, config=small_config(epochs=100, time_budget=1.0,
                        early_stopping=None), device=CPU, valid=slow_validation(fake_clock, 0.5, calls=calls),
                        clock=fake_clock, started_at=0.0)
    assert fake_clock.now <= 1.0
    assert log.stopped_by == "time_budget" and [r["complete"] for r in log.rows] == [True]
    assert calls == [16, PROBE_TOKENS, 10_000]


def test_an_epoch_is_cut_at_the_batch_that_would_leave_no_room_to_validate(corpus, fake_clock):
    """Batches of 0.1 s, validation 0.5 s (x 1.1 reserved) after a probe of 0.1 s: a 1 s budget trains 3
    batches (0.1 + 0.3 + 0.1 + 0.55 <= 1), not a fourth, validates and ends within the budget; the curve
    row says the epoch was partial."""
    vocab, train = corpus
    net = Ticking(net_for(vocab), fake_clock, lambda k: 0.1)
    log = train_network(net, train, bos_id=vocab.bos_id, config=small_config(epochs=3, time_budget=1.0),
                        device=CPU, valid=slow_validation(fake_clock, 0.5), clock=fake_clock, started_at=0.0)
    assert net.batches == 3 and len(log.rows) == 1 and not log.rows[0]["complete"]
    assert log.rows[0]["train_tokens"] == 3 * 4 * 8 and math.isfinite(log.rows[0]["valid_ppl"])
    probe = 0.5 * (16 + PROBE_TOKENS) / 10_000
    assert fake_clock.now == pytest.approx(probe + 0.3 + 0.5) and fake_clock.now <= 1.0
    summary = log.summary()
    assert (summary["stopped_by"], summary["epochs_completed"], summary["last_epoch_partial"],
            summary["tokens_trained"]) == ("time_budget", 0, True, 96)


def test_the_budget_is_kept_within_its_tolerance_when_the_machine_slows_down(corpus, fake_clock):
    """The case of a 30 s budget that took 48 s: after 10 batches the machine gets three times slower.
    The loop notices at the next batch; the validation pass, probed at 6 s, now takes 18 s and is
    abandoned at the first chunk past the budget: the fit ends within the budget plus one chunk (1.8 s),
    not at 34.7 s as a loop that trusts its estimate would."""
    vocab, train = corpus
    net = Ticking(net_for(vocab), fake_clock, lambda k: 0.5 if k < 10 else 1.5)

    def mean_nll(n, stop=None):
        seconds = (6.0 if n < 10_000 else 18.0) * n / 10_000
        for _ in range(10):
            fake_clock.advance(seconds / 10)
            if stop is not None and stop():
                return None
        return 2.0

    with pytest.warns(UserWarning, match="left no time to validate"):
        log = train_network(net, train, bos_id=vocab.bos_id, config=small_config(epochs=5, time_budget=30.0),
                            device=CPU, valid=Validation(10_000, mean_nll), clock=fake_clock, started_at=0.0)
    assert 30.0 < fake_clock.now <= 30.0 + 1.8
    assert log.stopped_by == "time_budget" and log.rows[0]["complete"]


def test_a_validation_pass_that_runs_past_the_budget_is_abandoned(corpus, fake_clock):
    """The estimate (0.1 s) was far too low: the pass takes 20 s; it stops at the first chunk past the budget."""
    vocab, train = corpus
    net = Ticking(net_for(vocab), fake_clock, lambda k: 0.01)
    calls = []

    def mean_nll(n, stop=None):
        if n < 10_000:
            fake_clock.advance(0.1 * n / 10_000)
            return 2.0
        for _ in range(100):
            fake_clock.advance(0.2)
            if stop():
                calls.append("abandoned")
                return None
        return 2.0

    with pytest.warns(UserWarning, match=r"^my-lstm: the time budget of 2 s left no time to validate: trained "
                                         r"5\d\d of the 548 training tokens; the last weights are kept, "
                                         r"raise time_budget$"):
        log = train_network(net, train, bos_id=vocab.bos_id, config=small_config(epochs=5, time_budget=2.0),
                            device=CPU, valid=Validation(10_000, mean_nll), clock=fake_clock, started_at=0.0,
                            label="my-lstm")
    assert calls == ["abandoned"] and 2.0 < fake_clock.now <= 2.0 + 0.2
    assert log.best_epoch is None and math.isnan(log.rows[-1]["valid_ppl"]) and log.stopped_by == "time_budget"


def test_a_budget_shorter_than_one_batch_trains_one_batch_and_warns_once(corpus, fake_clock):
    vocab, train = corpus
    net = Ticking(net_for(vocab), fake_clock, lambda k: 1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log = train_network(net, train, bos_id=vocab.bos_id, config=small_config(epochs=50, time_budget=0.5),
                            device=CPU, valid=slow_validation(fake_clock, 0.2), clock=fake_clock, started_at=0.0)
    assert len(caught) == 1 and "trained 32 of the 548 training tokens" in str(caught[0].message)
    assert "\n" not in str(caught[0].message)
    assert net.batches == 1 and log.rows[0]["train_tokens"] == 32 and not log.rows[0]["complete"]
    assert math.isnan(log.rows[0]["valid_ppl"]) and log.best_epoch is None


def test_budget_counts_from_the_start_of_the_fit(corpus, fake_clock):
    """Time spent before train_network (network construction in fit) comes off the budget."""
    vocab, train = corpus
    fake_clock.now = 10.0
    net = Ticking(net_for(vocab), fake_clock, lambda k: 0.01)
    log = train_network(net, train, bos_id=vocab.bos_id, config=small_config(epochs=1000, time_budget=5.0),
                        device=CPU, clock=fake_clock, started_at=0.0)
    assert len(log.rows) == 1 and log.rows[0]["train_tokens"] == 32 and log.stopped_by == "time_budget"


def test_an_unlimited_fit_never_probes_validation(corpus, fake_clock):
    vocab, train = corpus
    calls = []
    train_network(net_for(vocab), train[:100], bos_id=vocab.bos_id, config=small_config(epochs=2), device=CPU,
                  valid=slow_validation(fake_clock, 0.0, calls=calls), clock=fake_clock)
    assert calls == [10_000, 10_000]


# ---------------------------------------------------------------- what a fit reports


def test_curve_totals_count_whole_epochs_and_tokens():
    rows = [{"train_tokens": 100, "complete": True}, {"train_tokens": 30, "complete": False}]
    assert curve_totals(rows) == {"tokens_trained": 130, "epochs_completed": 1, "last_epoch_partial": True}
    assert curve_totals(rows[:1]) == {"tokens_trained": 100, "epochs_completed": 1, "last_epoch_partial": False}
    log = TrainingLog([{"epoch": 1, "lr": 0.1, "tokens_per_s": 5.0, **rows[0]}], 1, 3.0, "epochs")
    assert list(log.summary()) == ["epochs_run", "best_epoch", "best_valid_ppl", "final_lr", "stopped_by",
                                   "train_tokens_per_s", "tokens_trained", "epochs_completed", "last_epoch_partial"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


ROW = {"epoch": 1, "train_ppl": 9.5, "valid_ppl": 7.389, "lr": 0.005, "tokens_per_s": 1234.0, "train_tokens": 29_200,
       "complete": False}


def test_epoch_lines_without_a_terminal_name_the_model_and_a_partial_epoch(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    progress = EpochProgress("my-lstm", 13)
    progress.epoch_started(1, 10)
    progress.batch_done(torch.tensor(1.0), 8, 0.1)
    progress.epoch_ended(1, ROW, 929_589, validated=True, validating=True)
    progress.epoch_started(2, 10)
    progress.epoch_ended(2, {**ROW, "epoch": 2, "complete": True}, 929_589, validated=False, validating=True)
    assert stream.getvalue().splitlines() == [
        "my-lstm: epoch 1/13 (partial: 29,200 of 929,589 tokens): 1,234 tok/s, ppl 9.50, valid ppl 7.39, lr 0.005",
        "my-lstm: epoch 2/13: 1,234 tok/s, ppl 9.50, validation skipped (no time left in the budget), lr 0.005"]


def test_epoch_bars_on_a_terminal(monkeypatch):
    stream = Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    progress = EpochProgress("", 2, refresh_s=0.0)
    progress.epoch_started(1, 3)
    for k in range(3):
        progress.batch_done(torch.tensor(2.0 * (k + 1)), 4 * (k + 1), 0.1 * (k + 1))
    progress.epoch_ended(1, ROW, 929_589, validated=True, validating=False)
    text = stream.getvalue()
    assert "epoch 1/2" in text and "3/3" in text and "(partial: 29,200 of 929,589 tokens)" in text
    assert "valid ppl" not in text


def test_the_loop_reports_every_batch_and_epoch_to_its_observer(corpus):
    vocab, train = corpus

    class Log(TrainingObserver):
        def __init__(self):
            self.events = []

        def epoch_started(self, epoch, n_batches):
            self.events.append(("start", epoch, n_batches))

        def batch_done(self, nll_sum, n_tokens, seconds, world_size=1):
            self.events.append(("batch", n_tokens))

        def epoch_ended(self, epoch, row, n_train, validated, validating):
            self.events.append(("end", epoch, row["train_tokens"], n_train, validated, validating))

        def close(self):
            self.events.append(("close",))

    log = Log()
    train_network(net_for(vocab), train[:100], bos_id=vocab.bos_id, config=small_config(epochs=1), device=CPU,
                  valid=scripted([1.0]), observer=log)
    n = log.events[0][2]
    assert log.events[0] == ("start", 1, n) and [e[0] for e in log.events[1:n + 1]] == ["batch"] * n
    seen = [e[1] for e in log.events[1:n + 1]]                # tokens so far: 4 x 8 per batch, the last maybe fewer
    steps = np.diff([0, *seen])
    assert (steps[:-1] == 32).all() and 0 < steps[-1] <= 32  # (the random offset decides the last batch's length)
    assert log.events[n + 1:] == [("end", 1, seen[-1], 100, True, True), ("close",)]


# ---------------------------------------------------------------- configuration


def test_training_option_defaults_are_the_char_level_setting():
    options = TrainingOptions()
    assert (options.batch_size, options.epochs, options.optimizer, options.lr, options.clip,
            options.early_stopping) == (32, 30, "adam", 0.005, 1.0, 3)
    options.check()
    assert TrainConfig(num_steps=35, **options.options()).min_train_tokens() == 32 * 35 + 34


def test_every_config_field_is_validated():
    """Every field is checked: an invalid value of each is a one-line error naming the field."""
    bad = {"num_steps": 0, "batch_size": 0, "sampling": "x", "epochs": 0, "time_budget": -1.0, "optimizer": "x",
           "lr": 0.0, "weight_decay": -1.0, "clip": -1.0, "lr_schedule": "x", "lr_decay": 0.0, "patience": -1,
           "decay_start_epoch": -1, "early_stopping": 0, "warmup": 1.5, "min_lr_ratio": 2.0, "precision": "bf16"}
    assert set(bad) == set(TrainConfig.__dataclass_fields__)
    for name, value in bad.items():
        with pytest.raises(LmbenchError, match=name):
            small_config(**{name: value}).check()
    small_config(lr_schedule="cosine", warmup=100, min_lr_ratio=0.0).check()
