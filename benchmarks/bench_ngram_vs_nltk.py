"""Fit + evaluate time of lmbench's add-one n-gram models against nltk.lm's Laplace, on PTB.

Both sides get the same tokenized sentences. nltk.lm fits with ``padded_everygram_pipeline`` (its
vocabulary is built inside ``fit``) and is scored token by token with ``logscore`` on exactly the
82,430 test targets lmbench scores (one ``</s>`` per line; see ../shared/reference). lmbench is
timed twice: the model alone (fit on shared integer ids + evaluate), and end to end including its
vocabulary building and encoding of train and test, which a run does once for all its models.

Usage:
    LMBENCH_DATA=../shared/corpora python benchmarks/bench_ngram_vs_nltk.py [--repeats 5] [--nltk-lines N]

``--nltk-lines N`` fits nltk on the first N training lines only and extrapolates its fit time
linearly in the number of training tokens (the printout says so).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

try:
    from lmbench.data.corpora import load_corpus
    from lmbench.data.dataset import build_dataset
    from lmbench.data.tokenizers import Tokenizer
    from lmbench.models.ngram.mle import MLE, AddK
except ImportError:  # lmbench 0.2's flat layout (PYTHONPATH=an older checkout, for side-by-side timings)
    from lmbench.corpora import load_corpus
    from lmbench.data import build_dataset
    from lmbench.models.ngram import MLE, AddK
    from lmbench.tokenize import Tokenizer


def timed(fn, repeats: int):
    """(median seconds, last result) of calling fn() `repeats` times."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def lmbench_model(raw, cls, order, **params):
    """Model-only timing: fit on ids, evaluate test."""
    ds = build_dataset(raw, Tokenizer("word"))
    def run():
        model = cls(order=order, **params).fit(ds.splits["train"], vocab=ds.vocab)
        return model.evaluate(ds.splits["test"])
    return run


def lmbench_end_to_end(raw, cls, order, **params):
    """Vocabulary + encoding + fit + evaluate (tokenized text is given to both libraries)."""
    def run():
        ds = build_dataset(raw, Tokenizer("word"))
        model = cls(order=order, **params).fit(ds.splits["train"], vocab=ds.vocab)
        return model.evaluate(ds.splits["test"])
    return run


def nltk_laplace(train_sents, test_sents, order):
    """nltk.lm Laplace: fit, then score every lmbench target token with nltk's n-1 <s> padding."""
    from nltk.lm import Laplace
    from nltk.lm.preprocessing import padded_everygram_pipeline

    def fit():
        model = Laplace(order)
        model.fit(*padded_everygram_pipeline(order, train_sents))
        return model

    def evaluate(model):
        total, n = 0.0, 0
        for sent in test_sents:
            tokens = ["<s>"] * (order - 1) + [model.vocab.lookup(w) for w in sent] + ["</s>"]
            for i in range(order - 1, len(tokens)):
                total -= model.logscore(tokens[i], tokens[i - order + 1:i]) * math.log(2)
                n += 1
        return math.exp(total / n), n
    return fit, evaluate


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="lmbench repetitions (median reported)")
    parser.add_argument("--nltk-lines", type=int, default=None, help="fit nltk on this many train lines and extrapolate")
    args = parser.parse_args()

    raw = load_corpus("ptb")
    train_sents = [line.split() for line in raw.splits["train"]]
    test_sents = [line.split() for line in raw.splits["test"]]
    prep_s, ds = timed(lambda: build_dataset(raw, Tokenizer("word")), args.repeats)
    print(f"PTB: train {ds.stats['train'].n_tokens:,} tokens, test {ds.stats['test'].n_tokens:,} targets, "
          f"|V| = {len(ds.vocab):,}; lmbench vocabulary + encoding of all splits: {prep_s:.3f} s\n")

    rows = []
    for order in (2, 3):
        model_s, result = timed(lmbench_model(raw, AddK, order, k=1.0), args.repeats)
        e2e_s, _ = timed(lmbench_end_to_end(raw, AddK, order, k=1.0), args.repeats)
        fit, evaluate = nltk_laplace(train_sents[: args.nltk_lines] if args.nltk_lines else train_sents, test_sents, order)
        start = time.perf_counter()
        nltk_model = fit()
        nltk_fit_s = time.perf_counter() - start
        if args.nltk_lines:
            sampled = sum(len(s) + 1 for s in train_sents[: args.nltk_lines])
            nltk_fit_s *= ds.stats["train"].n_tokens / sampled
        start = time.perf_counter()
        nltk_ppl, nltk_n = evaluate(nltk_model)
        nltk_eval_s = time.perf_counter() - start
        nltk_s = nltk_fit_s + nltk_eval_s
        rows.append((order, model_s, e2e_s, nltk_s, result.perplexity, nltk_ppl, nltk_n))

    print(f"{'model':<14}{'lmbench model':>14}{'lmbench e2e':>13}{'nltk.lm':>10}{'ratio model':>13}{'ratio e2e':>11}"
          f"{'ppl lmbench':>13}{'ppl nltk':>10}")
    for order, model_s, e2e_s, nltk_s, ppl, nltk_ppl, nltk_n in rows:
        name = {2: "bigram-add1", 3: "trigram-add1"}[order]
        print(f"{name:<14}{model_s:>13.3f}s{e2e_s:>12.3f}s{nltk_s:>9.2f}s{nltk_s / model_s:>12.0f}x{nltk_s / e2e_s:>10.0f}x"
              f"{ppl:>13.2f}{nltk_ppl:>10.2f}")
        assert nltk_n == ds.stats["test"].n_tokens
    if args.nltk_lines:
        print(f"(nltk fit time extrapolated from the first {args.nltk_lines} training lines)")
    print("ppl differs by construction: nltk's |V| counts <s> (never predicted) and its unused <UNK>; lmbench's |V| = 10,000.\n")

    for label, cls, params in (("5gram-add1", AddK, {"k": 1.0}), ("5gram (MLE)", MLE, {})):
        seconds, result = timed(lmbench_model(raw, cls, 5, **params), args.repeats)
        print(f"{label:<14} fit + evaluate test: {seconds:.3f} s (ppl {result.perplexity:.2f}, "
              f"{result.n_zero_prob:,} zero-probability tokens)")


if __name__ == "__main__":
    main()
