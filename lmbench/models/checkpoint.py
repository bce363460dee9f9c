"""Checkpoints: a fitted model saved as its class, parameters, vocabulary and state, and loaded back.

Two formats, told apart by content, never by file name, and neither ever unpickles an object:

* :data:`FORMAT` (every n-gram model): an uncompressed zip, a valid ``.npz``, of a JSON header
  :data:`HEADER_MEMBER` and one ``<key>.npy`` per array, written and read without torch; arrays of
  :data:`MAP_BYTES` or more are memory-mapped on load, so a large table is scored where it lies.
* :data:`TORCH_FORMAT` (states holding tensors: neural models): ``torch.save`` of tensors and plain
  values, read with ``torch.load(weights_only=True)``.

Only classes of :data:`MODEL_MODULES` are ever imported for a checkpoint; checkpoints of earlier
versions name modules that have moved since, mapped by :data:`MOVED_MODULES`.
"""

from __future__ import annotations

import importlib
import json
import os
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import LmbenchError
from ..files import atomic_writer

#: checkpoints of arrays and plain values (every n-gram model), written and read without torch: an
#: uncompressed zip (a valid ``.npz``) of a JSON header :data:`HEADER_MEMBER` and one ``<key>.npy`` per array.
FORMAT = "lmbench-model/2"
#: checkpoints written with ``torch.save`` (tensors and plain values): states holding tensors (neural models),
#: and every checkpoint of lmbench before :data:`FORMAT`.
TORCH_FORMAT = "lmbench-model/1"
HEADER_MEMBER = "lmbench-model.json"
#: JSON has no tuples: a tuple is written as {"$tuple": [...]} so that parameters come back unchanged.
_TUPLE_TAG = "$tuple"


