"""Speed of the paired line bootstrap on WikiText-2 test, against a naive per-resample loop.

Usage (from the repository root, with the corpora in $LMBENCH_DATA)::

    LMBENCH_DATA=/work/shared/corpora python benchmarks/bench_bootstrap.py
    python benchmarks/bench_bootstrap.py --resamples 1000 --naive-resamples 5 --repeat 3

Fits ten cheap n-gram models (orders 1-5, interpolated Kneser-Ney and Witten-Bell) on WikiText-2
train, scores test (245,569 tokens in 4,358 lines), then times what the issue's 5 s target covers:
per-line sums of the per-token scores, the bootstrap with B resamples, the intervals of every
model and all 45 pairwise comparisons. The median of ``--repeat`` timings is reported.

The naive reference draws line indices with ``np.random.choice`` for each resample and recomputes
every model's perplexity from the per-token scores of the drawn lines (a Python loop over resamples,
models and drawn lines). It runs for ``--naive-resamples`` resamples only and its time for B
resamples is EXTRAPOLATED linearly. It also serves as a check: fed the same draws as the vectorized
code (from ``resample_counts``), its per-resample perplexities must agree.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

MODELS = [f"{order}-{kind}" for kind in ("kn", "wb") for order in ("unigram", "bigram", "trigram", "4gram", "5gram")]


def load_scores(corpus: str) -> tuple[dict[str, np.ndarray], np.ndarray, int]:
    """Per-token test log-probabilities of every model of :data:`MODELS`, the test ids and the eos id."""
    from lmbench.models.registry import resolve
    from lmbench.runs.runner import RunConfig, load_dataset

    dataset = load_dataset(RunConfig(models=MODELS, corpus=corpus))
    train, valid, test = (dataset.splits[s] for s in ("train", "valid", "test"))
    scores = {}
    for name in MODELS:
        start = time.perf_counter()
        model = resolve(name).build().fit(train, valid, vocab=dataset.vocab)
        scores[name] = model.logprobs(test)
        print(f"  {name:>12}: fitted and scored in {time.perf_counter() - start:5.2f} s, "
              f"test ppl {np.exp(-scores[name].mean()):8.2f}")
    return scores, test, dataset.vocab.eos_id


def vectorized(scores: dict[str, np.ndarray], ids: np.ndarray, eos_id: int, n_resamples: int):
    """What the issue times: line sums, bootstrap, intervals and all pairs."""
    from lmbench.analysis.bootstrap import bootstrap_scores

    result = bootstrap_scores(scores, ids, eos_id, n_resamples=n_resamples, seed=0)
    return result, result.intervals(), result.pairwise()


def naive(scores: dict[str, np.ndarray], offsets: np.ndarray, draws: list[np.ndarray]) -> np.ndarray:
    """Per-resample perplexities (B, M), recomputed from per-token scores in Python loops."""
    out = np.empty((len(draws), len(scores)))
    for b, lines in enumerate(draws):
        for m, logprobs in enumerate(scores.values()):
            chosen = np.concatenate([logprobs[offsets[i]:offsets[i + 1]] for i in lines])
            out[b, m] = np.exp(-chosen.mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="wikitext-2")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--naive-resamples", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from lmbench.analysis.bootstrap import resample_counts
    from lmbench.data.dataset import line_offsets

    print(f"fitting {len(MODELS)} models on {args.corpus} ...")
    scores, ids, eos_id = load_scores(args.corpus)
    offsets = line_offsets(ids, eos_id)
    n_lines, n_models = offsets.size - 1, len(scores)

    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        result, intervals, pairs = vectorized(scores, ids, eos_id, args.resamples)
        times.append(time.perf_counter() - start)
    fast = statistics.median(times)

    counts = resample_counts(n_lines, args.naive_resamples, seed=0)  # the vectorized code's first draws
    draws = [np.repeat(np.arange(n_lines), row) for row in counts]
    reference = naive(scores, offsets, draws)
    agree = np.allclose(reference, result.resampled_perplexity[:args.naive_resamples], rtol=1e-9)
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    naive(scores, offsets, [rng.choice(n_lines, n_lines) for _ in range(args.naive_resamples)])
    slow = (time.perf_counter() - start) / args.naive_resamples * args.resamples

    print(f"\n{args.corpus} test: {ids.size:,} tokens, {n_lines:,} lines; {n_models} models, "
          f"{len(pairs)} pairs, B={args.resamples}")
    print(f"vectorized bootstrap (line sums + resamples + intervals + all pairs): {fast:.3f} s "
          f"(median of {args.repeat}; {fast / 5.0:.3f} of the 5 s target)")
    print(f"naive loop (np.random.choice per resample, recompute from tokens): {slow:.1f} s for B={args.resamples}, "
          f"EXTRAPOLATED from {args.naive_resamples} resamples; {slow / fast:.0f}x slower")
    print(f"naive and vectorized per-resample perplexities agree on the same draws: {agree}")
    print("\n" + intervals.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    print("\n" + pairs.head(10).to_string(index=False, float_format=lambda x: f"{x:.4f}"))


if __name__ == "__main__":
    main()
