"""Start-up time and memory of the lmbench command against the floor of its own dependencies.

Usage (from the repository root, in the environment where lmbench is installed)::

    python benchmarks/bench_startup.py              # 9 runs of each command, medians
    python benchmarks/bench_startup.py --repeat 21

The floor is ``python -c "import click, numpy"``: the interpreter plus the two libraries any lmbench
command needs. Against it, side by side: ``lmbench --help``, ``lmbench --version`` (the installed
console script, as a user types it) and ``python -c "import lmbench"``. Each command runs in a fresh
process; its wall time is measured around the process and its peak resident memory is that
process's own ``ru_maxrss``, read with ``os.wait4`` (``resource.getrusage(RUSAGE_CHILDREN)`` would
give the largest of all children so far). One discarded round first warms the file cache; the rounds
then interleave the commands so that machine noise hits them alike, and medians are reported.

The target (issue 8): ``lmbench --help`` within 0.3 s of the floor.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_HELP_EXTRA_S = 0.3


def commands() -> dict[str, list[str]]:
    """Label -> argv of every measured command (the floor first)."""
    script = shutil.which("lmbench", path=str(Path(sys.executable).parent)) or shutil.which("lmbench")
    lmbench = [script] if script else [sys.executable, "-c", "import sys; from lmbench.cli import main; main()"]
    return {
        'python -c "import click, numpy"': [sys.executable, "-c", "import click, numpy"],
        "lmbench --help": [*lmbench, "--help"],
        "lmbench --version": [*lmbench, "--version"],
        'python -c "import lmbench"': [sys.executable, "-c", "import lmbench"],
    }


def measure(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one fresh process running ``argv``."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({process.returncode}): {error.strip()}")
    rss_kib = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss / 1024  # macOS: bytes
    return seconds, rss_kib / 1024


def run(repeat: int) -> dict[str, dict]:
    """Median wall time and peak RSS of every command over ``repeat`` interleaved rounds."""
    argvs = commands()
    for argv in argvs.values():  # warm-up round, discarded
        measure(argv)
    samples = {label: [] for label in argvs}
    for _ in range(repeat):
        for label, argv in argvs.items():
            samples[label].append(measure(argv))
    return {label: {"seconds": statistics.median(s for s, _ in runs), "rss_mib": statistics.median(m for _, m in runs)}
            for label, runs in samples.items()}


def report(results: dict[str, dict], repeat: int) -> str:
    """The table: each command's medians, and its difference and ratio against the floor (first row)."""
    floor_label = next(iter(results))
    floor = results[floor_label]
    lines = [f"Python {sys.version.split()[0]} on {sys.platform}; median of {repeat} fresh processes each",
             "",
             f"{'command':<32} {'wall':>8} {'+floor':>8} {'x floor':>8} {'peak RSS':>10} {'+floor':>10} {'x floor':>8}"]
    for label, r in results.items():
        lines.append(f"{label:<32} {r['seconds']:>7.3f}s {r['seconds'] - floor['seconds']:>+7.3f}s "
                     f"{r['seconds'] / floor['seconds']:>7.2f}x {r['rss_mib']:>7.1f}MiB "
                     f"{r['rss_mib'] - floor['rss_mib']:>+7.1f}MiB {r['rss_mib'] / floor['rss_mib']:>7.2f}x")
    extra = results["lmbench --help"]["seconds"] - floor["seconds"]
    verdict = "meets" if extra <= TARGET_HELP_EXTRA_S else "MISSES"
    lines += ["", f"lmbench --help: {extra:+.3f} s over the floor; {verdict} the target of <= {TARGET_HELP_EXTRA_S} s"]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=9, help="Runs of each command (default 9).")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    print(report(run(args.repeat), args.repeat))


if __name__ == "__main__":
    main()
