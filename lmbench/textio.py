"""Reading text files with clear errors, and writing result files atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .errors import LmbenchError

_BINARY_SNIFF_BYTES = 8192


def read_text_bytes(path: str | Path) -> bytes:
    """The bytes of a file that should hold text (decode them with :func:`decode`).

    Raises:
        LmbenchError: one line for a missing, unreadable, empty or binary file, or a directory.
    """
    path = Path(path)
    if not path.exists():
        raise LmbenchError(f"file not found: {path}; check the path or name a corpus (see `lmbench corpora`)")
    if path.is_dir():
        raise LmbenchError(f"{path} is a directory, not a text file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LmbenchError(f"cannot read {path}: {exc.strerror}; check its permissions") from None
    if not data.strip():
        raise LmbenchError(f"{path} is empty; give a file that contains text")
    if b"\x00" in data[:_BINARY_SNIFF_BYTES]:
        raise LmbenchError(f"{path} looks binary (it contains NUL bytes); give a plain text file")
    return data


def decode(data: bytes, encoding: str, path: str | Path) -> str:
    """Decode bytes, naming the first bad byte and the --encoding fix on failure."""
    try:
        text = data.decode(encoding)
    except LookupError:
        raise LmbenchError(f"unknown encoding {encoding!r}; use a Python codec name such as utf-8 or latin-1") from None
    except UnicodeDecodeError as exc:
        bad = data[exc.start:exc.start + 1].hex()
        raise LmbenchError(
            f"{path} is not valid {encoding} (byte 0x{bad} at offset {exc.start}); "
            f"pass --encoding with the file's encoding, e.g. --encoding latin-1"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file so that readers see either the old version or the new one, never a part."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text atomically (see atomic_write_bytes)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj) -> None:
    """Write an object as indented JSON atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def check_writable_dir(path: str | Path) -> Path:
    """Create an output directory (and parents) and prove it is writable, or raise a one-line error."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LmbenchError(f"output path {path} exists and is not a directory; choose another --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise LmbenchError(f"cannot write to output directory {path} ({exc.strerror}); choose another --out") from None
    return path
