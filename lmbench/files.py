"""Files on disk: regular files read with clear errors, and files written atomically without damaging what is there.

Reading is bounded: only regular files are opened (a device such as ``/dev/zero`` or a FIFO is
refused after ``os.stat``, before any ``open``), so a read never grows without end or blocks.
Writing replaces a file in one rename, so a failed or interrupted write leaves the old file whole.
Decoding text is :mod:`lmbench.data.textio`'s.
"""

from __future__ import annotations

import errno
import io
import json
import os
import secrets
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import LmbenchError



def expand_path(path: str | os.PathLike) -> Path:
    """``Path(path).expanduser()``, with a one-line LmbenchError for ``~user`` naming no user."""
    try:
        return Path(path).expanduser()
    except RuntimeError:   # pathlib: "Could not determine home directory." for ~nosuchuser
        user = str(path).split("/", 1)[0]
        raise LmbenchError(f"cannot expand {user!r} in {str(path)!r}: no such user (or no home directory); "
                           f"write the path out in full") from None


# ---------------------------------------------------------------- reading


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words, from its ``st_mode``."""
    kinds = [(stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def read_text_bytes(path: str | Path) -> bytes:
    """The bytes of a regular file that should hold text (decode them with :func:`decode`).

    The file is checked with ``os.stat`` before it is opened, and opened non-blocking, so devices
    (``/dev/zero``), FIFOs and sockets are refused without being read or waited on.

    Raises:
        LmbenchError: one line for a missing, unreadable or empty file, a directory, or anything
            that is not a regular file.
    """
    path = Path(path)
    data = _read_regular(path)
    if not data:
        raise LmbenchError(f"{path} is empty; give a file that contains text")
    return data


def _read_regular(path: Path) -> bytes:
    """Read a regular file whole (see :func:`open_regular`)."""
    with open_regular(path) as handle:
        try:
            return handle.read()
        except OSError as exc:
            raise read_error(path, exc) from None


def read_error(path: Path, exc: OSError) -> LmbenchError:
    return LmbenchError(f"cannot read {path}: {exc.strerror}; check its permissions")


def open_regular(path: Path):
    """Open a file for reading, non-blocking, and refuse it unless the open descriptor is a regular file."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise LmbenchError(f"file not found: {path}; check the path") from None
    except OSError as exc:
        raise LmbenchError(f"cannot read {path}: {exc.strerror}; check the path and its permissions") from None
    if not stat.S_ISREG(mode):
        raise LmbenchError(f"{path} is {file_kind(mode)}, not a text file; give a regular file")
    try:
        handle = os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb")
    except OSError as exc:
        raise read_error(path, exc) from None
    mode = os.fstat(handle.fileno()).st_mode
    if not stat.S_ISREG(mode):   # replaced between stat and open
        handle.close()
        raise LmbenchError(f"{path} is {file_kind(mode)}, not a text file; give a regular file")
    return handle


# ---------------------------------------------------------------- writing

_WRITE_HINTS = {
    errno.ENOENT: "its folder does not exist; create it or choose another path",
    errno.ENOTDIR: "a part of its folder path is not a directory; choose another path",
    errno.EACCES: "its folder is not writable; choose another path or fix the permissions",
    errno.EPERM: "its folder is not writable; choose another path or fix the permissions",
    errno.EROFS: "the file system is read-only; choose another path",
    errno.ENOSPC: "the disk is full; free some space and run again",
    errno.EDQUOT: "the disk quota is exceeded; free some space and run again",
}


def _write_error(path: Path, exc: OSError) -> LmbenchError:
    hint = _WRITE_HINTS.get(exc.errno, "check the path, its permissions and the free disk space")
    return LmbenchError(f"cannot write {path} ({exc.strerror or exc}): {hint}; nothing was changed")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file so that readers see either the old version or the new one, never a part (see :func:`atomic_writer`)."""
    with atomic_writer(path) as file:
        file.write(data)


@contextmanager
def atomic_writer(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file to write in the block; on a clean exit it replaces ``path`` whole, else nothing changes.

    The data goes to a temporary file in the same folder, which is renamed over the target
    (``os.replace``) when the block ends without an exception; when it replaces an existing file it
    is flushed to disk (``fsync``) first. Data larger than memory can be streamed through it. A
    symbolic link is followed (the file it points to is replaced, the link kept). Permissions are
    set without touching the process umask: a new file is created with mode 0o666, which the kernel
    reduces by the umask; a replaced file keeps its own mode.

    Raises:
        LmbenchError: one line when the target exists and is not a regular file (``/dev/null``, a
            FIFO, a directory: it is never replaced), or when the folder is missing or read-only or
            the disk is full. The old file is then untouched and no temporary file is left.
    """
    path, mode = _regular_target(Path(path))
    fd, tmp = _create_temp(path, mode)
    try:
        with io.BufferedWriter(_Descriptor(fd)) as file:
            yield file
            file.flush()
            if mode is not None:   # replacing a file: on disk first, so a power loss cannot leave it empty
                os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from None
        raise


class _Descriptor(io.RawIOBase):
    """A raw binary file over an open descriptor: every write is one ``os.write`` (short writes are retried by
    :class:`io.BufferedWriter`), so a full disk surfaces as the OSError of that call."""

    def __init__(self, fd: int):
        super().__init__()
        self.fd = fd

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data) -> int:
        return os.write(self.fd, data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return os.lseek(self.fd, offset, whence)

    def tell(self) -> int:
        return os.lseek(self.fd, 0, os.SEEK_CUR)

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()


def _regular_target(path: Path) -> tuple[Path, int | None]:
    """The file a write will replace (links followed) and its permission bits (None: it does not exist yet).

    Raises:
        LmbenchError: the target exists and is not a regular file.
    """
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return path, None
    except OSError as exc:
        raise _write_error(path, exc) from None
    if not stat.S_ISREG(mode):
        raise LmbenchError(f"{path} exists and is {file_kind(mode)}, not a regular file; it is never replaced, "
                           f"choose another output path")
    return path, stat.S_IMODE(mode)


def _create_temp(path: Path, mode: int | None) -> tuple[int, Path]:
    """Create a new temporary file beside ``path``: (descriptor, name).

    Its mode is ``mode`` if given, else 0o666 reduced by the umask (applied by the kernel in
    ``open``, so the process-wide umask is never read or changed).
    """
    tmp = path.parent / f".{path.name[:80]}.{secrets.token_hex(8)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        raise _write_error(path, exc) from None
    if mode is not None:
        try:
            os.fchmod(fd, mode)
        except OSError as exc:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise _write_error(path, exc) from None
    return fd, tmp


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text atomically (see atomic_write_bytes).

    Characters UTF-8 cannot hold (lone surrogates: the undecodable bytes of a file name, such as a
    corpus named ``corpus-\\xff.txt``) are written as ``?``, as figure titles show them, so that the
    file is valid UTF-8 and the write never fails on them.
    """
    atomic_write_bytes(path, text.encode("utf-8", "replace"))


def atomic_write_json(path: str | Path, obj) -> None:
    """Write an object as indented JSON atomically (see atomic_write_bytes)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def sha256_of(path: str | Path, block: int = 1 << 22) -> str:
    """sha256 of a file's bytes, read in blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


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
