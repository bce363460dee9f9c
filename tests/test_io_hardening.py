"""Reading and writing files safely: bounded reads, atomic writes that never damage what is there,
encodings, and paths with ``~user``."""

from __future__ import annotations

import errno
import os
import stat
import threading

import pytest

from lmbench.data.corpora import load_corpus
from lmbench.errors import LmbenchError
from lmbench.files import atomic_write_bytes, atomic_write_json, atomic_write_text, expand_path, read_text_bytes

NO_USER = "~lmbench_no_such_user_x9"


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def fail_with(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    return fail


# ---------------------------------------------------------------- atomic writes


@pytest.mark.parametrize("writer, payload", [(atomic_write_bytes, b"x"), (atomic_write_text, "x"),
                                             (atomic_write_json, {"a": 1})])
def test_atomic_writers_refuse_a_device_node_target(writer, payload):
    # as root, os.replace would swap /dev/null for a regular file
    with pytest.raises(LmbenchError, match="/dev/null exists and is a character device, not a regular file") as info:
        writer("/dev/null", payload)
    one_line(info)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_atomic_write_refuses_a_fifo_and_a_directory_target(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "folder").mkdir()
    for name, kind in [("pipe", "a FIFO"), ("folder", "a directory")]:
        with pytest.raises(LmbenchError, match=f"exists and is {kind}"):
            atomic_write_text(tmp_path / name, "x")
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe").st_mode) and (tmp_path / "folder").is_dir()
    assert leftovers(tmp_path) == []


def test_disk_full_during_a_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "results.csv"
    target.write_text("old, good\n")
    real_write = os.write
    written = []

    def write_then_fill_the_disk(fd, data):        # the first 100 bytes fit, then the disk is full
        if written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(real_write(fd, bytes(data[:100])))
        return written[-1]

    with monkeypatch.context() as patch:
        patch.setattr(os, "write", write_then_fill_the_disk)
        with pytest.raises(LmbenchError, match="the disk is full") as info:
            atomic_write_text(target, "new\n" * 1000)
    one_line(info)
    assert written == [100]
    assert target.read_text() == "old, good\n" and leftovers(tmp_path) == []


def test_a_replaced_file_is_flushed_to_disk_before_the_rename(tmp_path, monkeypatch):
    target = tmp_path / "results.csv"
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    atomic_write_text(target, "first\n")        # a new file: nothing on disk to lose, no fsync
    atomic_write_text(target, "second\n")
    assert events == ["replace", "fsync", "replace"] and target.read_text() == "second\n"


def test_a_failed_rename_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "config.json"
    target.write_text("{}\n")
    monkeypatch.setattr(os, "replace", fail_with(errno.EIO))
    with pytest.raises(LmbenchError, match="cannot write .*config.json"):
        atomic_write_json(target, {"new": True})
    assert target.read_text() == "{}\n" and leftovers(tmp_path) == []


def test_writing_into_a_missing_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(LmbenchError, match="its folder does not exist") as info:
        atomic_write_text(tmp_path / "no" / "such" / "out.txt", "x")
    one_line(info)
    assert not (tmp_path / "no").exists()


def test_writing_into_a_read_only_folder_is_a_one_line_error(tmp_path, monkeypatch):
    # simulated: root ignores permission bits, so chmod alone would not make the folder read-only
    monkeypatch.setattr(os, "open", fail_with(errno.EROFS))
    with pytest.raises(LmbenchError, match="the file system is read-only") as info:
        atomic_write_text(tmp_path / "out.txt", "x")
    one_line(info)


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "private.json"
    target.write_text("{}")
    target.chmod(0o600)
    atomic_write_json(target, {"a": 1})
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_text() == '{\n  "a": 1\n}\n'


def test_a_new_file_follows_the_umask_without_changing_it(tmp_path, monkeypatch):
    previous = os.umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", lambda *a: pytest.fail("os.umask changed the process-wide umask"))
        atomic_write_text(tmp_path / "new.txt", "x")
    finally:
        monkeypatch.undo()
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o640


def test_writes_from_many_threads_each_get_a_whole_file(tmp_path):
    def write(i):
        atomic_write_text(tmp_path / "shared.txt", f"{i}\n" * 2000)
    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = set((tmp_path / "shared.txt").read_text().splitlines())
    assert len(lines) == 1 and leftovers(tmp_path) == []


def test_a_symlinked_target_keeps_its_link(tmp_path):
    (tmp_path / "real.txt").write_text("old")
    (tmp_path / "link.txt").symlink_to("real.txt")
    atomic_write_text(tmp_path / "link.txt", "new")
    assert (tmp_path / "link.txt").is_symlink() and (tmp_path / "real.txt").read_text() == "new"


# ---------------------------------------------------------------- bounded reads


def test_corpus_from_dev_zero_is_refused_without_reading(monkeypatch):
    monkeypatch.setattr(os, "open", lambda *a, **k: pytest.fail("a device was opened"))
    with pytest.raises(LmbenchError, match="/dev/zero is a character device, not a text file") as info:
        load_corpus("/dev/zero")
    one_line(info)
    with pytest.raises(LmbenchError, match="character device"):
        read_text_bytes("/dev/zero")          # what the suite loader uses for --config


def test_a_fifo_is_refused_without_being_opened(tmp_path, monkeypatch):
    fifo = tmp_path / "corpus.txt"
    os.mkfifo(fifo)
    monkeypatch.setattr(os, "open", lambda *a, **k: pytest.fail("the FIFO was opened (it would block)"))
    with pytest.raises(LmbenchError, match="corpus.txt is a FIFO, not a text file"):
        load_corpus(str(fifo))


def test_a_file_swapped_for_a_device_after_stat_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    path.write_text("text\n")
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, *a, **k: real_open("/dev/zero", *a, **k))
    with pytest.raises(LmbenchError, match="is a character device"):
        read_text_bytes(path)


