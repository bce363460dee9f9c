"""lmbench's PretrainedLM against lm-evaluation-harness's rolling log-likelihood (same text, model, context, stride).

Usage (from the repository root; needs ``pip install -e ".[hf]" lm-eval``)::

    python benchmarks/bench_lm_eval.py                        # a tiny GPT-2 built here, The Time Machine's test split
    python benchmarks/bench_lm_eval.py --model gpt2 --lines 400 --device cuda
    python benchmarks/bench_lm_eval.py --context-len 65       # lm-eval windows with 65 tokens of context
    python benchmarks/bench_lm_eval.py --corpus wikitext-2 --save-model tiny-gpt2-wt2   # keep the model built

The text is a split's lines as lmbench reads them, one stream with one "\\n" per line. lm-eval scores
it with ``HFLM.loglikelihood_rolling`` (the wikitext task's word and byte perplexity come from it):
windows of ``max_length`` tokens from ``utils.get_rolling_token_windows(context_len=1)``, the first token
predicted from the prefix token (BOS, else EOS). With ``--context-len C > 1`` it scores lm-eval's own
``get_rolling_token_windows(context_len=C)`` windows with ``HFLM._loglikelihood_tokens`` (what
``loglikelihood_rolling`` does, with the C it fixes at 1). lmbench scores the same text with
``PretrainedLM(context=max_length, stride=max_length - C + 1)``. The script checks first that both
read the same tokens, each token with the same number of tokens before it, then prints both total
NLLs in nats and their relative difference (target: below 1e-6).

Without ``--model`` a tiny GPT-2-shaped model (4 layers, 256 positions, byte-level BPE of 2,000 tokens
trained on the split's training text, random weights) is built and saved in a temporary folder:
no network is needed.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_tiny_model(folder: Path, train_lines: list[str], positions: int = 256) -> None:
    """Save a byte-level BPE tokenizer trained on ``train_lines`` and a random 4-layer GPT-2 in ``folder``."""
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([line + "\n" for line in train_lines], trainer)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                                eos_token="<|endoftext|>")
    fast.save_pretrained(folder)
    config = transformers.GPT2Config(vocab_size=len(fast), n_layer=4, n_embd=64, n_head=4, n_positions=positions,
                                     bos_token_id=0, eos_token_id=0, initializer_range=0.2)
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)


def lm_eval_windows(token_list: list[int], prefix: int, max_length: int, context_len: int):
    """lm-eval's (context, continuation) pairs for a token stream, as its loglikelihood_rolling makes them."""
    from lm_eval import utils

    return [utils.make_disjoint_window(w) for w in
            utils.get_rolling_token_windows(token_list=token_list, prefix_token=prefix, max_seq_len=max_length,
                                            context_len=context_len)]


def lm_eval_nll(hflm, text: str, context_len: int) -> tuple[float, int, np.ndarray]:
    """lm-eval's total NLL in nats of ``text``, its token count, and the tokens each prediction sees (M,)."""
    from lm_eval.api.instance import Instance

    tokens = hflm.tok_encode(text)
    windows = lm_eval_windows(tokens, hflm.prefix_token_id, hflm.max_length, context_len)
    seen = np.concatenate([len(ctx) + np.arange(len(cont)) for ctx, cont in windows])  # (M,)
    if context_len == 1:
        request = Instance("loglikelihood_rolling", {}, (text,), 0)
        total = hflm.loglikelihood_rolling([request], disable_tqdm=True)[0]
    else:
        results = hflm._loglikelihood_tokens([(None, ctx, cont) for ctx, cont in windows], disable_tqdm=True)
        total = sum(logprob for logprob, _ in results)
    return -float(total), len(tokens), np.minimum(seen, hflm.max_length)


