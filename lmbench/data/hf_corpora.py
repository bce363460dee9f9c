"""Corpora read with Hugging Face ``datasets`` (Lhoest et al. 2021): ``--corpus hf:NAME[/CONFIG][@REVISION][:COLUMN]``.

A hub dataset (``hf:Salesforce/wikitext/wikitext-2-raw-v1``) is read where the network allows and
from the ``datasets`` cache everywhere; a local dataset (a folder written by ``save_to_disk``, a
folder of parquet/json/csv/text files named by split, or one such file) needs no network. Its
train/validation/test splits become the run's train/valid/test, one line per text row. The hub
helpers here (offline detection, offline mode) are shared with :mod:`lmbench.models.pretrained`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

from ..errors import LmbenchError
from ..files import expand_path
from .raw import RawCorpus, check_distinct_splits, format_fractions, split_lines

#: the extra that installs ``transformers`` and ``datasets``.
HF_EXTRA = 'pip install -e ".[hf]"'
#: dataset split names -> the run's splits.
SPLIT_NAMES = {"train": ("train",), "valid": ("validation", "valid", "val", "dev"), "test": ("test",)}
#: the packaged ``datasets`` builder of a single data file, by suffix.
FILE_BUILDERS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv", ".txt": "text",
                 ".arrow": "arrow"}
#: seconds to wait for a TCP connection to the hub before treating it as unreachable.
HUB_PROBE_SECONDS = 3.0
_TRUE = {"1", "on", "yes", "true"}


# ---------------------------------------------------------------- the hub, online or not


def hub_offline_reason(local_files_only: bool | None = None) -> str:
    """Why the Hugging Face hub must not be contacted now, or "" when it may be.

    Offline when asked (``local_files_only=True``), when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``,
    ``HF_DATASETS_OFFLINE``) is set, or when a TCP connection to the hub's host fails within
    :data:`HUB_PROBE_SECONDS` (without that probe, huggingface_hub retries for about 25 s before failing).
    """
    if local_files_only:
        return "local_files_only=True"
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in _TRUE:
            return f"{name} is set"
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return ""  # through a proxy: a direct probe says nothing
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    return "" if _reachable(endpoint) else f"{urlparse(endpoint).hostname or endpoint} cannot be reached"


@functools.lru_cache(maxsize=None)
def _reachable(endpoint: str) -> bool:
    """Whether a TCP connection to ``endpoint``'s host opens (asked once per process)."""
    url = urlparse(endpoint)
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((url.hostname or endpoint, port), timeout=HUB_PROBE_SECONDS):
            return True
    except OSError:
        return False


@contextmanager
def offline_hub(offline: bool) -> Iterator[None]:
    """Within the block, huggingface_hub (and ``datasets``, if imported) make no request, when ``offline``.

    Both libraries read ``HF_HUB_OFFLINE`` once, at import; their module flags are set for the block
    only and restored on exit.
    """
    if not offline:
        yield
        return
    from huggingface_hub import constants

    flags = [(constants, "HF_HUB_OFFLINE")]
    if "datasets.config" in sys.modules:
        flags.append((sys.modules["datasets.config"], "HF_HUB_OFFLINE"))
    saved = [getattr(module, name) for module, name in flags]
    for module, name in flags:
        setattr(module, name, True)
    try:
        yield
    finally:
        for (module, name), value in zip(flags, saved):
            setattr(module, name, value)


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (or its class name)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def hub_cache() -> str:
    """The Hugging Face cache folder (``HF_HUB_CACHE``, from ``HF_HOME``), for messages."""
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:
        return "~/.cache/huggingface/hub"


# ---------------------------------------------------------------- corpora


