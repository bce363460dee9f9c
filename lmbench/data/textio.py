"""Text files decoded into lines with one-line errors: encodings, byte-order marks, binary content, large files.

Every corpus file goes through :func:`read_text_lines` (decoded in blocks of whole lines where the
encoding allows it), new text through :func:`decode`; only regular files are read (:mod:`lmbench.files`).
"""

from __future__ import annotations

import codecs
import hashlib
import os
from pathlib import Path

from ..errors import LmbenchError
from ..files import open_regular, read_error, read_text_bytes

_BINARY_SNIFF_CHARS = 8192
_BOM = "\ufeff"


def decode(data: bytes, encoding: str, path: str | Path) -> str:
    """Decode a text file's bytes into text with LF line ends.

    A leading byte-order mark (U+FEFF, e.g. from a UTF-8 file saved by Windows Notepad) is dropped.
    Binary content is recognized after decoding, by NUL characters among the first 8192
    characters, so UTF-16 and UTF-32 text (whose bytes contain NULs) is accepted.

    Raises:
        LmbenchError: one line for an unknown encoding, bytes invalid in it (naming the first bad
            byte and the --encoding fix), binary content, or text that is only whitespace.
    """
    try:
        text = data.decode(encoding)
    except LookupError:
        raise LmbenchError(f"unknown encoding {encoding!r}; use a Python codec name such as utf-8 or latin-1") from None
    except UnicodeDecodeError as exc:
        if b"\x00" in data[:_BINARY_SNIFF_CHARS] and not _wide(encoding):
            raise _binary_error(path) from None
        raise _invalid_bytes_error(path, encoding, data[exc.start:exc.start + 1], exc.start) from None
    text = text[1:] if text.startswith(_BOM) else text
    if "\x00" in text[:_BINARY_SNIFF_CHARS]:
        raise _binary_error(path)
    if not text.strip():
        raise LmbenchError(f"{path} is empty (only whitespace); give a file that contains text")
    return text.replace("\r\n", "\n").replace("\r", "\n")


#: bytes :func:`read_text_lines` reads at a time.
READ_BLOCK_BYTES = 16 << 20
#: codecs in which the byte 0x0A is always a line feed, never part of another character.
_LINE_SAFE_CODECS = ("utf-8", "ascii", "latin-1", "iso8859-1", "cp1252")


def read_text_lines(path: str | Path, encoding: str = "utf-8") -> tuple[list[str], str]:
    """The lines of a text file and the sha256 of its bytes: ``decode`` (see there) split on line ends.

    In encodings where the byte 0x0A is always a line feed (UTF-8, ASCII, Latin-1, cp1252) the file
    is read and decoded :data:`READ_BLOCK_BYTES` at a time, cut after a line feed, so neither its
    bytes nor its text exist whole beside the lines of a large corpus. Other encodings (UTF-16, ...)
    are decoded whole. Either way the lines, the checks and the one-line errors are those of
    :func:`decode` on the whole file (a final line end does not start an empty line).
    """
    if not _line_safe(encoding):
        data = read_text_bytes(path)
        return _split_lines(decode(data, encoding, path)), hashlib.sha256(data).hexdigest()
    reader = _BlockDecoder(encoding, path)
    with open_regular(Path(path)) as handle:
        try:
            reader.head = os.pread(handle.fileno(), _BINARY_SNIFF_CHARS, 0)
        except OSError as exc:
            raise read_error(Path(path), exc) from None
        buffer = bytearray()
        while chunk := _read_block(handle, path):
            reader.digest.update(chunk)
            buffer += chunk
            cut = buffer.rfind(b"\n", len(buffer) - len(chunk)) + 1
            if cut:
                reader.feed(bytes(buffer[:cut]))
                del buffer[:cut]
        if buffer:
            reader.feed(bytes(buffer))
    return reader.finish()


def _read_block(handle, path) -> bytes:
    try:
        return handle.read(READ_BLOCK_BYTES)
    except OSError as exc:
        raise read_error(Path(path), exc) from None


class _BlockDecoder:
    """:func:`decode` applied to a file one block of whole lines at a time (see :func:`read_text_lines`)."""

    def __init__(self, encoding: str, path):
        self.encoding, self.path = encoding, path
        self.digest = hashlib.sha256()
        self.lines: list[str] = []
        self.offset = 0          # bytes decoded so far
        self.head = b""          # the file's first bytes, for the binary check of a decoding error (set by the reader)
        self.sniffed = 0         # characters checked for NUL so far
        self.has_text = False

    def feed(self, block: bytes) -> None:
        try:
            text = block.decode(self.encoding)
        except UnicodeDecodeError as exc:
            if b"\x00" in self.head:
                raise _binary_error(self.path) from None
            raise _invalid_bytes_error(self.path, self.encoding, block[exc.start:exc.start + 1],
                                       self.offset + exc.start) from None
        if self.offset == 0 and text.startswith(_BOM):
            text = text[1:]
        if self.sniffed < _BINARY_SNIFF_CHARS:
            if "\x00" in text[:_BINARY_SNIFF_CHARS - self.sniffed]:
                raise _binary_error(self.path)
            self.sniffed += len(text)
        self.has_text = self.has_text or bool(text.strip())
        self.lines.extend(_split_lines(text.replace("\r\n", "\n").replace("\r", "\n")))
        self.offset += len(block)

    def finish(self) -> tuple[list[str], str]:
        if self.offset == 0:
            raise LmbenchError(f"{self.path} is empty; give a file that contains text")
        if not self.has_text:
            raise LmbenchError(f"{self.path} is empty (only whitespace); give a file that contains text")
        return self.lines, self.digest.hexdigest()


def _line_safe(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name in _LINE_SAFE_CODECS
    except LookupError:
        return False   # decode() reports the unknown encoding


def _split_lines(text: str) -> list[str]:
    """Split text on LF (a final LF does not start an empty line)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _invalid_bytes_error(path, encoding: str, bad: bytes, offset: int) -> LmbenchError:
    return LmbenchError(f"{path} is not valid {encoding} (byte 0x{bad.hex()} at offset {offset}); "
                        f"pass --encoding with the file's encoding, e.g. --encoding latin-1 or utf-16")


def _wide(encoding: str) -> bool:
    """Whether an encoding's text legitimately holds NUL bytes (UTF-16, UTF-32)."""
    return codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))


def _binary_error(path) -> LmbenchError:
    return LmbenchError(f"{path} looks binary (it contains NUL characters); give a plain text file "
                        f"(for UTF-16 or UTF-32 text, pass --encoding utf-16 or utf-32)")
