"""Speed, memory and perplexity of lmbench's ∞-gram (raw and Witten-Bell) beside 5-gram Kneser-Ney.

Usage (from the repository root, with the corpora in $LMBENCH_DATA)::

    python benchmarks/bench_infgram.py                       # WikiText-2, median of 3 repeats
    python benchmarks/bench_infgram.py --corpus ptb --repeat 1

The corpus is loaded once (as ``lmbench run`` does). For every model: ``fit`` (for the ∞-gram: building
the suffix-array index), ``eval test`` (scoring every test token), ``match stats`` (the ∞-gram's
``match_stats`` on test: mean matched context length and argmax accuracy), index size in bytes per
training token, test perplexity and the count of zero-probability test tokens. The n-gram rows are built
with ``lmbench.models.registry.resolve(NAME).build()``, exactly as a run builds them. Timings are the median of
``--repeat`` fits and evaluations in this one process (the machine is shared: compare rows of one run).

A last line checks the ∞-gram against the n-gram code: with ``max_context=4`` the Witten-Bell ∞-gram
must equal ``5gram-wb`` token for token.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def timed(function):
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def measure(build, ds, repeat: int) -> dict:
    """Fit, score test and (for the ∞-gram) match statistics, ``repeat`` times; median seconds."""
    train, valid, test = ds.splits["train"], ds.splits["valid"], ds.splits["test"]
    fits, evals, stats_s = [], [], []
    for _ in range(repeat):
        model, fit_s = timed(lambda: build().fit(train, valid, vocab=ds.vocab))
        result, eval_s = timed(lambda: model.evaluate(test))
        fits.append(fit_s)
        evals.append(eval_s)
        if hasattr(model, "match_stats"):
            stats, seconds = timed(lambda: model.match_stats(test))
            stats_s.append(seconds)
    row = {"fit_s": statistics.median(fits), "eval_s": statistics.median(evals), "ppl": result.perplexity,
           "zeros": result.n_zero_prob, "model": model}
    if stats_s:
        row.update(stats_s=statistics.median(stats_s), bytes_per_token=model.index_nbytes / train.size,
                   match=stats["mean_match_length"], accuracy=stats["accuracy"])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="wikitext-2")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    try:
        from lmbench.models.ngram.infgram import InfiniGram
        from lmbench.models.registry import resolve
        from lmbench.runs.runner import RunConfig, load_dataset
    except ImportError:  # lmbench 0.2's flat layout (PYTHONPATH=an older checkout, for side-by-side timings)
        from lmbench.models.infgram import InfiniGram
        from lmbench.registry import resolve
        from lmbench.runner import RunConfig, load_dataset

    ds, load_s = timed(lambda: load_dataset(RunConfig(models=["bigram"], corpus=args.corpus)))
    rows = {
        "infgram (raw, Liu et al.)": lambda: InfiniGram("none"),
        "infgram-wb": lambda: InfiniGram("wb"),
        "infgram-wb, cross_lines": lambda: InfiniGram("wb", cross_lines=True),
        "5gram-kn": lambda: resolve("5gram-kn").build(),
        "5gram-wb": lambda: resolve("5gram-wb").build(),
    }
    results = {label: measure(build, ds, args.repeat) for label, build in rows.items()}

    print(f"{args.corpus}: {ds.splits['train'].size:,} training tokens, {ds.splits['test'].size:,} test tokens, "
          f"vocabulary {len(ds.vocab):,}; corpus loaded in {load_s:.2f} s; median of {args.repeat} run(s), seconds")
    print()
    print("| model | fit (index build) | eval test | match stats | index bytes/train token | test ppl | "
          "zero-prob tokens | mean match length | argmax accuracy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, r in results.items():
        extra = (f"{r['stats_s']:.2f} | {r['bytes_per_token']:.1f} |" if "stats_s" in r else " | |")
        tail = f"{r['match']:.2f} | {r['accuracy']:.4f} |" if "match" in r else " | |"
        print(f"| {label} | {r['fit_s']:.2f} | {r['eval_s']:.2f} | {extra} {r['ppl']:.2f} | {r['zeros']:,} | {tail}")

    test = ds.splits["test"]
    capped = InfiniGram("wb", max_context=4).fit(ds.splits["train"], vocab=ds.vocab)
    gap = np.abs(capped.logprobs(test) - results["5gram-wb"]["model"].logprobs(test)).max()
    print()
    print(f"check: infgram-wb with max_context=4 vs 5gram-wb, largest |difference| of a test log-probability: "
          f"{gap:.2e}")


if __name__ == "__main__":
    main()
