"""Zipf statistics of a corpus or a text, written to a folder: zipf.csv, zipf_ranks.csv and zipf.png."""

from __future__ import annotations

from pathlib import Path

from ..analysis.zipf import ZipfTables, analyze, fit_lines, whole_text, zipf_source
from ..data.tokenizers import Tokenizer
from ..files import atomic_write_text, check_writable_dir
from . import files


def zipf_run(source, *, tokenizer: str | None = None, normalize: str | None = None, max_n: int = 3,
             min_count: int = 10, top: int = 20, encoding: str = "utf-8", out=None) -> ZipfTables:
    """Count and fit (see :func:`lmbench.api.zipf`); with ``out`` (True: ``results/<name>-zipf``) also write the files."""
    from ..report.plots import zipf_plot

    raw = zipf_source(source, encoding)
    dataset = whole_text(raw, Tokenizer(tokenizer or raw.tokenizer, normalize or raw.normalize))
    found = analyze(dataset, max_n, min_count)
    if out is None or out is False:
        return found
    folder = check_writable_dir(Path("results") / f"{dataset.name}-zipf" if out is True else out)
    atomic_write_text(folder / files.ZIPF_CSV, found.fits.to_csv(index=False))
    atomic_write_text(folder / files.ZIPF_RANKS_CSV, found.top(top).to_csv(index=False))
    zipf_plot(found.curves(), {f.n: fit_lines(f) for f in found.fit_objects}, folder / files.ZIPF_PNG,
              f"{dataset.name}: Zipf's law")
    found.written_to = folder
    return found
