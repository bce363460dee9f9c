"""Claiming an output directory: one run at a time, never over someone else's files.

A run writes into ``--out DIR``. Before anything is written:

* ``DIR/.lmbench.lock`` is locked (``fcntl.flock``, released by the kernel when the process ends,
  so a crash leaves no stale lock; the file is removed when the run ends). A second run on the same directory gets a one-line error naming
  the first one (its pid, command and start time).
* a non-empty directory that holds no lmbench run is refused: its files are not ours to replace.
* a directory holding an earlier run is refused unless ``overwrite`` is set. Then the new run is
  written into a staging directory beside it and swapped in only when it completes; if it fails or
  is interrupted, the earlier run stays untouched and the partial new one is kept beside it under
  ``<name>.incomplete-<time>``. A failed re-run never leaves the old table beside a new config.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import shutil
import sys
from pathlib import Path

from ..errors import LmbenchError
from . import files

LOCK_NAME = files.LOCK
MARKER = files.CONFIG


def holds_run(path: Path) -> bool:
    """Whether ``path`` holds an lmbench run (a config.json written by lmbench)."""
    try:
        config = json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "lmbench_version" in config


def foreign_entries(path: Path) -> list[str]:
    """Names in ``path`` other than our lock file."""
    return sorted(p.name for p in path.iterdir() if p.name != LOCK_NAME)


class DirectoryLock:
    """An exclusive, non-blocking lock on ``DIR/.lmbench.lock`` holding who took it."""

    def __init__(self, folder: Path):
        self.path = folder / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> "DirectoryLock":
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise LmbenchError(f"{self.path.parent} is in use by another lmbench run ({holder}); "
                                   f"wait for it to finish or choose another --out") from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(_holder()).encode())
        self.fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file, then close it (closing releases the flock)."""
        if self.fd is not None:
            try:
                self.path.unlink(missing_ok=True)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None


def _holder() -> dict:
    return {"pid": os.getpid(), "command": " ".join(sys.argv),
            "started": _dt.datetime.now().isoformat(timespec="seconds")}


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return "unknown process"
    return f"pid {info.get('pid')}, `{info.get('command')}`, started {info.get('started')}"


#: what :class:`OutputDir` may do with a directory that holds an earlier run.
MODES = ("new", "overwrite", "resume")


class OutputDir:
    """The directory a run writes into, claimed for the run's lifetime.

    Args:
        target: the directory the user asked for.
        mode: "new" (an earlier run there is refused), "overwrite" (replaced, only once the new run
            completes) or "resume" (the new run reuses what it can of the earlier one, and replaces
            it, likewise only once complete).

    Use :meth:`claim` before writing, write into :attr:`path`, then :meth:`finish` with the run's
    final status (always call it, also on failure). Files in the directory that no lmbench run writes
    (a user's notes, scripts) are carried over into the new run, never deleted.
    """

    def __init__(self, target: str | Path, mode: str = "new"):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.target = Path(target)
        self.mode = mode
        self.path = self.target
        self.staging: Path | None = None
        self.locks: list[DirectoryLock] = []

    def claim(self) -> Path:
        """Lock the target, check what it holds, and return the directory to write into."""
        _make_dir(self.target)
        self.locks.append(DirectoryLock(self.target).acquire())
        try:
            self._check_contents()
            if self.staging is not None:
                _make_dir(self.staging)
                self.locks.append(DirectoryLock(self.staging).acquire())
                self.path = self.staging
            _probe_writable(self.path)
        except BaseException:
            self.release()
            raise
        return self.path

    def _check_contents(self) -> None:
        entries = foreign_entries(self.target)
        if not entries:
            return
        if not holds_run(self.target):
            raise LmbenchError(f"output directory {self.target} is not empty and holds no lmbench run "
                               f"({', '.join(entries[:3])}{', ...' if len(entries) > 3 else ''}); "
                               f"choose a new or empty --out")
        if self.mode == "new":
            raise LmbenchError(f"output directory {self.target} holds an earlier run; choose another --out, pass "
                               f"--overwrite (overwrite=True) to replace it once the new run completes, or --resume "
                               f"(resume=True) to keep its unchanged models")
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.staging = self.target.parent / f".{self.target.name}.staging-{stamp}-{os.getpid()}"

    def finish(self, complete: bool) -> Path:
        """Swap a staged run in if it completed; otherwise keep it beside the old run. Returns where it is."""
        try:
            if self.staging is None:
                return self.target
            if complete:
                return self._swap_in()
            return self._keep_aside()
        finally:
            self.release()

    def _swap_in(self) -> Path:
        self._carry_over_foreign_files()
        old = self.target.parent / f".{self.target.name}.old-{os.getpid()}"
        os.replace(self.target, old)
        try:
            os.replace(self.staging, self.target)
        except OSError:
            os.replace(old, self.target)
            raise
        shutil.rmtree(old, ignore_errors=True)
        self.path = self.target
        return self.target

    def _carry_over_foreign_files(self) -> None:
        """Move what the earlier run did not write (a user's files) into the new run, so that nothing of theirs is lost.

        That is every top-level entry lmbench does not name, and inside ``models/``, ``scores/`` and
        ``curves/`` every entry that the earlier run's config.json does not list as one of its files.
        """
        owned = set(files.TOP_LEVEL) | set(files.FOLDERS) | {files.LOCK}
        for entry in self.target.iterdir():
            if entry.name not in owned and not (self.staging / entry.name).exists():
                os.replace(entry, self.staging / entry.name)
        written = _files_of_run(self.target)
        for folder in files.FOLDERS if written is not None else ():
            if not (self.target / folder).is_dir() or (self.target / folder).is_symlink():
                continue
            for entry in (self.target / folder).iterdir():
                leftover = entry.name.startswith(".") and entry.name.endswith(".tmp")  # of an interrupted write
                dest = self.staging / folder / entry.name
                if f"{folder}/{entry.name}" not in written and not leftover and not dest.exists():
                    dest.parent.mkdir(exist_ok=True)
                    os.replace(entry, dest)

    def _keep_aside(self) -> Path:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        aside = self.target.parent / f"{self.target.name}.incomplete-{stamp}"
        os.replace(self.staging, aside)
        self.path = aside
        return aside

    def release(self) -> None:
        for lock in reversed(self.locks):
            lock.release()
        self.locks.clear()


def _files_of_run(path: Path) -> set[str] | None:
    """The per-model files (and the shared targets) a run's config.json lists, relative to its directory (None:
    its config.json cannot be read, so nothing in its folders can be told apart as a user's)."""
    try:
        config = json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    models = config.get("models") if isinstance(config, dict) else None
    if not isinstance(models, dict):
        return None
    found = {f"{files.SCORES_DIR}/{files.TARGETS_NPZ}"}
    for info in models.values():
        if isinstance(info, dict):
            found |= {info[key] for key in ("scores", "checkpoint", "curve") if isinstance(info.get(key), str)}
    return found


def _make_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise LmbenchError(f"output path {path} exists and is not a directory; choose another --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LmbenchError(f"cannot create output directory {path} ({exc.strerror}); choose another --out") from None


def _probe_writable(path: Path) -> None:
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise LmbenchError(f"cannot write to output directory {path} ({exc.strerror}); choose another --out") from None
