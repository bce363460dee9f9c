"""PretrainedLM (``hf:``): a tiny GPT-2-shaped model and byte-level BPE tokenizer built and saved here (no
downloads), its scores checked against direct transformers forward passes, its windows, lines, errors,
checkpoints and determinism."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from lmbench.errors import LmbenchError
from lmbench.models.pretrained import PretrainedLM, window_plan

from .conftest import TINY_GPT2_POSITIONS as POSITIONS, TINY_GPT2_TEXT as TEXT, LazyModule, make_dataset, needs

pytestmark = needs("transformers")
transformers = LazyModule("transformers")

SHORT_LINES = ["the time traveller", "", "was expounding <unk> matter", "café é ü"]
LONG_LINES = [line for _ in range(4) for line in TEXT.split("\n")]


@pytest.fixture(scope="module")
def tiny_dir(tiny_gpt2):
    return tiny_gpt2


@pytest.fixture(scope="module")
def direct(tiny_dir):
    """The saved model and tokenizer loaded straight with transformers (float32, eval)."""
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32).eval()
    return model, transformers.AutoTokenizer.from_pretrained(tiny_dir)


def fitted(folder, **params) -> PretrainedLM:
    model = PretrainedLM(str(folder), device="cpu", progress=False, **params)
    model.check_params()
    return model.fit(np.zeros(3, dtype=np.int64), vocab=None)


def stream(lines) -> str:
    return "".join(line + "\n" for line in lines)


def direct_logprobs(model, inputs: list[int], targets: list[int]) -> np.ndarray:
    """log p(targets[t] | inputs[:t+1]) from one forward pass."""
    with torch.no_grad():
        logits = model(torch.tensor([inputs])).logits[0].double()  # (T, V)
    return torch.log_softmax(logits, -1)[torch.arange(len(targets)), torch.tensor(targets)].numpy()


def own_window_logprobs(model, inputs: list[int], targets: list[int], starts: np.ndarray) -> np.ndarray:
    """log p(targets[i] | inputs[starts[i]:i+1]) for every i, each token in its own window.

    Row i of one batch holds inputs[starts[i]:], cut to the longest window: a causal model's prediction
    at a position does not see the tokens after it, so row i's position i - starts[i] is token i's own
    forward pass.
    """
    n = len(targets)
    first = torch.as_tensor(starts)  # (N,)
    last = torch.arange(n) - first  # (N,) position of token i in its row
    positions = (first[:, None] + torch.arange(int(last.max()) + 1)).clamp(max=n - 1)  # (N, W)
    with torch.no_grad():
        logits = model(torch.tensor(inputs)[positions]).logits[torch.arange(n), last].double()  # (N, V)
    return torch.log_softmax(logits, -1)[torch.arange(n), torch.tensor(targets)].numpy()


# ---------------------------------------------------------------- scores


def test_per_token_logprobs_match_one_direct_forward_pass(tiny_dir, direct):
    net, tok = direct
    lm = fitted(tiny_dir)
    ids = tok(stream(SHORT_LINES), add_special_tokens=False)["input_ids"]
    assert 0 < len(ids) < POSITIONS
    expected = direct_logprobs(net, [tok.bos_token_id] + ids[:-1], ids)
    scores = lm.score_lines(SHORT_LINES)
    assert scores.own_tokens and scores.logprobs.dtype == np.float64
    np.testing.assert_allclose(scores.logprobs, expected, rtol=1e-6, atol=1e-6)
    assert lm.context_ == POSITIONS and lm.stride_ == POSITIONS // 2 and lm.prefix_id_ == 0


@pytest.mark.parametrize("context,stride", [(16, 5), (16, 16), (9, 1), (POSITIONS, 32)])
def test_sliding_windows_match_each_tokens_own_window(tiny_dir, direct, context, stride):
    """Token i past the first window is predicted inside the window that ends at the first of
    context, context + stride, ... (or N) beyond it, from at least context - stride + 1 tokens."""
    net, tok = direct
    lm = fitted(tiny_dir, context=context, stride=stride, batch_size=3)
    ids = tok(stream(LONG_LINES), add_special_tokens=False)["input_ids"]
    n = len(ids)
    assert n > 3 * context
    inputs = [tok.bos_token_id] + ids[:-1]
    got = lm.score_lines(LONG_LINES).logprobs
    i = np.arange(n)
    ends = np.where(i < context, context, np.minimum(n, context + -(-(i - context + 1) // stride) * stride))
    starts = ends - context
    seen = i - starts + 1
    np.testing.assert_allclose(got, own_window_logprobs(net, inputs, ids, starts), rtol=1e-5, atol=1e-5)
    assert seen[context:].min() >= context - stride + 1 and seen.max() <= context
    assert lm.fitted_summary()["min_context"] == context - stride + 1
    if stride > 1:  # the test has power: a full window per token changes the scores
        full = fitted(tiny_dir, context=context, stride=1).score_lines(LONG_LINES).logprobs
        assert np.abs(full - got).max() > 1e-3


def test_window_plan_scores_every_position_once():
    for n, context, stride in [(1, 4, 2), (4, 4, 2), (5, 4, 2), (100, 16, 5), (100, 16, 16), (33, 8, 1)]:
        starts, n_scored, length = window_plan(n, context, stride)
        assert length == min(n, context) and n_scored.sum() == n
        ends = starts + length
        assert ends[-1] == n and np.all(np.diff(ends) > 0)
        assert np.all(ends - n_scored == np.concatenate([[0], ends[:-1]]))  # scored ranges tile 0..N-1


def test_batching_and_kept_logits_do_not_change_scores(tiny_dir):
    base = fitted(tiny_dir, context=16, stride=6, batch_size=1).score_lines(LONG_LINES).logprobs
    batched = fitted(tiny_dir, context=16, stride=6, batch_size=7)
    np.testing.assert_allclose(batched.score_lines(LONG_LINES).logprobs, base, rtol=1e-6, atol=1e-6)
    batched.keeps_logits_ = False  # every position's logits, as for a model without logits_to_keep
    np.testing.assert_allclose(batched.score_lines(LONG_LINES).logprobs, base, rtol=1e-6, atol=1e-6)


def test_line_attribution_and_total_is_the_sum_of_line_sums(tiny_dir):
    lm = fitted(tiny_dir, context=16, stride=8)
    lines = LONG_LINES + SHORT_LINES
    text = stream(lines)
    scores = lm.score_lines(lines)
    ids, offsets = lm.encode(text)
    ends = offsets[:, 1]
    offsets = scores.line_offsets
    assert offsets.shape == (len(lines) + 1,) and offsets[0] == 0 and offsets[-1] == ids.size
    assert np.all(np.diff(offsets) >= 0)
    line_start = np.concatenate([[0], np.cumsum([len(line) + 1 for line in lines])])  # characters
    for i in range(len(lines)):  # each token's last character lies in its line (the line's "\n" included)
        last = ends[offsets[i]:offsets[i + 1]] - 1
        assert np.all((last >= line_start[i]) & (last < line_start[i + 1]))
    np.testing.assert_allclose(scores.line_nll_nats().sum(), -scores.logprobs.sum(), rtol=1e-12)
    # "\n\n" is one token here: it spans a line end and belongs to the later (empty) line
    pair = lm.tokenizer_.convert_tokens_to_ids(lm.tokenizer_.tokenize("\n\n"))
    assert len(pair) == 1
    one = lm.score_lines(["ab", "", "", "cd"])
    own, _ = lm.encode("ab\n\n\ncd\n")
    line_of = np.repeat(np.arange(4), np.diff(one.line_offsets))
    assert line_of[list(own).index(pair[0])] == 1


def test_score_split_of_a_run_and_the_summary(tiny_dir):
    lm = fitted(tiny_dir, context=32, stride=16)
    data = make_dataset(["a b c"] * 5, LONG_LINES[:6], SHORT_LINES)
    held = data.held_out("test")
    scores = lm.score_split(held)
    assert scores.own_tokens and scores.line_offsets.size == held.line_offsets.size
    np.testing.assert_array_equal(scores.logprobs, lm.score_lines(list(held.lines)).logprobs)
    summary = lm.fitted_summary()
    assert summary == {"model": str(tiny_dir), "context": 32, "stride": 16, "min_context": 17, "dtype": "float32",
                       "token_unit": f"{tiny_dir.name} tokens", "text_unk_literal": True}
    assert lm.n_params == sum(p.numel() for p in lm.model_.parameters()) > 0
    assert lm.valid_use() == "" and lm.family == "pretrained" and not lm.stochastic
    assert lm.environment()["model_source"] == str(tiny_dir.resolve())
    assert fitted(tiny_dir, dtype="model").fitted_summary()["dtype"] == "float32 (checkpoint's)"


def test_empty_text(tiny_dir):
    lm = fitted(tiny_dir)
    scores = lm.score_lines([])
    assert scores.logprobs.size == 0 and scores.line_offsets.tolist() == [0]


def test_deterministic_and_checkpoint_round_trip(tiny_dir, tmp_path):
    from lmbench.data.vocab import Vocabulary
    from lmbench.models.checkpoint import load_model

    lm = PretrainedLM(str(tiny_dir), context=16, stride=4, device="cpu", progress=False)
    lm.fit(np.zeros(2, dtype=np.int64), vocab=Vocabulary.build(["a", "b", "\n"], "\n"))
    first = lm.score_lines(LONG_LINES).logprobs
    np.testing.assert_array_equal(lm.score_lines(LONG_LINES).logprobs, first)
    assert lm.state_dict() == {}
    lm.save(tmp_path / "hf.pt")
    assert (tmp_path / "hf.pt").stat().st_size < 10_000  # the weights stay where they are
    loaded = load_model(tmp_path / "hf.pt")
    assert isinstance(loaded, PretrainedLM) and loaded.get_params() == lm.get_params()
    np.testing.assert_array_equal(loaded.score_lines(LONG_LINES).logprobs, first)


def test_registry_names_it(tiny_dir):
    from lmbench.models.registry import resolve

    spec = resolve(f"hf:{tiny_dir}", {"stride": 8})
    model = spec.build()
    assert isinstance(model, PretrainedLM) and model.name_or_path == str(tiny_dir) and model.stride == 8


def test_import_is_cheap():
    code = ("import sys, lmbench.models.pretrained, lmbench.data.hf_corpora; "
            "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'huggingface_hub') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------- one-line errors


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


def test_token_ids_are_refused(tiny_dir):
    lm = fitted(tiny_dir)
    for call in (lambda: lm.logprobs(np.zeros(3, dtype=np.int64)), lambda: lm.next_logprobs(np.zeros(0))):
        with pytest.raises(LmbenchError) as excinfo:
            call()
        assert "scores text" in one_line(excinfo) and "score_split" in one_line(excinfo)


@pytest.mark.parametrize("params,fragment", [
    ({"context": 0}, "context"), ({"stride": 0}, "stride"), ({"context": 8, "stride": 9}, "stride must be at most"),
    ({"batch_size": 0}, "batch_size"), ({"dtype": "float16"}, "dtype"), ({"device": "tpu"}, "device"),
    ({"progress": "no"}, "progress"), ({"context": 2.5}, "context"), ({"local_files_only": "yes"}, "local_files_only"),
])
def test_bad_parameters(params, fragment):
    with pytest.raises(LmbenchError) as excinfo:
        PretrainedLM("gpt2", **params).check_params()
    assert fragment in one_line(excinfo)


def test_context_beyond_the_models_positions(tiny_dir):
    with pytest.raises(LmbenchError) as excinfo:
        fitted(tiny_dir, context=POSITIONS + 1)
    assert f"{POSITIONS} positions" in one_line(excinfo)


def test_without_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers raises ImportError
    with pytest.raises(LmbenchError) as excinfo:
        PretrainedLM("gpt2", device="cpu").fit(np.zeros(1, dtype=np.int64), vocab=None)
    assert '.[hf]' in one_line(excinfo)


def test_unknown_hub_name_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(LmbenchError) as excinfo:
        fitted("no-such-org/no-such-model-xyz")
    assert "not in the Hugging Face cache" in one_line(excinfo) and "HF_HUB_OFFLINE" in one_line(excinfo)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(LmbenchError) as excinfo:
        fitted("no-such-model-xyz", local_files_only=True)
    assert "local_files_only" in one_line(excinfo)
    assert not list(tmp_path.iterdir())


def test_folders_that_are_not_models(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(LmbenchError) as excinfo:
        fitted(tmp_path)
    assert "not a saved model (no config.json)" in one_line(excinfo)
    with pytest.raises(LmbenchError) as excinfo:
        fitted(tmp_path / "notes.txt")
    assert "is a file" in one_line(excinfo)
    with pytest.raises(LmbenchError) as excinfo:
        fitted("./no/such/model")
    assert "model folder not found" in one_line(excinfo)
    (tmp_path / "config.json").write_text('{"hello": 1}')
    with pytest.raises(LmbenchError) as excinfo:
        fitted(tmp_path)
    assert "not a model transformers knows" in one_line(excinfo)


def test_a_config_without_weights_or_tokenizer(tiny_dir, tmp_path):
    import shutil

    shutil.copy(tiny_dir / "config.json", tmp_path / "config.json")
    with pytest.raises(LmbenchError) as excinfo:
        fitted(tmp_path)
    assert "tokenizer" in one_line(excinfo)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_dir / name, tmp_path / name)
    with pytest.raises(LmbenchError) as excinfo:
        fitted(tmp_path)
    assert "weights cannot be loaded" in one_line(excinfo)


def test_a_tokenizer_without_a_fast_version(tiny_dir, tmp_path):
    import shutil

    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_dir / name, tmp_path / name)
    transformers.ByT5Tokenizer().save_pretrained(tmp_path)  # byte-level, Python only
    with pytest.raises(LmbenchError) as excinfo:
        fitted(tmp_path)
    assert "no fast version" in one_line(excinfo)


def test_a_model_larger_than_memory(tiny_dir, monkeypatch):
    import lmbench.models.pretrained as pretrained

    weights = pretrained.weight_summary(str(tiny_dir), True, None, None)
    n_params = sum(p.numel() for p in transformers.AutoModelForCausalLM.from_pretrained(tiny_dir).parameters())
    assert weights["stored_bytes"] == 4 and weights["n_params"] >= n_params  # tied weights stored once or twice
    monkeypatch.setattr(pretrained, "available_memory_bytes", lambda device: 1000)
    loaded = []
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: loaded.append(1))
    with pytest.raises(LmbenchError) as excinfo:
        fitted(tiny_dir)
    assert "GiB for its weights in float32" in one_line(excinfo) and "0.0 GiB available" in one_line(excinfo)
    assert not loaded  # refused before any weight is read


def test_a_tokenizer_that_loses_text_is_reported(tmp_path):
    """Unknown tokens and characters in no token are counted, warned of and stated in the note."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["<s>", "<unk>", "the", "time", "traveller"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", unk_token="<unk>")
    fast.save_pretrained(tmp_path)
    config = transformers.GPT2Config(vocab_size=len(words), n_layer=1, n_embd=8, n_head=2, n_positions=16)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path)
    lm = fitted(tmp_path)
    with pytest.warns(UserWarning, match="loses part of the scored text"):
        scores = lm.score_lines(["the time machine", "traveller"])
    assert scores.logprobs.size == 4  # the, time, <unk>, traveller: no line ends
    assert lm.fitted_summary()["own_unk_tokens"] == 1 and lm.fitted_summary()["lost_chars"] == 2  # the line ends