def lmbench_seen(n_tokens: int, context: int, stride: int) -> np.ndarray:
    """The tokens each of lmbench's predictions sees (the prefix token included), from its window plan (M,)."""
    from lmbench.models.pretrained import window_plan

    starts, n_scored, _ = window_plan(n_tokens, context, stride)
    return np.arange(n_tokens) - np.repeat(starts, n_scored) + 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a model folder or hub name (default: a tiny GPT-2 built here)")
    parser.add_argument("--corpus", default="timemachine", help="an lmbench --corpus value (default timemachine)")
    parser.add_argument("--split", default="test", choices=("valid", "test"))
    parser.add_argument("--lines", type=int, default=None, help="score only the first N lines")
    parser.add_argument("--max-length", type=int, default=None,
                        help="lm-eval's max_length = lmbench's context (default: the model's positions, at most 2048)")
    parser.add_argument("--context-len", type=int, default=1,
                        help="lm-eval's context_len (1: loglikelihood_rolling); lmbench's stride = max_length - C + 1")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--save-model", metavar="DIR", default=None,
                        help="build the tiny GPT-2 in DIR and keep it (for `lmbench run --models hf:DIR`)")
    args = parser.parse_args(argv)

    from lmbench.data.corpora import load_corpus
    from lmbench.data.dataset import build_dataset
    from lmbench.data.tokenizers import Tokenizer

    raw = load_corpus(args.corpus)
    held = build_dataset(raw, Tokenizer(raw.tokenizer, normalize=raw.normalize)).held_out(args.split)
    lines = list(held.lines)[:args.lines]  # as a run of lmbench reads them: normalized, without line ends
    text = "".join(line + "\n" for line in lines)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            model = args.save_model or str(Path(tmp) / "tiny-gpt2")
            build_tiny_model(Path(model), raw.splits["train"])
        return compare(model, lines, text, args)


def _default_context(model: str, device: str) -> int:
    """PretrainedLM's default context for ``model`` (its positions, at most 2048)."""
    from lmbench.models.pretrained import PretrainedLM

    return PretrainedLM(model, device=device, progress=False).fit(np.zeros(1, dtype=np.int64), vocab=None).context_


def compare(model: str, lines: list[str], text: str, args) -> int:
    import lm_eval
    import transformers
    from lm_eval.models.huggingface import HFLM

    from lmbench.models.pretrained import PretrainedLM

    context = args.max_length or _default_context(model, args.device)
    if not 1 <= args.context_len <= context:
        raise SystemExit(f"--context-len must be in 1..{context}")
    stride = context - args.context_len + 1
    lm = PretrainedLM(model, context=context, stride=stride, batch_size=args.batch_size, device=args.device,
                      progress=False)
    lm.check_params()
    lm.fit(np.zeros(1, dtype=np.int64), vocab=None)  # loads the model: it is never trained

    hflm = HFLM(pretrained=model, device=args.device, dtype="float32", batch_size=args.batch_size,
                max_length=context)
    start = time.perf_counter()
    lm_eval_total, lm_eval_tokens, lm_eval_seen = lm_eval_nll(hflm, text, args.context_len)
    lm_eval_seconds = time.perf_counter() - start
    start = time.perf_counter()
    scores = lm.score_lines(lines)
    lmbench_seconds = time.perf_counter() - start
    lmbench_total = -float(scores.logprobs.sum())
    own_ids, _ = lm.encode(text)
    same_tokens = own_ids.tolist() == hflm.tok_encode(text)
    same_windows = lm_eval_seen.shape == (own_ids.size,) and bool(
        np.array_equal(lm_eval_seen, lmbench_seen(own_ids.size, context, stride)))

    n_bytes = len(text.encode("utf-8"))
    shown = model if args.model else "tiny GPT-2 (built here)"
    print(f"lm-eval {getattr(lm_eval, '__version__', '?')}, transformers {transformers.__version__}, model {shown}, "
          f"device {args.device}")
    print(f"text: {args.corpus} {args.split}, {len(lines):,} lines, {n_bytes:,} bytes, {own_ids.size:,} model tokens")
    print(f"windows: lm-eval max_length={context}, context_len={args.context_len}  =  lmbench context={context}, "
          f"stride={stride} (min_context={context - stride + 1})")
    print(f"same tokens: {same_tokens}; every token sees the same number of tokens in both: {same_windows}")
    print(f"{'':8} {'total NLL (nats)':>20} {'tokens':>8} {'bits/byte':>10} {'seconds':>8}")
    for name, total, n, seconds in (("lm-eval", lm_eval_total, lm_eval_tokens, lm_eval_seconds),
                                    ("lmbench", lmbench_total, scores.logprobs.size, lmbench_seconds)):
        print(f"{name:8} {total:20.6f} {n:8d} {total / math.log(2) / n_bytes:10.6f} {seconds:8.2f}")
    relative = abs(lmbench_total - lm_eval_total) / abs(lm_eval_total)
    verdict = "agree" if relative < 1e-6 and same_tokens and same_windows else "DISAGREE"
    print(f"relative difference {relative:.2e}: {verdict} (target < 1e-6)")
    return 0 if verdict == "agree" else 1


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
