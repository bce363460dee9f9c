"""Speed and memory of lmbench's Kneser-Ney against KenLM's lmplz + query, on one machine.

Usage (from the repository root, with the corpora in $LMBENCH_DATA)::

    python benchmarks/bench_kn.py                                  # PTB, 5-gram, lmbench only
    python benchmarks/bench_kn.py --kenlm-bin /path/to/kenlm/build/bin
    python benchmarks/bench_kn.py --corpus wikitext-2 --repeat 1

Every measurement runs in a fresh process, so its peak resident memory is its own; each is repeated
``--repeat`` times and the median is reported (the machine is shared: ratios measured in one run of
this script are what count).

lmbench rows: ``load`` reads, tokenizes and encodes the corpus (once for all models of a run), ``fit``
counts and estimates, ``eval`` scores the test split; ``fit+eval`` is what the issue's target
compares. ``process`` is the worker's whole wall time, Python start-up and imports included, and
``peak RSS`` the worker's maximum resident memory (the interpreter, numpy and torch included).

KenLM rows (with ``--kenlm-bin``): ``lmplz -o N -S 1G`` on the training text (it reads and counts
the text itself) and ``query -v summary`` on the test text (which includes loading the ARPA file).
lmplz refuses a literal ``<unk>`` in its input, so every ``<unk>`` of the three files is first
renamed to an ordinary word (``UNKWORD``) in a temporary folder: KenLM and lmbench then both treat
the corpus's ``<unk>`` as an ordinary word of a closed vocabulary, and predict the same tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

UNK_RENAMED = "UNKWORD"


# ---------------------------------------------------------------- worker: one lmbench measurement


def worker(corpus: str, model_name: str) -> dict:
    start = time.perf_counter()
    try:
        from lmbench.data.corpora import load_corpus
        from lmbench.data.dataset import build_dataset
        from lmbench.data.tokenizers import Tokenizer
        from lmbench.models.registry import resolve
    except ImportError:  # lmbench 0.2's flat layout (PYTHONPATH=an older checkout, for side-by-side timings)
        from lmbench.corpora import load_corpus
        from lmbench.data import build_dataset
        from lmbench.registry import resolve
        from lmbench.tokenize import Tokenizer

    imported = time.perf_counter()
    raw = load_corpus(corpus)
    ds = build_dataset(raw, Tokenizer(raw.tokenizer, raw.normalize))
    loaded = time.perf_counter()
    model = resolve(model_name).build()
    model.fit(ds.splits["train"], ds.splits["valid"], vocab=ds.vocab)
    fitted = time.perf_counter()
    test = model.evaluate(ds.splits["test"])
    evaluated = time.perf_counter()
    valid = model.evaluate(ds.splits["valid"])
    return {"import_s": imported - start, "load_s": loaded - imported, "fit_s": fitted - loaded,
            "eval_s": evaluated - fitted, "fit_eval_s": evaluated - loaded,
            "test_ppl": test.perplexity, "valid_ppl": valid.perplexity, "test_tokens": test.n_tokens,
            "vocab": len(ds.vocab), "n_params": model.n_params,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_worker(corpus: str, model_name: str) -> dict:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--worker", "--corpus", corpus, "--model", model_name],
                         check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - start
    return result


# ---------------------------------------------------------------- KenLM


def timed(command: list[str], stdin_path: Path, stdout_path: Path | None = None) -> tuple[float, float, str]:
    """Run a command with files as stdin/stdout; return (wall seconds, peak RSS MB, stderr)."""
    with open(stdin_path, "rb") as stdin, (open(stdout_path, "wb") if stdout_path else nullcontext()) as stdout:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdin=stdin, stdout=stdout if stdout_path else subprocess.PIPE,
                                stderr=subprocess.PIPE)
        captured = proc.stdout.read() if not stdout_path else b""   # query's report is a few lines
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)   # reap it ourselves: wait4 gives this child's own peak RSS
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {err.decode(errors='replace')[-500:]}")
    return wall, usage.ru_maxrss / 1024, (captured + err).decode(errors="replace")


def kenlm_files(corpus: str, folder: Path) -> dict:
    """The corpus's split files with <unk> renamed to an ordinary word."""
    try:
        from lmbench.data.corpora import NAMED_CORPORA, locate_named
    except ImportError:  # lmbench 0.2's flat layout
        from lmbench.corpora import NAMED_CORPORA, locate_named

    located = locate_named(NAMED_CORPORA[corpus])
    if located is None:
        raise SystemExit(f"{corpus} not found; set LMBENCH_DATA")
    source = located[1]
    out = {}
    for f in NAMED_CORPORA[corpus].files:
        text = (source / f.filename).read_text(encoding="utf-8")
        path = folder / f"{f.split}.txt"
        path.write_text(re.sub(r"<unk>", UNK_RENAMED, text), encoding="utf-8")
        out[f.split] = path
    return out


