"""Fingerprints of everything a user sees from a fixed set of runs, to show that a change alters none of it.

Usage (from the repository root, with the corpora in $LMBENCH_DATA)::

    python benchmarks/fingerprints.py record benchmarks/fingerprints-0.2.json   # before a change
    python benchmarks/fingerprints.py check benchmarks/fingerprints-0.2.json    # after it

The runs go through the command line only (``python -m lmbench ...``), so the script does not depend
on the package's internal layout. For every run directory it hashes:

* every array of ``scores/*.npz`` (sha256 of dtype, shape and bytes: the per-token log-probabilities
  and the shared targets);
* every row of ``perplexity.csv``, all columns except the timings (``fit_seconds``, ``eval_seconds``),
  the ``note`` column with its measured throughput (``train_tokens_per_s=...``) removed;
* ``compare.csv``, ``buckets.csv``, ``seeds.csv`` and ``sweep.csv`` column by column;

and the standard output of ``lmbench score``, ``lmbench generate`` and ``lmbench export`` (the
ARPA file). ``check`` reruns everything and lists each fingerprint that differs (exit 1), so an
unchanged tool prints "all N fingerprints identical".

The run ``ptb-disk`` forces n-gram tables onto disk (``--memory 2M``); recorded before the redesign,
when only Kneser-Ney, absolute discounting and Witten-Bell could run on disk, its fingerprints are
those of the in-memory fits, so ``check`` also shows every family's on-disk scores equal to them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

NGRAM_SUFFIXES = ["", "add1", "addk", "kn", "kn1", "wb", "abs", "katz", "interp", "stupid"]
ORDERS = {2: "bigram", 3: "trigram", 5: "5gram"}


def ngram_names(suffixes) -> list[str]:
    return [ORDERS[n] + (f"-{s}" if s else "") for s in suffixes for n in ORDERS]


#: (name, lmbench arguments). Neural models train one epoch with seed 0 (deterministic on a CPU).
RUNS = [
    ("tm-default", ["run", "--models", "bigram,trigram-add1,5gram-kn,lstm,deep-lstm,mix(5gram-kn+lstm)",
                    "--epochs", "1"]),
    ("tm-neural", ["run", "--models", "rnn,gru,rnn-scratch,transformer,3gram-kn", "--epochs", "1"]),
    ("ptb-ngrams", ["run", "--corpus", "ptb", "--models", ",".join(ngram_names(NGRAM_SUFFIXES) + ["infgram", "infgram-wb"])]),
    ("ptb-disk", ["run", "--corpus", "ptb", "--memory", "2M", "--models", ",".join(ngram_names(NGRAM_SUFFIXES))]),
    # transformer-word's preset changed after 0.2 (batch 4, dropout 0.1, lr 1e-3): its 0.2 defaults are set here,
    # so that this run checks the code, not the preset
    ("ptb-word-neural", ["sweep", "--corpus", "ptb", "--models", "lstm-zaremba-small,lstm-word,transformer-word,trigram-kn",
                         "--fractions", "0.05", "--epochs", "1", "--set", "transformer-word.batch_size=8",
                         "--set", "transformer-word.dropout=0.2", "--set", "transformer-word.lr=0.0015"]),
    ("ptb-bpe", ["run", "--corpus", "ptb", "--tokenizer", "bpe", "--bpe-vocab-size", "2000",
                 "--models", "bigram-add1,3gram-kn,5gram-wb"]),
]

#: columns of perplexity.csv that measure time, not results.
TIMING_COLUMNS = ("fit_seconds", "eval_seconds")
#: the columns of perplexity.csv in lmbench 0.2, in order: a row's fingerprint covers these (but the
#: timings), so columns added later do not change it.
TABLE_COLUMNS = ("model", "split", "n_tokens", "nll_nats", "cross_entropy_nats", "bits_per_token", "bits_per_byte",
                 "perplexity", "ppl_low", "ppl_high", "n_zero_prob", "n_nan", "vocab_size", "n_params", "fit_seconds",
                 "eval_seconds", "comparable", "tuned_on_valid", "seed", "family", "train_tokens", "note",
                 "data_sha256")
THROUGHPUT = re.compile(r"train_tokens_per_s=[^;]*;?\s*")

SCORE_TEXT = "the company said it expects higher earnings\nthe time traveller smiled at us\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def array_hashes(path: Path) -> dict:
    out = {}
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
    with np.load(path, allow_pickle=False) as data:
        for key in sorted(data.files):
            a = np.ascontiguousarray(data[key])
            out[key] = sha(f"{a.dtype.str}{a.shape}".encode() + a.tobytes())
    assert len(names) == len(out)
    return out


def row_hashes(path: Path) -> dict:
    """One hash per (model, split) row of perplexity.csv, over every column but the timings."""
    import pandas as pd

    frame = pd.read_csv(path, keep_default_na=False, dtype=str)
    columns = [c for c in TABLE_COLUMNS if c not in TIMING_COLUMNS and c in frame.columns]
    out = {}
    for _, row in frame.iterrows():
        values = [f"{c}={THROUGHPUT.sub('', row[c]) if c == 'note' else row[c]}" for c in columns]
        out[f"{row['model']}:{row['split']}"] = sha("\x1f".join(values).encode())
    return out


def run_fingerprints(folder: Path) -> dict:
    found = {}
    for npz in sorted((folder / "scores").glob("*.npz")):
        for key, digest in array_hashes(npz).items():
            found[f"scores/{npz.name}:{key}"] = digest
    for row, digest in row_hashes(folder / "perplexity.csv").items():
        found[f"perplexity.csv:{row}"] = digest
    for name in ("compare.csv", "buckets.csv", "seeds.csv", "sweep.csv"):
        if (folder / name).exists():
            for column, digest in column_hashes(folder / name).items():
                found[f"{name}:{column}"] = digest
    return found


def column_hashes(path: Path) -> dict:
    """One hash per column of an analysis table (columns added later get hashes of their own)."""
    import pandas as pd

    frame = pd.read_csv(path, keep_default_na=False, dtype=str)
    return {column: sha("\x1f".join(frame[column]).encode()) for column in frame.columns}


def lmbench(args: list[str], env: dict, stdin: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "lmbench", *args], env=env, input=stdin, text=True,
                          capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"lmbench {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def collect(work: Path, only: list[str] | None = None) -> tuple[dict, dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "MPLBACKEND": "Agg"}
    fingerprints, seconds = {}, {}
    for name, args in RUNS:
        if only and name not in only:
            continue
        out = work / name
        start = time.perf_counter()
        lmbench(args + ["--out", str(out)], env)
        seconds[name] = round(time.perf_counter() - start, 1)
        print(f"{name}: {seconds[name]} s", file=sys.stderr, flush=True)
        for key, digest in run_fingerprints(out).items():
            fingerprints[f"{name}/{key}"] = digest
    if not only or "tm-default" in only:
        tm = str(work / "tm-default")
        for model in ("5gram-kn", "lstm", "mix(5gram-kn+lstm)"):
            text = lmbench(["score", "--run", tm, "--model", model, "--per-token", "-"], env, SCORE_TEXT)
            fingerprints[f"score/{model}"] = sha(text.encode())
            text = lmbench(["generate", "--run", tm, "--model", model, "--prefix", "the time", "--length", "60",
                            "--seed", "3"], env)
            fingerprints[f"generate/{model}"] = sha(text.encode())
    if not only or "ptb-ngrams" in only:
        arpa = work / "ptb5.arpa"
        lmbench(["export", "--run", str(work / "ptb-ngrams"), "--model", "5gram-kn", str(arpa)], env)
        fingerprints["export/ptb-ngrams/5gram-kn.arpa"] = sha(arpa.read_bytes())
    return fingerprints, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["record", "check", "rehash"],
                        help="rehash: recompute the run fingerprints of REFERENCE from run directories kept with "
                             "--keep (the score, generate and export entries are kept as they are)")
    parser.add_argument("reference", type=Path, help="the JSON file of fingerprints (written by record)")
    parser.add_argument("--keep", type=Path, help="keep the run directories here (default: a temporary folder)")
    parser.add_argument("--only", help="comma-separated run names (check a subset)")
    args = parser.parse_args()
    only = args.only.split(",") if args.only else None
    if args.mode == "rehash":
        reference = json.loads(args.reference.read_text())
        kept = {k: v for k, v in reference["fingerprints"].items() if k.split("/")[0] in ("score", "generate", "export")}
        for name, _ in RUNS:
            for key, digest in run_fingerprints(args.keep / name).items():
                kept[f"{name}/{key}"] = digest
        reference["fingerprints"] = kept
        args.reference.write_text(json.dumps(reference, indent=1, sort_keys=True) + "\n")
        print(f"rehashed {len(kept)} fingerprints into {args.reference}")
        return 0
    work = args.keep or Path(tempfile.mkdtemp(prefix="lmbench-fingerprints-"))
    if args.keep and args.keep.exists():
        shutil.rmtree(args.keep)
    try:
        fingerprints, seconds = collect(work, only)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.mode == "record":
        args.reference.write_text(json.dumps({"fingerprints": fingerprints, "seconds": seconds}, indent=1,
                                             sort_keys=True) + "\n")
        print(f"recorded {len(fingerprints)} fingerprints in {args.reference}")
        return 0
    reference = json.loads(args.reference.read_text())["fingerprints"]
    if only:
        reference = {k: v for k, v in reference.items() if k.split("/")[0] in only
                     or (k.split("/")[0] in ("score", "generate") and "tm-default" in only)
                     or (k.startswith("export/") and "ptb-ngrams" in only)}
    missing = sorted(set(reference) - set(fingerprints))
    changed = sorted(k for k in reference if k in fingerprints and fingerprints[k] != reference[k])
    new = sorted(set(fingerprints) - set(reference))  # e.g. columns added since: listed, not failures
    for key in changed:
        print(f"CHANGED  {key}")
    for key in missing:
        print(f"MISSING  {key}")
    for key in new:
        print(f"NEW      {key}")
    same = len(reference) - len(changed) - len(missing)
    print(f"{same} of {len(reference)} fingerprints identical; {len(changed)} changed, {len(missing)} missing, "
          f"{len(new)} new")
    return 1 if changed or missing else 0


if __name__ == "__main__":
    sys.exit(main())