def _plain(value):
    """A JSON-ready copy of a plain value (None, bool, number, str, list, tuple, dict with str keys).

    Raises:
        TypeError: for anything else (a tensor, an object): such a state needs torch.save.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic) and value.dtype != object:
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return {_TUPLE_TAG: [_plain(v) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value) and set(value) != {_TUPLE_TAG}:
        return {k: _plain(v) for k, v in value.items()}
    raise TypeError(f"not a plain value: {type(value).__name__}")


def _untag(obj: dict):
    return tuple(obj[_TUPLE_TAG]) if set(obj) == {_TUPLE_TAG} else obj


def _zip_checkpoint(payload: dict, file: BinaryIO) -> None:
    """Write a :data:`FORMAT` checkpoint of a payload to ``file``, arrays streamed (memory-mapped ones included).

    Raises:
        TypeError: a non-array value of the state is not plain (before anything is written).
    """
    arrays = {key: payload["state"][key] for key in payload["numpy_keys"]}
    header = {**payload, "format": FORMAT,
              "state": {k: v for k, v in payload["state"].items() if k not in arrays}}
    text = json.dumps(_plain(header))
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(HEADER_MEMBER, text)
        for key, array in arrays.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                _write_npy(member, array)


#: entries per window when a file-backed array is streamed into a checkpoint.
STREAM_ITEMS = 1 << 20


def _is_array(value) -> bool:
    """An array a checkpoint stores as ``.npy``: a numpy array of numbers, or a file-backed array
    (an object with ``dtype``, ``size`` and ``windows(n)``, e.g. :class:`lmbench.models.ngram.ondisk.arrays.ArrayFile`)."""
    if isinstance(value, np.ndarray):
        return value.dtype != object
    return all(hasattr(value, name) for name in ("dtype", "size", "windows"))


def _write_npy(member: BinaryIO, array) -> None:
    """Write ``array`` as a ``.npy`` file; a file-backed one window by window (never read whole)."""
    if isinstance(array, np.ndarray):
        np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
        return
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(array.dtype)), "fortran_order": False,
              "shape": (int(array.size),)}
    np.lib.format.write_array_header_1_0(member, header)
    for _, values in array.windows(STREAM_ITEMS):
        member.write(np.ascontiguousarray(values).tobytes())


def _torch_checkpoint(payload: dict, file: BinaryIO) -> None:
    """Write a :data:`TORCH_FORMAT` checkpoint (``torch.save`` of tensors and plain values, arrays as tensors)."""
    import torch

    state = dict(payload["state"])
    for key in payload["numpy_keys"]:
        state[key] = torch.from_numpy(np.ascontiguousarray(state[key]))
    torch.save({**payload, "format": TORCH_FORMAT, "state": state}, file)


#: a checkpoint whose arrays add up to less than this is read into memory whole: a loaded model then never
#: changes, whatever happens to its file later. Larger ones (n-gram tables counted on disk) are mapped.
COPY_BELOW_BYTES = 256 << 20
#: in a mapped checkpoint, the arrays of at least this many bytes are memory-mapped rather than read.
MAP_BYTES = 1 << 20
#: bytes of a mapped member checked per step against its CRC-32 (the zip's own checksum).
CRC_BLOCK = 16 << 20


def payload_from_zip(archive: zipfile.ZipFile, path: str | Path | None = None, verify: bool = True) -> dict:
    """The payload of an open :data:`FORMAT` checkpoint: its header with the arrays put back in ``state``.

    Arrays are read with ``allow_pickle=False``; nothing in the file is executed. Every ``.npy``
    header is checked against its member's size before anything is allocated (a header may not
    declare more data than the file holds). Read members are checked by their CRC-32 as zipfile
    reads them; with the archive's ``path``, a checkpoint of :data:`COPY_BELOW_BYTES` or more maps its
    arrays of :data:`MAP_BYTES` or more (copy-on-write, see :func:`_mapped_array`), each checked
    against its CRC-32 when ``verify`` (one sequential read; a flipped bit is an error, not other
    scores). Raises ValueError, KeyError or zipfile.BadZipFile for a damaged file.
    """
    payload = json.loads(archive.read(HEADER_MEMBER), object_hook=_untag)
    if not isinstance(payload, dict) or not isinstance(payload.get("state"), dict):
        raise ValueError("the header is not a checkpoint header")
    infos = {key: archive.getinfo(f"{key}.npy") for key in payload.get("numpy_keys", [])}
    total = sum(info.file_size for info in infos.values())
    for key, info in infos.items():
        mapped = None
        if path is not None and total >= COPY_BELOW_BYTES:
            mapped = _mapped_array(path, info)
            if mapped is not None and verify:
                _check_crc(path, info, mapped)
        if mapped is None:
            with archive.open(info) as member:
                _check_npy_size(member, info)
            with archive.open(info) as member:
                mapped = np.lib.format.read_array(member, allow_pickle=False)
        payload["state"][key] = mapped
    return payload


def _npy_header(handle) -> tuple[tuple, bool, np.dtype]:
    version = np.lib.format.read_magic(handle)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return read_header(handle)


def _declared_bytes(shape, dtype: np.dtype) -> int:
    n = 1
    for dim in shape:
        n *= int(dim)
    return n * dtype.itemsize


def _check_npy_size(member, info: zipfile.ZipInfo) -> None:
    """Refuse a ``.npy`` member whose header declares another amount of data than the member holds."""
    shape, _, dtype = _npy_header(member)
    if dtype.hasobject:
        raise ValueError(f"member {info.filename} holds Python objects")
    declared, stored = _declared_bytes(shape, dtype), info.file_size - member.tell()
    if declared != stored:
        raise ValueError(f"member {info.filename} declares shape {shape} of {dtype} ({declared:,} bytes) but holds "
                         f"{stored:,} bytes")


def _mapped_array(path: str | Path, info: zipfile.ZipInfo) -> np.ndarray | None:
    """A copy-on-write memory map of a stored ``.npy`` member (None: small, compressed or of objects).

    The member's bytes start after its local file header (30 bytes, then the name and the extra
    field, whose lengths it gives); they are a ``.npy`` file whose header says dtype, shape and order.
    A map holds the file it was made from: replacing the checkpoint later (lmbench writes by rename)
    does not change a loaded model; :func:`check_unchanged` notices a file changed in place.
    """
    if info.compress_type != zipfile.ZIP_STORED or info.file_size < MAP_BYTES:
        return None
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(30)
        if local[:4] != b"PK\x03\x04":
            raise ValueError(f"member {info.filename} has no local header")
        name_length, extra_length = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
        start = info.header_offset + 30 + name_length + extra_length
        handle.seek(start)
        shape, fortran_order, dtype = _npy_header(handle)
        offset = handle.tell()
        file_size = os.fstat(handle.fileno()).st_size
    if dtype.hasobject:
        raise ValueError(f"member {info.filename} holds Python objects")
    declared = _declared_bytes(shape, dtype)
    if declared != info.file_size - (offset - start) or start + info.file_size > file_size:
        raise ValueError(f"member {info.filename} declares shape {shape} of {dtype} ({declared:,} bytes), which is "
                         f"not what the file holds")
    return np.memmap(path, dtype=dtype, mode="c", offset=offset, shape=shape, order="F" if fortran_order else "C")


def _check_crc(path, info: zipfile.ZipInfo, mapped: np.ndarray) -> None:
    """Compare a mapped member (its ``.npy`` header and data) with the CRC-32 the zip recorded for it."""
    import zlib

    data_offset = mapped.offset
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(30)
        start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
        handle.seek(start)
        crc = zlib.crc32(handle.read(data_offset - start))
        remaining = info.file_size - (data_offset - start)
        while remaining > 0:
            chunk = handle.read(min(CRC_BLOCK, remaining))
            if not chunk:
                break
            crc = zlib.crc32(chunk, crc)
            remaining -= len(chunk)
    if crc != info.CRC:
        raise ValueError(f"member {info.filename} does not match its CRC-32 (the file was changed or damaged)")


def file_signature(path) -> tuple:
    """What :func:`check_unchanged` compares: the file's inode, size and modification time."""
    st = os.stat(path)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def check_unchanged(model) -> None:
    """Raise a one-line LmbenchError if the checkpoint a model's arrays are mapped from changed since it was loaded.

    A model read whole (every checkpoint below :data:`COPY_BELOW_BYTES`) never depends on its file.
    """
    mapped = getattr(model, "mapped_from_", None)
    if mapped is None:
        return
    path, signature = mapped
    try:
        now = file_signature(path)
    except OSError:
        now = None
    if now != signature:
        raise LmbenchError(f"{path} changed on disk after the model was loaded from it (its arrays are mapped from "
                           f"the file); load the model again")


