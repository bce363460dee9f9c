"""Kneser-Ney at scale: time and peak memory against training tokens, lmbench (bounded memory) vs KenLM.

Usage (from the repository root; corpora are made by ``../shared/tools/bigcorpus.py`` into ``--data``,
outside the repository, when missing)::

    python benchmarks/bench_scale.py --sizes 10M,30M --data /tmp/big
    python benchmarks/bench_scale.py --sizes 10M,30M,100M --data /tmp/big --kenlm-bin /path/to/kenlm/build/bin \\
        --memory 4G --plot docs/images

Every measurement runs in a fresh process. lmbench rows: ``load`` streams the three text files through
lmbench's word tokenizer and the train-only vocabulary (in blocks, so loading never holds the text),
``fit`` counts and estimates a 5-gram modified Kneser-Ney model with ``memory=--memory`` and
``storage=--storage`` (default disk: sorted runs spilled to a temporary folder), ``eval`` scores the
test split; ``fit+eval`` is what the targets compare. Peak resident memory is measured twice: during
loading (``load_rss_mb``), and from the end of loading on (``fit_eval_rss_mb``: Linux ``clear_refs``
resets the peak), which counts the interpreter, numpy and the encoded splits (``rss_after_load_mb``)
besides the fit's own working memory.

KenLM rows (with ``--kenlm-bin``): ``lmplz -o 5 -S <memory>`` on the training text, ``build_binary``
of its ARPA file, and ``query -v summary`` of the test text against the binary; each command's own
peak RSS. lmplz refuses a literal ``<unk>``, so it is renamed to an ordinary word in KenLM's copies
of the files, and KenLM's test file is written from lmbench's encoded test ids (an out-of-vocabulary
word is the corpus's ``<unk>`` for both systems); both then predict the same tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

UNK_RENAMED = "UNKWORD"
BIGCORPUS = Path(__file__).resolve().parents[2] / "shared" / "tools" / "bigcorpus.py"
SPLITS = ("train", "valid", "test")
BLOCK_BYTES = 16 << 20


# ---------------------------------------------------------------- streaming corpus loading


def text_blocks(path: Path):
    """Lines of a text file, a block of whole lines at a time (LF line ends, as lmbench reads them)."""
    with open(path, "rb") as f:
        rest = b""
        while True:
            data = f.read(BLOCK_BYTES)
            if not data:
                break
            data = rest + data
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                yield data[:cut].decode("utf-8").split("\n")[:-1]
        if rest:
            yield [rest.decode("utf-8")]


def load_corpus_streaming(folder: Path):
    """(vocabulary, {split: int32 ids}), as :func:`lmbench.data.dataset.build_dataset` gives them (word tokens, no
    normalization), without ever holding a whole file's text or tokens."""
    import numpy as np
    import pandas as pd

    try:
        from lmbench.data.dataset import with_line_ends
        from lmbench.data.tokenizers import Tokenizer
        from lmbench.data.vocab import UNK, Vocabulary, factorize
    except ImportError:  # lmbench 0.2's flat layout (PYTHONPATH=an older checkout, for side-by-side timings)
        from lmbench.data import with_line_ends
        from lmbench.tokenize import Tokenizer
        from lmbench.vocab import UNK, Vocabulary, factorize

    tokenizer = Tokenizer("word", "none")
    blocks = {s: [] for s in SPLITS}          # per block: (codes int32, uniques, tokens per line)
    for split in SPLITS:
        for lines in text_blocks(folder / f"{split}.txt"):
            tokens, lengths = tokenizer.split_normalized(lines)
            codes, uniques = factorize(tokens)
            blocks[split].append((codes.astype(np.int32), np.asarray(uniques, dtype=object), lengths))
    counts = pd.Series(dtype=np.int64)
    for codes, uniques, _ in blocks["train"]:
        counts = counts.add(pd.Series(np.bincount(codes, minlength=len(uniques)), index=uniques), fill_value=0)
    words, freq = counts.index.to_numpy(dtype=object), counts.to_numpy().astype(np.int64)
    regular = words != UNK                           # Vocabulary.from_factorized with min_freq 1, no cap
    order = np.lexsort((words[regular].astype(str), -freq[regular]))
    vocab = Vocabulary([UNK, tokenizer.eos] + [str(w) for w in words[regular][order]])
    splits = {}
    for split in SPLITS:
        parts = []
        for codes, uniques, lengths in blocks[split]:
            token_ids, _ = vocab.encode_factorized(codes, uniques)
            parts.append(with_line_ends(token_ids, lengths, vocab.eos_id))
        splits[split] = np.concatenate(parts)
        blocks[split] = None
    return vocab, splits


