"""The Transformer language model: sliding-window scoring, causality, the contract, persistence, the cosine schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from lmbench.data.vocab import Vocabulary
from lmbench.errors import LmbenchError
from lmbench.models.checkpoint import load_model
from lmbench.models.neural.recurrent import CELLS, Architecture
from lmbench.models.neural.training import TrainConfig, parameter_groups, train_network
from lmbench.models.neural.transformer import (TransformerArchitecture, TransformerLM, TransformerNet, window_logprobs,
                                               window_plan)
from lmbench.models.presets import NEURAL_PRESETS, TRANSFORMER_PRESETS, resolve_class
from lmbench.models.registry import resolve
from lmbench.models.seeding import seed_everything

from tests.test_training import HAND_WORKED

TINY = dict(d_model=8, num_layers=2, n_heads=2, d_ff=12, context=8, batch_size=4, epochs=1, progress=False,
            device="cpu")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data(char_splits):
    return char_splits


def fitted(data, seed=0, **kw) -> TransformerLM:
    vocab, train, valid, _ = data
    seed_everything(seed)
    return TransformerLM(**{**TINY, **kw}).fit(train, valid, vocab=vocab)


@pytest.fixture(scope="module")
def model(data):
    """A fitted tiny model whose network computes in float64, so that scores agree to 1e-12 (tests must not change it)."""
    m = fitted(data, epochs=2, dropout=0.1)
    m.net_.double()
    return m


def own_window_logprob(net: TransformerNet, stream: np.ndarray, targets: np.ndarray, first: int, i: int) -> float:
    """log p(target i) from one forward pass over exactly the stream inputs ``first .. i`` (the reference)."""
    x = torch.as_tensor(stream[first:i + 1])[:, None]  # (T, 1)
    with torch.no_grad():
        logits, _ = net(x)  # (T, 1, V)
    return float(torch.log_softmax(logits[-1, 0].double(), dim=-1)[targets[i]])


# ---------------------------------------------------------------- sliding-window scoring


@pytest.mark.parametrize("n, context, stride", [(5, 8, 3), (8, 8, 8), (9, 8, 3), (23, 8, 4), (30, 8, 8),
                                                (31, 8, 1), (40, 8, 5), (17, 8, 7)])
def test_window_plan_scores_every_position_once_with_the_documented_context(n, context, stride):
    plan = window_plan(n, context, stride)
    assert plan.n_scored.sum() == n and (plan.n_scored >= 1).all()
    ends = plan.starts + plan.length
    assert np.array_equal(np.cumsum(plan.n_scored), np.minimum(ends, n))  # windows score consecutive stretches
    seen = np.arange(n) - plan.visible_from() + 1  # inputs each position sees, itself included
    assert (seen <= context).all()
    assert (seen[: min(n, context)] == np.arange(1, min(n, context) + 1)).all()  # the start sees everything
    assert (seen[context:] >= context - stride + 1).all()


@pytest.mark.parametrize("n, stride", [(5, 3), (8, 1), (8, 4), (13, 3), (23, 4), (29, 1), (29, 8), (30, 7)])
def test_sliding_windows_equal_each_token_scored_with_its_own_window(data, model, n, stride):
    """Batched windows (any number per forward) give every token the score of one forward pass over exactly the
    inputs the module docstring says it sees; with stride 1 that is its full window of up to `context`
    preceding tokens. Lengths below the context, equal to it, and not a multiple of the stride."""
    vocab, test = data[0], data[3][:n]
    stream, context = np.concatenate([[vocab.bos_id], test[:-1]]), model.context
    first = window_plan(n, context, stride).visible_from()
    if stride == 1:
        assert np.array_equal(first, np.maximum(0, np.arange(n) - context + 1))
    expected = np.array([own_window_logprob(model.net_, stream, test, first[i], i) for i in range(n)])
    for batch in (1, 3, 64):
        got = window_logprobs(model.net_, test, vocab.bos_id, context, stride, batch, CPU)
        assert got.shape == (n,) and got.dtype == np.float64
        assert np.abs(got - expected).max() <= 1e-6


def test_default_stride_is_a_quarter_context_and_stated_in_the_summary(model):
    assert model.scoring_stride() == 2
    assert {k: model.fitted_summary()[k] for k in ("context", "stride", "min_context")} == \
        {"context": 8, "stride": 2, "min_context": 7}
    assert TransformerLM(context=3).scoring_stride() == 1 and TransformerLM(context=8, stride=3).scoring_stride() == 3
    assert TransformerLM(context=8, stride=1).network_summary()["min_context"] == 8


def test_logprobs_is_the_sliding_window_score_and_empty_splits_score_nothing(data, model):
    test = data[3]
    expected = window_logprobs(model.net_, test, data[0].bos_id, model.context, model.scoring_stride(),
                               model.eval_tokens // model.context, CPU)
    assert np.array_equal(model.logprobs(test), expected)
    assert model.logprobs(np.array([], dtype=np.int64)).shape == (0,)


# ---------------------------------------------------------------- causality and the next-token distribution


def test_changing_a_future_token_never_changes_earlier_scores(data, model):
    test = data[3][:40].copy()
    before = model.logprobs(test)
    for k in (0, 9, 25, 39):
        changed = test.copy()
        changed[k] = (changed[k] + 1) % len(data[0])
        after = model.logprobs(changed)
        assert np.allclose(after[:k], before[:k], rtol=0, atol=1e-12)  # the tokens before k do not see it
        if k + 1 < test.size:
            assert abs(after[k + 1] - before[k + 1]) > 1e-6  # the next token does


def test_attention_is_causal_inside_the_network():
    torch.manual_seed(0)
    net = TransformerNet(TransformerArchitecture(vocab_size=7, d_model=8, num_layers=2, n_heads=2, d_ff=12,
                                                 context=10)).eval()
    x = torch.randint(0, 8, (10, 3))
    logits, state = net(x)
    assert logits.shape == (10, 3, 7) and state is None
    y = x.clone()
    y[6:] = (y[6:] + 1) % 8
    changed, _ = net(y)
    assert torch.allclose(changed[:6], logits[:6], rtol=0, atol=1e-6)
    assert (changed[6:] - logits[6:]).abs().amax(dim=(1, 2)).min() > 1e-4  # every later position sees it


def test_next_logprobs_agrees_with_logprobs_and_sums_to_one(data, model):
    """With stride 1 every scored token is next_logprobs of the history before it (last `context` inputs)."""
    test = data[3][:30]
    model.stride = 1
    try:
        lp = model.logprobs(test)
    finally:
        model.stride = None
    for i in range(test.size):
        nxt = model.next_logprobs(test[:i])
        assert nxt.shape == (len(data[0]),)
        assert math.isclose(np.logaddexp.reduce(nxt), 0.0, abs_tol=1e-9)
        assert nxt[test[i]] == pytest.approx(lp[i], abs=1e-9)
    default = model.logprobs(test)  # the first `context` tokens see everything before them at any stride
    assert np.allclose(default[: model.context], lp[: model.context], rtol=0, atol=1e-9)


def test_generate_continues_a_prefix(data, model):
    out = model.generate(data[3][:12], 20, seed=3)
    assert out.shape == (20,) and out.min() >= 0 and out.max() < len(data[0])
    assert np.array_equal(out, model.generate(data[3][:12], 20, seed=3))


# ---------------------------------------------------------------- the network


def test_output_layer_is_the_first_v_rows_of_the_embedding_and_counted_once(data):
    m = fitted(data)
    V, D, C, F, L = len(data[0]), 8, 8, 12, 2
    block = 2 * 2 * D + (D * 3 * D + 3 * D) + (D * D + D) + (D * F + F) + (F * D + D)
    assert m.n_params == (V + 1) * D + C * D + L * block + 2 * D
    before = m.next_logprobs(data[3][:4])
    with torch.no_grad():
        m.net_.token_embedding.weight[2].add_(1.0)  # row 2 is also output token 2
    after = m.next_logprobs(data[3][:4])
    assert not np.isclose(before[2], after[2])


def test_weight_decay_falls_on_linear_weights_only():
    net = TransformerNet(TransformerArchitecture(vocab_size=7, d_model=8, num_layers=1, n_heads=2, d_ff=12, context=4))
    name_of = {id(p): n for n, p in net.named_parameters()}
    groups = {g["weight_decay"]: {name_of[id(p)] for p in g["params"]} for g in parameter_groups(net, 0.1)}
    assert groups[0.1] == {"blocks.0.attn.qkv.weight", "blocks.0.attn.proj.weight", "blocks.0.mlp.0.weight",
                           "blocks.0.mlp.2.weight"}
    assert {"token_embedding.weight", "position_embedding.weight", "ln_f.weight", "blocks.0.ln1.bias"} <= groups[0.0]


def test_residual_projections_start_smaller_with_depth():
    torch.manual_seed(0)
    net = TransformerNet(TransformerArchitecture(vocab_size=50, d_model=64, num_layers=8, n_heads=4, d_ff=256,
                                                 context=16))
    assert net.blocks[0].attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert net.blocks[0].mlp[2].weight.std().item() == pytest.approx(0.02 / 4, rel=0.05)
    assert torch.count_nonzero(net.blocks[0].attn.qkv.bias) == 0


# ---------------------------------------------------------------- determinism, persistence


@pytest.mark.parametrize("options", [{}, {"sampling": "random", "dropout": 0.3, "attn_dropout": 0.2}])
def test_same_seed_same_scores(data, options):
    test = data[3]
    a = fitted(data, seed=3, **options).logprobs(test)
    b = fitted(data, seed=3, **options).logprobs(test)
    c = fitted(data, seed=4, **options).logprobs(test)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_save_load_round_trip(data, tmp_path):
    test = data[3]
    m = fitted(data, stride=3)
    m.save(tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert type(loaded) is TransformerLM and loaded.get_params() == m.get_params()
    assert np.array_equal(loaded.logprobs(test), m.logprobs(test))
    assert loaded.training_curve() == m.training_curve() and loaded.fitted_summary() == m.fitted_summary()
    assert np.array_equal(loaded.generate(test[:5], 10, seed=1), m.generate(test[:5], 10, seed=1))


def test_a_checkpoint_of_another_shape_is_a_one_line_error(data, tmp_path):
    fitted(data).save(tmp_path / "m.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    payload["params"]["context"] = 12  # the file's position embedding has 8 rows
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(LmbenchError, match=r"position_embedding\.weight is \(8, 8\) in the checkpoint, "
                                           r"\(12, 8\) in the network") as exc:
        load_model(tmp_path / "bad.pt")
    assert "\n" not in str(exc.value)


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize("params, message", [
    ({"d_model": 10, "n_heads": 4}, r"^n_heads must divide d_model, got d_model=10 and n_heads=4; e\.g\. n_heads=5$"),
    ({"context": 0}, "context must be a whole number >= 1"),
    ({"stride": 0}, "stride must be a whole number >= 1"),
    ({"context": 8, "stride": 9}, r"stride must be at most context \(8\)"),
    ({"d_model": 0}, "d_model must be a whole number >= 1"),
    ({"num_layers": 0}, "num_layers must be a whole number >= 1"),
    ({"n_heads": 1.5}, "n_heads must be a whole number"),
    ({"d_ff": 0}, "d_ff must be a whole number >= 1"),
    ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\)"),
    ({"attn_dropout": -0.1}, r"attn_dropout must be a number in \[0, 1\)"),
    ({"eval_tokens": 0}, "eval_tokens must be a whole number >= 1"),
    ({"lr_schedule": "cosin"}, "did you mean 'cosine'"),
    ({"warmup": 2.5}, "warmup must be a fraction in"),
    ({"min_lr_ratio": 1.5}, r"min_lr_ratio must be a number in \[0, 1\]"),
    ({"optimizer": "adamv"}, "unknown optimizer 'adamv'"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
])
def test_invalid_parameters_are_one_line_errors(params, message):
    with pytest.raises(LmbenchError, match=message) as exc:
        TransformerLM(**params).check_params()
    assert "\n" not in str(exc.value)


def test_too_short_a_training_split_is_refused(data):
    vocab, train, valid, _ = data
    m = TransformerLM(**{**TINY, "context": 200})
    with pytest.raises(LmbenchError, match=r"training split has \d+ tokens; batch_size=4 and context=200 need 999"):
        m.fit(train, valid, vocab=vocab)


def test_transformer_presets_are_registered_valid_and_torch_free():
    assert set(TRANSFORMER_PRESETS) <= set(NEURAL_PRESETS) and TRANSFORMER_PRESETS
    for name, (path, params, description) in TRANSFORMER_PRESETS.items():
        assert resolve_class(path) is TransformerLM and resolve(name).cls is TransformerLM
        model = resolve(name).build()
        model.check_params()
        assert (model.optimizer, model.lr_schedule, model.sampling) == ("adamw", "cosine", "random")
        assert description and "\n" not in description


@pytest.mark.parametrize("name", sorted(TRANSFORMER_PRESETS))
def test_every_transformer_preset_trains_one_epoch(data, name):
    vocab, train, valid, test = data
    model = resolve(name, {"d_model": 8, "d_ff": 12, "num_layers": 1, "context": 8, "batch_size": 4, "epochs": 1,
                           "progress": False, "device": "cpu"}).build()
    seed_everything(0)
    model.fit(train, valid, vocab=vocab)
    result = model.evaluate(test)
    assert result.n_tokens == test.size and math.isfinite(result.perplexity)
    curve = model.training_curve()
    assert len(curve) == 1 and math.isfinite(curve[0]["valid_ppl"]) and curve[0]["train_tokens"] > 0


# ---------------------------------------------------------------- the cosine schedule through the loop


def record_learning_rates():
    """Record every optimizer's first-group lr just before each of its steps."""
    rates = []
    handle = register_optimizer_step_pre_hook(
        lambda optimizer, args, kwargs: rates.append(optimizer.param_groups[0]["lr"]))
    return rates, handle