def save_model(model, path: str | Path) -> None:
    """Save a fitted model as a checkpoint: config, vocabulary and fitted state (never a pickled object).

    A state of arrays (in memory, or file-backed and streamed window by window) and plain values is
    written without torch, as :data:`FORMAT`; a state holding tensors with ``torch.save``, as
    :data:`TORCH_FORMAT`. The file is written to a temporary name and renamed into place when complete.
    """
    state = model.state_dict()
    numpy_keys = [key for key, value in state.items() if isinstance(key, str) and _is_array(value)]
    payload = {"class": f"{type(model).__module__}.{type(model).__qualname__}", "params": model.get_params(),
               "vocab": model.vocab_.to_list(), "state": state, "numpy_keys": numpy_keys}
    try:
        with atomic_writer(path) as file:
            _zip_checkpoint(payload, file)
    except TypeError:  # tensors or other objects in the state: only torch can store them
        with atomic_writer(path) as file:
            _torch_checkpoint(payload, file)


# ---------------------------------------------------------------- loading

#: the modules whose classes a checkpoint may name (nothing else is ever imported for one).
MODEL_MODULES = (
    "lmbench.models.ngram.mle", "lmbench.models.ngram.model", "lmbench.models.ngram.interpolated", "lmbench.models.ngram.katz",
    "lmbench.models.ngram.jelinek_mercer", "lmbench.models.ngram.stupid_backoff", "lmbench.models.ngram.infgram",
    "lmbench.models.ngram.arpa", "lmbench.models.neural.recurrent", "lmbench.models.neural.transformer",
    "lmbench.models.mixture", "lmbench.models.pretrained",
)
#: where the modules named by checkpoints of lmbench 0.2 live now.
MOVED_MODULES = {
    "lmbench.models.ngram": "lmbench.models.ngram.mle",
    "lmbench.models.interpolated": "lmbench.models.ngram.interpolated",
    "lmbench.models.katz": "lmbench.models.ngram.katz",
    "lmbench.models.jelinek_mercer": "lmbench.models.ngram.jelinek_mercer",
    "lmbench.models.stupid_backoff": "lmbench.models.ngram.stupid_backoff",
    "lmbench.models.infgram": "lmbench.models.ngram.infgram",
    "lmbench.arpa": "lmbench.models.ngram.arpa",
    "lmbench.models.neural": "lmbench.models.neural.recurrent",
    "lmbench.models.transformer": "lmbench.models.neural.transformer",
}


def checkpoint_class(name, path) -> type:
    """The model class a checkpoint names, importing its module (torch for neural ones) only now."""
    module, _, qualname = str(name).rpartition(".")
    module = MOVED_MODULES.get(module, module)
    if module not in MODEL_MODULES:
        raise LmbenchError(f"{path} holds an unknown model class {name!r}; it was saved by another version of "
                           f"lmbench or by code not installed here")
    try:
        cls = importlib.import_module(module)
    except ImportError as exc:  # e.g. a neural model's module without torch installed
        raise LmbenchError(f"{path} holds a {name} model, which needs {exc.name or module}: {exc}") from None
    for part in qualname.split("."):
        cls = getattr(cls, part, None)
    if not isinstance(cls, type) or not hasattr(cls, "from_payload"):
        raise LmbenchError(f"{path} holds an unknown model class {name!r}; it was saved by another version of "
                           f"lmbench or by code not installed here")
    return cls