def test_reading_a_missing_or_empty_file_is_a_one_line_error(tmp_path):
    with pytest.raises(LmbenchError, match="file not found"):
        read_text_bytes(tmp_path / "absent.txt")
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(LmbenchError, match="is empty"):
        read_text_bytes(tmp_path / "empty.txt")


# ---------------------------------------------------------------- ~user paths


def test_expand_path_turns_an_unknown_user_into_a_one_line_error():
    with pytest.raises(LmbenchError, match=f"cannot expand '{NO_USER}'.*write the path out in full") as info:
        expand_path(f"{NO_USER}/corpus.txt")
    one_line(info)
    assert expand_path("~/x") == expand_path(os.path.expanduser("~/x"))


def test_unknown_user_in_a_corpus_path_or_data_variable_is_a_one_line_error(monkeypatch):
    with pytest.raises(LmbenchError, match="cannot expand"):
        load_corpus(f"{NO_USER}/corpus.txt")
    monkeypatch.setenv("LMBENCH_DATA", f"{NO_USER}/data")
    with pytest.raises(LmbenchError, match="cannot expand"):
        load_corpus("ptb")
    monkeypatch.delenv("LMBENCH_DATA")
    monkeypatch.setenv("LMBENCH_CACHE", NO_USER)
    with pytest.raises(LmbenchError, match="cannot expand"):
        load_corpus("ptb")


# ---------------------------------------------------------------- encodings


def test_utf8_byte_order_mark_is_not_part_of_the_first_token(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfhello world\n" + b"more words\n" * 9)
    raw = load_corpus(str(path))
    assert raw.splits["train"][0] == "hello world" and raw.splits["train"][0].split()[0] == "hello"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_utf16_and_utf32_files_read_with_their_encoding(tmp_path, encoding):
    path = tmp_path / "wide.txt"
    lines = [f"ligne {i} caf\u00e9 \u8bed\u8a00" for i in range(10)]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    assert sum(load_corpus(str(path), encoding=encoding).splits.values(), []) == lines


def test_utf16_file_read_as_utf8_says_which_encoding_to_pass(tmp_path):
    path = tmp_path / "wide.txt"
    path.write_text("some text\n" * 10, encoding="utf-16")
    with pytest.raises(LmbenchError, match="pass --encoding utf-16") as info:
        load_corpus(str(path))
    one_line(info)


def test_binary_data_is_still_refused_after_decoding(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 4)
    for encoding in ("utf-8", "latin-1"):
        with pytest.raises(LmbenchError, match="looks binary"):
            load_corpus(str(path), encoding=encoding)