def run_kenlm(bin_dir: Path, files: dict, order: int, folder: Path) -> dict:
    arpa = folder / f"kenlm{order}.arpa"
    lmplz_s, lmplz_mb, _ = timed([str(bin_dir / "lmplz"), "-o", str(order), "-S", "1G", "-T", str(folder)],
                                 files["train"], arpa)
    query_s, query_mb, report = timed([str(bin_dir / "query"), "-v", "summary", str(arpa)], files["test"])
    ppl = float(re.search(r"Perplexity including OOVs:\s*([0-9.]+)", report).group(1))
    return {"lmplz_s": lmplz_s, "lmplz_rss_mb": lmplz_mb, "query_s": query_s, "query_rss_mb": query_mb,
            "total_s": lmplz_s + query_s, "test_ppl": ppl}


# ---------------------------------------------------------------- report


def median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="ptb")
    parser.add_argument("--order", type=int, default=5)
    parser.add_argument("--model", default=None, help="lmbench model name (default: <order>gram-kn)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kenlm-bin", type=Path, default=None, help="folder holding lmplz and query")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    model_name = args.model or f"{args.order}gram-kn"
    if args.worker:
        print(json.dumps(worker(args.corpus, model_name)))
        return

    ours = [run_worker(args.corpus, model_name) for _ in range(args.repeat)]
    first = ours[0]
    print(f"{args.corpus}: vocabulary {first['vocab']:,}, {first['test_tokens']:,} test tokens; "
          f"median of {args.repeat} run(s), seconds")
    print()
    print("| system | fit (lmplz) | eval test (query) | fit+eval | load corpus | process | peak RSS | valid ppl | test ppl |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| lmbench {model_name} | {median(ours, 'fit_s'):.2f} | {median(ours, 'eval_s'):.2f} | "
          f"{median(ours, 'fit_eval_s'):.2f} | {median(ours, 'load_s'):.2f} | {median(ours, 'process_s'):.2f} | "
          f"{median(ours, 'peak_rss_mb'):.0f} MB | {first['valid_ppl']:.2f} | {first['test_ppl']:.2f} |")
    if args.kenlm_bin:
        with tempfile.TemporaryDirectory() as tmp:
            files = kenlm_files(args.corpus, Path(tmp))
            theirs = [run_kenlm(args.kenlm_bin, files, args.order, Path(tmp)) for _ in range(args.repeat)]
        peak = max(median(theirs, "lmplz_rss_mb"), median(theirs, "query_rss_mb"))
        print(f"| KenLM lmplz -o {args.order} + query | {median(theirs, 'lmplz_s'):.2f} | {median(theirs, 'query_s'):.2f} | "
              f"{median(theirs, 'total_s'):.2f} | (in lmplz) | {median(theirs, 'total_s'):.2f} | {peak:.0f} MB | | "
              f"{theirs[0]['test_ppl']:.2f} |")
        print()
        ratio = median(ours, "fit_eval_s") / median(theirs, "total_s")
        ratio_process = median(ours, "process_s") / median(theirs, "total_s")
        print(f"lmbench fit+eval / KenLM lmplz+query = {ratio:.2f}x; whole lmbench process (start-up, imports, "
              f"corpus loading included) / KenLM = {ratio_process:.2f}x")
        print(f"test perplexity: lmbench {first['test_ppl']:.4f}, KenLM {theirs[0]['test_ppl']:.4f} "
              f"({100 * (first['test_ppl'] / theirs[0]['test_ppl'] - 1):+.3f}%)")


if __name__ == "__main__":
    main()