def load_model(path, verify: bool = True):
    """Load a model saved with :func:`save_model` (or ``LanguageModel.save``).

    Args:
        path: the checkpoint.
        verify: check mapped arrays against their CRC-32 (see :func:`payload_from_zip`).

    Anything that is not such a checkpoint (empty, truncated, a text file, someone else's zip or
    PyTorch file, an array header larger than its data) is a one-line LmbenchError saying what the
    file is.
    """
    path = Path(path)
    payload = read_checkpoint(path, verify)
    cls = checkpoint_class(payload["class"], path)
    try:
        model = cls.from_payload(payload)
        if any(isinstance(v, np.memmap) for v in payload["state"].values()):
            model.mapped_from_ = (path, file_signature(path))
        return model
    except LmbenchError as exc:
        raise LmbenchError(f"{path}: {exc}") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RuntimeError) as exc:
        raise LmbenchError(f"{path} is a damaged lmbench checkpoint ({type(exc).__name__}: {_first_line(exc)}); "
                           f"{REMAKE}") from None


#: the fix for a damaged checkpoint, ending its one-line error.
REMAKE = "make it again (re-run the `lmbench run` that wrote it, or lmbench.models.save_model)"


def read_checkpoint(path: Path, verify: bool = True) -> dict:
    """The payload of a checkpoint file (format, class, params, vocab, state, numpy_keys), checked."""
    head = _read_head(path)
    if not zipfile.is_zipfile(path):
        if head.startswith(b"PK\x03\x04"):
            raise LmbenchError(f"{path} is truncated (a zip archive without its end): the write or copy that made it "
                               f"was cut short; {REMAKE}")
        what = "a text file" if _looks_like_text(head) else "not a zip archive"
        raise LmbenchError(f"{path} is not an lmbench checkpoint ({what}); checkpoints are the models/*.pt files "
                           f"that `lmbench run` writes")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if HEADER_MEMBER in names:
                payload = payload_from_zip(archive, path, verify)
            elif any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
                payload = None
            else:
                raise LmbenchError(f"{path} is a zip archive but not an lmbench checkpoint (no {HEADER_MEMBER}, "
                                   f"no PyTorch data.pkl)")
    except (zipfile.BadZipFile, ValueError, KeyError, EOFError) as exc:
        raise LmbenchError(f"{path} is a damaged lmbench checkpoint ({_first_line(exc)}); {REMAKE}") from None
    if payload is None:
        payload = _torch_payload(path)
    _check_payload(payload, path)
    return payload


def _read_head(path: Path) -> bytes:
    """The first bytes of a file, after one-line errors for a missing, unreadable or empty one."""
    if not path.exists():
        raise LmbenchError(f"model file not found: {path}")
    if path.is_dir():
        raise LmbenchError(f"{path} is a directory, not a model file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError as exc:
        raise LmbenchError(f"cannot read model file {path}: {exc.strerror}") from None
    if not head:
        raise LmbenchError(f"{path} is empty (0 bytes), not an lmbench checkpoint; {REMAKE}")
    return head


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a multi-byte character cut at the end of the sample is still text
        return exc.start >= len(head) - 3 and b"\x00" not in head
    return b"\x00" not in head


def _torch_payload(path: Path):
    """torch.load a PyTorch zip file with weights_only=True (tensors and plain values only)."""
    import pickle

    try:
        import torch
    except ModuleNotFoundError:
        raise LmbenchError(f"{path} is a PyTorch checkpoint (a neural model, or a model saved by lmbench before "
                           f"{FORMAT}); reading it needs torch, which is not installed") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise LmbenchError(f"{path} is a PyTorch file but not an lmbench checkpoint (it pickles Python objects; "
                           f"lmbench checkpoints hold only tensors and plain values)") from None
    except Exception as exc:  # torch raises RuntimeError and others for damaged archives
        raise LmbenchError(f"{path} is a damaged PyTorch file ({_first_line(exc)}); {REMAKE}") from None


_PAYLOAD_TYPES = {"class": str, "params": dict, "vocab": list, "state": dict, "numpy_keys": list}


def _check_payload(payload, path: Path) -> None:
    """One-line errors for a payload that is not an lmbench checkpoint of a format this version reads."""
    if not isinstance(payload, dict) or "format" not in payload:
        raise LmbenchError(f"{path} is a PyTorch file but not an lmbench checkpoint (no lmbench format marker)")
    if payload["format"] not in (FORMAT, TORCH_FORMAT):
        raise LmbenchError(f"{path} is an lmbench checkpoint of format {payload['format']!r}, which this version "
                           f"does not read ({FORMAT} or {TORCH_FORMAT}); use the lmbench version that wrote it")
    for key, kind in _PAYLOAD_TYPES.items():
        if not isinstance(payload.get(key), kind):
            raise LmbenchError(f"{path} is a damaged lmbench checkpoint ({key!r} missing or not a {kind.__name__}); "
                               f"{REMAKE}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