# ---------------------------------------------------------------- worker: one lmbench measurement


def vm_hwm_mb() -> float:
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) / 1024


def vm_rss_mb() -> float:
    with open("/proc/self/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def release_freed_memory() -> None:
    """Hand the heap that loading freed (millions of small token strings) back to the OS."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker(folder: Path, order: int, memory: str, storage: str, kenlm_test: Path | None, check: bool) -> dict:
    start = time.perf_counter()
    try:
        from lmbench.models.ngram.interpolated import KneserNey
    except ImportError:  # lmbench 0.2's flat layout
        from lmbench.models.interpolated import KneserNey

    vocab, splits = load_corpus_streaming(folder)
    if check:
        check_against_lmbench_loader(folder, vocab, splits)
    if kenlm_test is not None:   # KenLM's test file: lmbench's test tokens, <unk> renamed
        words = [UNK_RENAMED if w == "<unk>" else w for w in vocab.itos]
        write_ids_as_text(kenlm_test, splits["test"], words, vocab.eos_id)
    release_freed_memory()
    loaded = time.perf_counter()
    load_peak, after_load = vm_hwm_mb(), vm_rss_mb()
    reset = reset_peak_rss()
    model = KneserNey(order=order, memory=memory, storage=storage)
    model.label = f"{order}gram-kn"
    model.fit(splits["train"], vocab=vocab)
    fitted = time.perf_counter()
    test = model.evaluate(splits["test"])
    evaluated = time.perf_counter()
    return {"train_tokens": int(splits["train"].size), "vocab": len(vocab), "load_s": loaded - start,
            "fit_s": fitted - loaded, "eval_s": evaluated - fitted, "fit_eval_s": evaluated - loaded,
            "test_ppl": test.perplexity, "test_tokens": test.n_tokens, "n_params": model.n_params,
            "on_disk": model.on_disk, "load_rss_mb": load_peak, "rss_after_load_mb": after_load,
            "fit_eval_rss_mb": vm_hwm_mb() if reset else None,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def write_ids_as_text(path: Path, ids, words: list[str], eos_id: int) -> None:
    import numpy as np

    ends = np.flatnonzero(ids == eos_id)
    with open(path, "w", encoding="utf-8") as f:
        start = 0
        for end in ends.tolist():
            f.write(" ".join(words[i] for i in ids[start:end].tolist()) + "\n")
            start = end + 1


def check_against_lmbench_loader(folder: Path, vocab, splits) -> None:
    """The streaming loader gives lmbench's own vocabulary and ids (small corpora only)."""
    import numpy as np

    try:
        from lmbench.data.corpora import load_corpus
        from lmbench.data.dataset import build_dataset
        from lmbench.data.tokenizers import Tokenizer
    except ImportError:  # lmbench 0.2's flat layout
        from lmbench.corpora import load_corpus
        from lmbench.data import build_dataset
        from lmbench.tokenize import Tokenizer

    ds = build_dataset(load_corpus(str(folder)), Tokenizer("word", "none"))
    assert ds.vocab.itos == vocab.itos, "streaming vocabulary differs from lmbench's"
    for split in SPLITS:
        assert np.array_equal(ds.splits[split], splits[split]), f"streaming {split} ids differ from lmbench's"


def run_worker(folder: Path, args, kenlm_test: Path | None) -> dict:
    command = [sys.executable, __file__, "--worker", str(folder), "--order", str(args.order), "--memory", args.memory,
               "--storage", args.storage] + (["--kenlm-test", str(kenlm_test)] if kenlm_test else []) \
        + (["--check-loader"] if args.check_loader else [])
    start = time.perf_counter()
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - start
    return result


# ---------------------------------------------------------------- KenLM


def timed(command: list[str], stdin_path: Path | None = None, stdout_path: Path | None = None):
    """Run a command; return (wall seconds, its own peak RSS in MB, its output)."""
    with (open(stdin_path, "rb") if stdin_path else nullcontext()) as stdin, \
            (open(stdout_path, "wb") if stdout_path else nullcontext()) as stdout:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdin=stdin, stdout=stdout if stdout_path else subprocess.PIPE,
                                stderr=subprocess.PIPE)
        captured = proc.stdout.read() if not stdout_path else b""
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command[0]} failed: {err.decode(errors='replace')[-800:]}")
    return wall, usage.ru_maxrss / 1024, (captured + err).decode(errors="replace")