def parse_spec(spec: str) -> tuple[str, str | None, str | None, str | None]:
    """``NAME[/CONFIG][@REVISION][:COLUMN]`` as (name, config, revision, column); a local path is the name alone.

    A hub name is ``NAME`` or ``OWNER/NAME``: ``a/b/c`` is the dataset ``a/b`` with config ``c``; ``a/b`` is
    tried as the dataset ``a/b``, then as ``a`` with config ``b`` (see :func:`load_hf_corpus`).
    """
    head, column = spec, None
    if ":" in spec and not expand_path(spec).exists():
        before, _, after = spec.rpartition(":")
        if before and after and "/" not in after:
            head, column = before, after
    if expand_path(head).exists():
        return head, None, None, column
    revision = None
    if "@" in head:
        head, _, revision = head.rpartition("@")
        if not head or not revision:
            raise LmbenchError(f"hf:{spec}: a revision follows the name, e.g. hf:NAME/CONFIG@main")
    parts = head.split("/")
    if len(parts) > 3 or not all(parts):
        raise LmbenchError(f"hf:{spec} is neither a local path nor a hub dataset NAME, OWNER/NAME or "
                           f"OWNER/NAME/CONFIG (e.g. hf:Salesforce/wikitext/wikitext-2-raw-v1)")
    if len(parts) == 3:
        return "/".join(parts[:2]), parts[2], revision, column
    return head, None, revision, column


def load_hf_corpus(spec: str, fractions=None) -> "RawCorpus":
    """The train/valid/test lines of a Hugging Face dataset, for ``--corpus hf:SPEC``.

    Args:
        spec: ``NAME[/CONFIG][@REVISION][:COLUMN]`` (see :func:`parse_spec`): a hub dataset
            (``Salesforce/wikitext/wikitext-2-raw-v1``), a folder written by ``save_to_disk``, a folder of
            data files named by split (``train.parquet``, ``validation.jsonl``, ...) or one data file.
            ``COLUMN`` is the text column (default ``text``, else the only string column).
        fractions: (train, valid, test) fractions for a dataset with a train split only (its rows are
            cut into contiguous parts, as a text file's lines are); a dataset with its own splits
            ignores them.

    Returns:
        The RawCorpus: one line per text row, the row's final line end removed (a row holding line
        breaks gives one line per line of it; WikiText's rows are lines), ``presplit`` when the
        dataset came with its splits; ``source`` names the dataset, config, revision, column, the
        dataset splits used and their fingerprints.

    Raises:
        LmbenchError: one line, nothing written, for a missing extra, an unknown dataset (offline: not
            in the cache), a dataset without train/validation/test splits, or a missing text column.
    """
    try:
        import datasets  # noqa: F401
    except ImportError:
        raise LmbenchError(f"--corpus hf:{spec} needs the Hugging Face extra (the datasets library is not "
                           f"installed): {HF_EXTRA}") from None
    name, config, revision, column = parse_spec(spec)
    path = expand_path(name)
    if path.exists():
        data, source = _load_local(spec, path, config), {"kind": "hf", "path": str(path.resolve())}
    else:
        data, name, config = _load_hub(spec, name, config, revision)
        source = {"kind": "hf", "name": name, "config": config, "revision": revision}
    splits, used = _pick_splits(spec, data)
    column = _text_column(spec, splits, column)
    lines = {split: rows_to_lines(dataset[column]) for split, dataset in splits.items()}
    source.update(column=column, splits=used,
                  fingerprints={split: getattr(dataset, "_fingerprint", None) for split, dataset in splits.items()},
                  rows={split: dataset.num_rows for split, dataset in splits.items()})
    label = _label(name, config)
    if len(lines) == 1:  # a train split only: cut by lines like a text file
        source["split"] = format_fractions(fractions)
        return RawCorpus(label, split_lines(lines["train"], fractions, f"hf:{spec}"), source)
    check_distinct_splits(f"hf:{spec}", {split: _sha256(part) for split, part in lines.items()})
    return RawCorpus(label, lines, source, presplit=True)


def rows_to_lines(rows) -> list[str]:
    """Lines of text rows: each row's final line end removed, CR LF and CR read as LF, None as an empty row."""
    lines: list[str] = []
    for row in rows:
        text = (row or "").replace("\r\n", "\n").replace("\r", "\n")
        lines.extend(text[:-1].split("\n") if text.endswith("\n") else text.split("\n"))
    return lines


def _sha256(lines: list[str]) -> str:
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8", "surrogatepass") + b"\n")
    return digest.hexdigest()


def _label(name: str, config: str | None) -> str:
    """The corpus's name in results: the dataset's last name part, and the config when there is one."""
    stem = Path(name).stem if expand_path(name).exists() else name.rsplit("/", 1)[-1]
    return f"{stem}-{config}" if config and config != "default" and not config.startswith(stem) else config or stem


