"""The neural shell TorchLM, which every neural model shares: parameters, scoring contexts, fit outcome, the runner."""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
import torch

from lmbench.models.checkpoint import load_model
from lmbench.models.neural import shell
from lmbench.models.neural.recurrent import DeepRecurrentLM, RecurrentLM
from lmbench.models.neural.training import TrainConfig, TrainingOptions
from lmbench.models.neural.transformer import TransformerLM
from lmbench.models.seeding import seed_everything

from tests.conftest import NEURAL_TEXT

MODELS = {
    "lstm": lambda **kw: RecurrentLM(**{"cell": "lstm", "hidden_size": 8, "embedding_size": 6, "num_steps": 8,
                                        "batch_size": 4, "epochs": 1, "progress": False, "device": "cpu", **kw}),
    "transformer": lambda **kw: TransformerLM(**{"d_model": 8, "num_layers": 1, "n_heads": 2, "d_ff": 12,
                                                 "context": 8, "batch_size": 4, "epochs": 1, "progress": False,
                                                 "device": "cpu", **kw}),
}
TRAINING = {f.name for f in dataclasses.fields(TrainingOptions)}


# ---------------------------------------------------------------- parameters: one source of defaults


@pytest.mark.parametrize("cls", [RecurrentLM, DeepRecurrentLM, TransformerLM])
def test_every_parameter_is_in_the_signature_with_the_one_default(cls):
    """The constructor lists every parameter with its default (registry, get_params, help() rely on it); the
    training options are keyword-only, declared once in TrainingOptions, with its defaults."""
    params = inspect.signature(cls.__init__).parameters
    keyword_only = {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert keyword_only == TRAINING | {"device", "progress"}
    for name in TRAINING:
        assert params[name].default == TrainingOptions.__dataclass_fields__[name].default, name
    assert all(p.default is not inspect.Parameter.empty for n, p in params.items() if n != "self")
    model = cls()
    assert set(model.get_params()) == set(params) - {"self"}
    assert model.train_config() == TrainConfig(num_steps=model.window, **TrainingOptions().options())


def test_one_name_per_concept_and_the_window_of_each_model():
    recurrent, transformer = inspect.signature(RecurrentLM).parameters, inspect.signature(TransformerLM).parameters
    for name in ("num_layers", "eval_tokens", "dropout"):
        assert name in recurrent and name in transformer
    assert not {"n_layers", "eval_batch", "eval_chunk"} & (set(recurrent) | set(transformer))
    assert "num_steps" not in transformer  # the Transformer's window is its context
    assert TransformerLM(context=64).train_config().num_steps == 64
    assert TransformerLM(context=16, batch_size=5).min_train_tokens() == 5 * 16 + 15
    assert RecurrentLM(num_steps=7, batch_size=5).min_train_tokens() == 5 * 7 + 6


def test_no_class_chain_deeper_than_three_below_language_model():
    from lmbench.models.base import LanguageModel

    for cls in (RecurrentLM, DeepRecurrentLM, TransformerLM):
        below = [c for c in cls.__mro__ if issubclass(c, LanguageModel) and c is not LanguageModel]
        assert len(below) <= 3, below


def test_renamed_parameters_keep_old_checkpoints_and_settings_working():
    assert RecurrentLM.upgrade_params({"eval_chunk": 64, "cell": "gru"}) == {"eval_tokens": 64, "cell": "gru"}
    assert TransformerLM.upgrade_params({"n_layers": 2, "eval_batch": 16, "context": 32}) == \
        {"num_layers": 2, "eval_tokens": 16 * 32, "context": 32}
    assert TransformerLM.upgrade_params({"eval_batch": 16}) == {"eval_tokens": 16 * 128}  # the default context
    assert TransformerLM.renamed_params == {"n_layers": "num_layers", "eval_batch": "eval_tokens"}
    assert RecurrentLM.renamed_params == {"eval_chunk": "eval_tokens"}


@pytest.mark.parametrize("windows", [1, 3, 16])
def test_transformer_windows_per_forward_follow_eval_tokens_and_change_no_score(char_splits, windows):
    vocab, train, valid, test = char_splits
    seed_everything(0)
    model = MODELS["transformer"]().fit(train, None, vocab=vocab)
    reference = model.logprobs(test)
    model.eval_tokens = windows * model.context + model.context - 1  # rounded down to whole windows
    pieces = [p.size for p in model.score_pieces(test)]
    assert pieces[0] == model.context + (windows - 1) * model.scoring_stride() and sum(pieces) == test.size
    assert np.allclose(model.logprobs(test), reference, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- the scoring contexts: one place for every path


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_scoring_path_runs_in_float32_with_deterministic_kernels_and_no_gradients(char_splits, monkeypatch,
                                                                                        name):
    """logprobs, validation, next_logprobs and generate all enter the one scoring context (TransformerLM's
    next_logprobs once lacked float32 scoring)."""
    vocab, train, valid, test = char_splits
    entered = []

    def recording(kind, original):
        @contextmanager
        def context(device):
            entered.append(kind)
            with original(device):
                yield
        return context

    monkeypatch.setattr(shell, "float32_scoring", recording("float32", shell.float32_scoring))
    monkeypatch.setattr(shell, "deterministic_kernels", recording("deterministic", shell.deterministic_kernels))
    seed_everything(0)
    model = MODELS[name]().fit(train, valid, vocab=vocab)
    fit_contexts, entered[:] = list(entered), []
    assert fit_contexts.count("float32") == 1 and fit_contexts.count("deterministic") == 2  # fit + validation
    grads = []
    original_advance = type(model).advance
    monkeypatch.setattr(type(model), "advance",
                        lambda self, ids, state: (grads.append(torch.is_grad_enabled() or self.net_.training),
                                                  original_advance(self, ids, state))[1])
    for call in (lambda: model.logprobs(test), lambda: model.next_logprobs(test[:3]),
                 lambda: model.generate(test[:3], 3, seed=1)):
        call()
        assert entered == ["deterministic", "float32"]
        entered[:] = []
    assert grads and not any(grads)


# ---------------------------------------------------------------- what a fit reports, cut short or not


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_whole_fit_reports_its_epochs_and_tokens(char_splits, name):
    vocab, train, valid, _ = char_splits
    seed_everything(0)
    model = MODELS[name](epochs=2).fit(train, valid, vocab=vocab)
    summary, curve = model.fitted_summary(), model.training_curve()
    assert summary["stopped_by"] == "epochs" and summary["epochs_run"] == summary["epochs_completed"] == 2
    assert summary["tokens_trained"] == sum(r["train_tokens"] for r in curve) and not summary["last_epoch_partial"]
    assert model.valid_use() == "best epoch chosen on valid" and summary["best_epoch"] in (1, 2)


def test_a_fit_cut_short_by_its_budget_says_so_and_warns_once(char_splits, fake_clock):
    """On a fake clock a training batch takes 1 s and a scoring chunk 0.5 s: the probe of validation uses 1 s of
    the 1.5 s budget, one batch is trained, and no validation fits; one warning names what was trained."""
    vocab, train, valid, _ = char_splits
    model = MODELS["lstm"](epochs=5, time_budget=1.5)
    build = model.build_network

    class Slow(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x, state=None):
            fake_clock.advance(1.0 if self.training else 0.5)
            return self.net(x, state)

    model.build_network = lambda vocab_size: Slow(build(vocab_size))
    model.label = "lstm-cut"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(train, valid, vocab=vocab, clock=fake_clock)
    assert [str(w.message) for w in caught] == [
        "lstm-cut: the time budget of 1.5 s left no time to validate: trained 32 of the 564 training tokens; "
        "the last weights are kept, raise time_budget"]
    summary = model.fitted_summary()
    assert {k: summary[k] for k in ("stopped_by", "epochs_run", "epochs_completed", "last_epoch_partial",
                                    "tokens_trained", "best_epoch")} == \
        {"stopped_by": "time_budget", "epochs_run": 1, "epochs_completed": 0, "last_epoch_partial": True,
         "tokens_trained": 32, "best_epoch": None}
    assert model.valid_use() == ""  # valid chose nothing: its score is held out
    assert fake_clock.now == 2.0  # the budget, exceeded by the one batch that always runs


def test_the_console_names_a_partial_epoch(char_splits, capsys):
    from tests.conftest import FakeClock

    vocab, train, _, _ = char_splits
    model = MODELS["lstm"](epochs=3, time_budget=0.5, progress=True)
    model.fit(train, None, vocab=vocab, clock=FakeClock(tick=1.0))
    assert capsys.readouterr().err.startswith("lstm: epoch 1/3 (partial: 32 of 564 tokens): ")


# ---------------------------------------------------------------- through the runner


@pytest.mark.plots("curves_plot")
def test_runner_scores_the_same_tokens_for_every_model_and_writes_curves_and_checkpoints(tmp_path):
    from lmbench import api

    corpus = tmp_path / "tiny.txt"
    corpus.write_text(NEURAL_TEXT * 4, encoding="utf-8")
    lstm = {"hidden_size": 6, "num_steps": 8, "batch_size": 4, "progress": False}
    transformer = {"d_model": 8, "num_layers": 1, "n_heads": 2, "d_ff": 12, "context": 8, "batch_size": 4,
                   "progress": False}
    result = api.run("bigram-add1,lstm,deep-gru,transformer", str(corpus), tokenizer="char", out=str(tmp_path / "run"),
                     params={"lstm": lstm, "deep-gru": lstm, "transformer": transformer}, epochs=2, device="cpu",
                     bootstrap=0, quiet=True)
    table = result.table
    for split in ("valid", "test"):
        rows = table[table["split"] == split]
        assert len(rows) == 4 and rows["n_tokens"].nunique() == 1
    out = tmp_path / "run"
    for name in ("lstm", "deep-gru", "transformer"):
        curve = pd.read_csv(out / "curves" / f"{name}.csv")
        assert list(curve["epoch"]) == [1, 2] and {"train_ppl", "valid_ppl", "lr", "tokens_per_s"} <= set(curve)
        row = table[(table["model"] == name) & (table["split"] == "test")].iloc[0]
        assert load_model(out / "models" / f"{name}.pt").n_params == row["n_params"]
    assert not (out / "curves" / "bigram-add1.csv").exists() and (out / "curves.png").stat().st_size > 0
    row = table[(table["model"] == "transformer") & (table["split"] == "test")].iloc[0]
    assert "context=8; stride=2; min_context=7" in row["note"] and "stopped_by" not in row["note"]
    assert row["stopped_by"] == "epochs" and row["epochs_completed"] == 2  # how a fit ended: columns of their own