def renamed_copy(source: Path, target: Path) -> None:
    """``source`` with every ``<unk>`` renamed to an ordinary word (lmplz refuses it), block by block."""
    with open(source, "rb") as f, open(target, "wb") as out:
        rest = b""
        for block in iter(lambda: f.read(BLOCK_BYTES), b""):
            block = rest + block
            cut = block.rfind(b"\n") + 1                  # whole lines only: no word is cut in two
            out.write(block[:cut].replace(b"<unk>", UNK_RENAMED.encode()))
            rest = block[cut:]
        out.write(rest.replace(b"<unk>", UNK_RENAMED.encode()))


def run_kenlm(bin_dir: Path, folder: Path, test_text: Path, order: int, memory: str, work: Path) -> dict:
    train = work / "train.txt"
    renamed_copy(folder / "train.txt", train)
    arpa, binary = work / "kenlm.arpa", work / "kenlm.binary"
    lmplz_s, lmplz_mb, _ = timed([str(bin_dir / "lmplz"), "-o", str(order), "-S", memory, "-T", str(work)],
                                 train, arpa)
    build_s, build_mb, _ = timed([str(bin_dir / "build_binary"), "-S", memory, "-T", str(work), str(arpa), str(binary)])
    query_s, query_mb, report = timed([str(bin_dir / "query"), "-v", "summary", str(binary)], test_text)
    ppl = float(re.search(r"Perplexity including OOVs:\s*([0-9.]+)", report).group(1))
    for path in (train, arpa, binary):
        path.unlink()
    return {"lmplz_s": lmplz_s, "lmplz_rss_mb": lmplz_mb, "build_binary_s": build_s, "build_binary_rss_mb": build_mb,
            "query_s": query_s, "query_rss_mb": query_mb, "total_s": lmplz_s + build_s + query_s,
            "peak_rss_mb": max(lmplz_mb, build_mb, query_mb), "test_ppl": ppl}


# ---------------------------------------------------------------- driver