def _load_local(spec: str, path: Path, config: str | None):
    """A local dataset: a ``save_to_disk`` folder, a folder of data files, or one data file."""
    import datasets

    try:
        if path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file()):
            return datasets.load_from_disk(str(path))
        if path.is_dir():
            return datasets.load_dataset(str(path), config)
        builder = FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise LmbenchError(f"hf:{spec}: {path.name} is not a data file datasets reads by itself (suffixes "
                               f"{', '.join(FILE_BUILDERS)}); for plain text use --corpus {path}")
        return datasets.load_dataset(builder, data_files=str(path))
    except LmbenchError:
        raise
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise LmbenchError(f"hf:{spec}: {path} cannot be read as a dataset ({first_line(exc)}); give a folder "
                           f"written by save_to_disk, a folder of parquet/json/csv/txt files named by split "
                           f"(train, validation, test), or one such file") from None


def _load_hub(spec: str, name: str, config: str | None, revision: str | None):
    """A hub dataset (from the cache when offline), trying ``a/b`` as a name and then as name/config."""
    import datasets

    offline = hub_offline_reason()
    attempts = [(name, config)]
    if config is None and name.count("/") == 1:
        attempts.append(tuple(name.split("/")))
    errors = []
    with offline_hub(bool(offline)):
        for attempt in attempts:
            try:
                return datasets.load_dataset(*attempt, revision=revision), attempt[0], attempt[1]
            except ValueError as exc:  # e.g. "BuilderConfig 'x' not found. Available: [...]"
                errors.append(first_line(exc))
                if "config" in str(exc).lower():
                    raise LmbenchError(f"hf:{spec}: {first_line(exc)}") from None
            except (OSError, FileNotFoundError) as exc:  # DatasetNotFoundError, ConnectionError, ...
                errors.append(first_line(exc))
    tried = " or ".join(f"{n}" + (f" (config {c})" if c else "") for n, c in attempts)
    if offline:
        raise LmbenchError(f"hf:{spec}: no local path {name!r}, and {tried} is not in the datasets cache while the "
                           f"hub is offline ({offline}); load it once where the network allows, or give a local "
                           f"dataset folder or file") from None
    raise LmbenchError(f"hf:{spec}: no local path {name!r} and no hub dataset {tried} ({errors[-1]}); check the "
                       f"name on huggingface.co/datasets, e.g. hf:Salesforce/wikitext/wikitext-2-raw-v1") from None


def _pick_splits(spec: str, data) -> tuple[dict, dict]:
    """({run split: Dataset}, {run split: dataset split name}): train, valid, test, or train alone."""
    import datasets

    if isinstance(data, datasets.Dataset):
        return {"train": data}, {"train": "(the whole dataset)"}
    available = list(data.keys())
    picked, used = {}, {}
    for split, names in SPLIT_NAMES.items():
        found = [n for n in names if n in data]
        if found:
            picked[split], used[split] = data[found[0]], found[0]
    if set(picked) == {"train"}:
        return picked, used
    if len(picked) != 3:
        missing = [s if s != "valid" else "validation" for s in SPLIT_NAMES if s not in picked]
        raise LmbenchError(f"hf:{spec} has the splits {', '.join(available)}; lmbench needs train, validation and "
                           f"test (or train alone, cut by --split), and {' and '.join(missing)} is missing")
    return picked, used


def _text_column(spec: str, splits: dict, column: str | None) -> str:
    """The column holding the text: the one asked for, else ``text``, else the only string column."""
    import datasets

    def is_text(feature) -> bool:
        return isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")

    features = next(iter(splits.values())).features
    strings = [name for name, feature in features.items() if is_text(feature)]
    if column is None:
        column = strings[0] if "text" not in features and len(strings) == 1 else "text"
    example = f"hf:{spec.rsplit(':', 1)[0] if ':' in spec else spec}:{strings[0] if strings else 'COLUMN'}"
    for split, dataset in splits.items():
        if column not in dataset.features:
            raise LmbenchError(f"hf:{spec}: the {split} split has no column {column!r} (columns: "
                               f"{', '.join(dataset.features)}); name the text column after a colon, e.g. {example}")
        feature = dataset.features[column]
        if not is_text(feature):
            raise LmbenchError(f"hf:{spec}: column {column!r} holds {feature}, not text; name a text column after "
                               f"a colon (string columns: {', '.join(strings) or 'none'})")
    return column
