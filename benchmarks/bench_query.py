"""Scoring throughput: `lmbench score` against KenLM's `query` on the same ARPA model and the same text.

Usage (from the repository root, corpora in $LMBENCH_DATA; KenLM built from source, e.g. into
/path/to/kenlm/build/bin)::

    python benchmarks/bench_query.py --kenlm-bin /path/to/kenlm/build/bin --repeat 3

The model is lmbench's PTB 5gram-kn, exported as ARPA (``lmbench export``); KenLM reads that ARPA
file (and its own binary made with ``build_binary``), lmbench the same ARPA file as ``arpa:PATH`` and
its own checkpoint. The text is PTB's test split. Every measurement is a fresh process timed whole
(start-up and loading included, as a user meets it) and also, for lmbench, the scoring alone; medians
of ``--repeat`` runs. Both must give the same total log10 probability (lmbench's ``<unk>`` is the
ARPA ``<unk>`` KenLM scores the literal word with).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = r"""
import json, sys, time
start = time.perf_counter()
import lmbench
run, model, text_path = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(text_path, encoding="utf-8").read()
loaded = lmbench.load_run(run).model(model)
ready = time.perf_counter()
scores = loaded.score_text(text)
done = time.perf_counter()
print(json.dumps({"load": ready - start, "score": done - ready, "tokens": scores.n_tokens,
                  "log10": float(scores.logprobs.sum() / 2.302585092994046)}))
"""


def timed(command: list[str], **kwargs) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True, **kwargs)
    return time.perf_counter() - start, done.stdout


def lmbench_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "lmbench", *args]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kenlm-bin", type=Path, help="folder with KenLM's query and build_binary")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--order", type=int, default=5)
    args = parser.parse_args()
    data = Path(os.environ.get("LMBENCH_DATA", "../shared/corpora")) / "ptb"
    test = data / "ptb.test.txt"
    work = Path(tempfile.mkdtemp(prefix="lmbench-query-"))
    name = f"{args.order}gram-kn"
    subprocess.run(lmbench_cmd("run", "--corpus", "ptb", "--models", name, "--bootstrap", "0", "--out",
                               str(work / "run")), capture_output=True, check=True)
    arpa = work / "model.arpa"
    subprocess.run(lmbench_cmd("export", "--run", str(work / "run"), "--model", name, str(arpa)), check=True,
                   capture_output=True)
    subprocess.run(lmbench_cmd("run", "--corpus", "ptb", "--models", f"arpa:{arpa}", "--bootstrap", "0",
                               "--out", str(work / "arpa-run")), capture_output=True, check=True)
    n_lines = sum(1 for _ in open(test, encoding="utf-8"))
    rows = []

    def lmbench_rows(label: str, model: str, run: str) -> None:
        whole, inner, found = [], [], None
        for _ in range(args.repeat):
            seconds, out = timed([sys.executable, "-c", WORKER, run, model, str(test)])
            found = json.loads(out.strip().splitlines()[-1])
            whole.append(seconds)
            inner.append(found["score"])
        rows.append({"system": label, "tokens": found["tokens"], "process_s": statistics.median(whole),
                     "score_s": statistics.median(inner), "log10": found["log10"]})

    lmbench_rows(f"lmbench score ({name} checkpoint)", name, str(work / "run"))
    lmbench_rows("lmbench score (arpa: the same ARPA)", f"arpa:{arpa}", str(work / "arpa-run"))
    if args.kenlm_bin:
        binary = work / "model.binary"
        subprocess.run([str(args.kenlm_bin / "build_binary"), str(arpa), str(binary)], check=True, capture_output=True)
        for label, model_file in (("KenLM query (ARPA)", arpa), ("KenLM query (binary)", binary)):
            whole, total = [], None
            for _ in range(args.repeat):
                with open(test, "rb") as stdin:
                    seconds, out = timed([str(args.kenlm_bin / "query"), "-v", "summary", str(model_file)],
                                         stdin=stdin)
                whole.append(seconds)
                ppl = float(re.search(r"Perplexity including OOVs:\s*([\d.eE+-]+)", out).group(1))
                n_tokens = int(re.search(r"Tokens:\s*(\d+)", out).group(1))
                total = -n_tokens * math.log10(ppl)
            rows.append({"system": label, "tokens": n_tokens, "process_s": statistics.median(whole), "score_s": None,
                         "log10": total})
    print(f"PTB test: {n_lines:,} lines; model {name} (lmbench, exported as ARPA); median of {args.repeat} runs")
    print()
    print("| system | process (s) | scoring only (s) | tokens/s (process) | tokens/s (scoring) | total log10 prob |")
    print("|---|---|---|---|---|---|")
    tokens = rows[0]["tokens"]
    for row in rows:
        score = f"{row['score_s']:.3f}" if row["score_s"] is not None else ""
        rate = f"{tokens / row['score_s']:,.0f}" if row["score_s"] else ""
        print(f"| {row['system']} | {row['process_s']:.2f} | {score} | {tokens / row['process_s']:,.0f} | {rate} "
              f"| {row['log10']:.4f} |")
    base = rows[0]
    for row in rows[1:]:
        print(f"{row['system']}: process time {row['process_s'] / base['process_s']:.2f}x lmbench's checkpoint; "
              f"log10 difference {row['log10'] - base['log10']:+.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