def corpus_folder(data: Path, size: str) -> Path:
    folder = data / size
    if not (folder / "test.txt").exists():
        print(f"generating {size} training tokens into {folder} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, str(BIGCORPUS), str(folder), "--train-tokens", size], check=True)
    return folder


def tokens_of(size: str) -> float:
    return float(size.rstrip("KMG")) * {"K": 1e3, "M": 1e6, "G": 1e9}.get(size[-1:].upper(), 1)


def print_table(rows: list[dict]) -> None:
    """The targets' table: on-disk lmbench against KenLM; in-memory lmbench rows, if any, below it."""
    disk = [r for r in rows if r["storage"] != "memory"]
    memory = [r for r in rows if r["storage"] == "memory"]
    if disk:
        print(f"\n5-gram modified Kneser-Ney, lmbench memory={disk[0]['memory']} (on disk), "
              f"KenLM -S {disk[0]['memory']}; seconds, peak resident memory\n")
        print("| train tokens | lmbench fit+eval | lmbench peak RSS, fit+eval (loading) "
              "| KenLM lmplz + build_binary + query | KenLM peak RSS | time ratio | lmbench test ppl "
              "| KenLM test ppl | relative difference |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in disk:
            ours, kenlm = r["lmbench"], r.get("kenlm")
            line = (f"| {r['size']} | {ours['fit_eval_s']:.1f} | {ours['fit_eval_rss_mb'] / 1024:.2f} GB "
                    f"({ours['load_rss_mb'] / 1024:.2f} GB) | ")
            if kenlm:
                diff = (ours["test_ppl"] - kenlm["test_ppl"]) / kenlm["test_ppl"]
                line += (f"{kenlm['lmplz_s']:.1f} + {kenlm['build_binary_s']:.1f} + {kenlm['query_s']:.1f} = "
                         f"{kenlm['total_s']:.1f} | {kenlm['peak_rss_mb'] / 1024:.2f} GB | "
                         f"{ours['fit_eval_s'] / kenlm['total_s']:.2f}x | {ours['test_ppl']:.4f} | "
                         f"{kenlm['test_ppl']:.4f} | {diff:+.1e} |")
            else:
                line += f"n/a | n/a | n/a | {ours['test_ppl']:.4f} | n/a | n/a |"
            print(line)
    if memory:
        print("\nlmbench with the tables in memory (storage=memory)\n")
        print("| train tokens | fit+eval | peak RSS, fit+eval (loading) | test ppl |")
        print("|---|---|---|---|")
        for r in memory:
            ours = r["lmbench"]
            print(f"| {r['size']} | {ours['fit_eval_s']:.1f} | {ours['fit_eval_rss_mb'] / 1024:.2f} GB "
                  f"({ours['load_rss_mb'] / 1024:.2f} GB) | {ours['test_ppl']:.4f} |")


def plot(rows: list[dict], folder: Path) -> None:
    """Log-log time and peak memory against training tokens, one line per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    disk = [r for r in rows if r["storage"] != "memory"]
    memory = [r for r in rows if r["storage"] == "memory"]
    budget = disk[0]["memory"] if disk else None
    series = [(f"lmbench on disk (memory={budget})", disk, lambda r: r["lmbench"]["fit_eval_s"],
               lambda r: r["lmbench"]["fit_eval_rss_mb"]),
              ("lmbench in memory", memory, lambda r: r["lmbench"]["fit_eval_s"],
               lambda r: r["lmbench"]["fit_eval_rss_mb"]),
              (f"KenLM lmplz -S {budget} + build_binary + query", [r for r in disk if r.get("kenlm")],
               lambda r: r["kenlm"]["total_s"], lambda r: r["kenlm"]["peak_rss_mb"])]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, chosen, seconds, rss_mb in series:
        if not chosen:
            continue
        tokens = [tokens_of(r["size"]) for r in chosen]
        axes[0].loglog(tokens, [seconds(r) for r in chosen], "o-", label=name)
        axes[1].loglog(tokens, [rss_mb(r) / 1024 for r in chosen], "o-", label=name)
    if budget:
        limit = tokens_of(budget.upper().rstrip("B")) / 1e9
        axes[1].axhline(limit + 1, color="grey", linestyle="--", linewidth=1, label="target: budget + 1 GB")
    axes[0].set(xlabel="training tokens", ylabel="seconds (fit + score test)", title="5-gram Kneser-Ney: time")
    axes[1].set(xlabel="training tokens", ylabel="peak RSS (GB)", title="5-gram Kneser-Ney: peak memory")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / "scale-kn5.png", dpi=110)
    print(f"wrote {folder / 'scale-kn5.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10M,30M", help="training sizes, e.g. 10M,30M,100M")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "lmbench-bigcorpus",
                        help="folder of the generated corpora (one subfolder per size; never the repository)")
    parser.add_argument("--order", type=int, default=5)
    parser.add_argument("--memory", default="4G", help="memory budget of both systems (lmbench memory=, lmplz -S)")
    parser.add_argument("--storage", default="disk", choices=["auto", "memory", "disk"])
    parser.add_argument("--kenlm-bin", type=Path, default=None, help="folder holding lmplz, build_binary and query")
    parser.add_argument("--check-loader", action="store_true", help="check the streaming loader against lmbench's")
    parser.add_argument("--json", type=Path, default=None, help="append one JSON line per size here")
    parser.add_argument("--plot", type=Path, default=None, help="write scale-kn5.png into this folder")
    parser.add_argument("--report", type=Path, nargs="+", default=None,
                        help="print the table (and --plot) from JSON lines of earlier runs; run nothing")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--kenlm-test", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.order, args.memory, args.storage, args.kenlm_test,
                                args.check_loader)))
        return
    if args.report:
        rows = [json.loads(line) for path in args.report for line in path.read_text().splitlines() if line.strip()]
        rows.sort(key=lambda r: (r["storage"] == "memory", tokens_of(r["size"])))
        print_table(rows)
        if args.plot:
            plot(rows, args.plot)
        return
    rows = []
    for size in args.sizes.split(","):
        folder = corpus_folder(args.data, size)
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            kenlm_test = Path(tmp) / "test.txt" if args.kenlm_bin else None
            row = {"size": size, "memory": args.memory, "storage": args.storage,
                   "lmbench": run_worker(folder, args, kenlm_test)}
            if args.kenlm_bin:
                row["kenlm"] = run_kenlm(args.kenlm_bin, folder, kenlm_test, args.order, args.memory, Path(tmp))
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")
    print_table(rows)
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