@pytest.mark.parametrize("kind, warmup", [("transformer", 2), ("transformer", 0.25), ("gru", 2)])
def test_cosine_schedule_steps_per_batch_through_the_training_loop(kind, warmup):
    """4 windows of 8 per epoch whatever the random offset (N = 4 * 8 + 7), batches of 2: 2 batches an
    epoch, 4 epochs: 8 planned batches, whose rates are the hand-worked ones, across epoch boundaries;
    the schedule lives in the shared loop, so a recurrent network is stepped the same way."""
    vocab = Vocabulary.build(list("abcdefg"), "\n")
    train = np.random.default_rng(0).integers(0, len(vocab), 4 * 8 + 7)
    options = {"batch_size": 2, "epochs": 4, "lr": 0.1, "lr_schedule": "cosine", "warmup": warmup, "min_lr_ratio": 0.2,
               "sampling": "random", "optimizer": "adamw"}
    rates, handle = record_learning_rates()
    try:
        if kind == "transformer":
            model = TransformerLM(**{**TINY, **options}).fit(train, None, vocab=vocab)
            assert [r["lr"] for r in model.training_curve()] == pytest.approx([0.1 * m for m in HAND_WORKED[::2]])
        else:
            train_network(CELLS[kind].build(Architecture(len(vocab), 6)), train, bos_id=vocab.bos_id,
                          config=TrainConfig(num_steps=8, **options), device=CPU)
    finally:
        handle.remove()
    assert rates == pytest.approx([0.1 * m for m in HAND_WORKED], abs=1e-12)
