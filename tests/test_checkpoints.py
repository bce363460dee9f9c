"""Checkpoints: n-gram models round-trip without torch, neural ones through torch, old files still load,
and every file that is not a readable lmbench checkpoint is a one-line error saying what it is."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import textwrap
import warnings
import zipfile

import numpy as np
import pytest

from lmbench.errors import LmbenchError
from lmbench.models.checkpoint import FORMAT, HEADER_MEMBER, TORCH_FORMAT
from lmbench.models.ngram.interpolated import AbsoluteDiscount, KneserNey, WittenBell
from lmbench.models.ngram.jelinek_mercer import JelinekMercer
from lmbench.models.ngram.katz import Katz
from lmbench.models.ngram.mle import MLE, AddK
from lmbench.models.ngram.stupid_backoff import StupidBackoff
from lmbench.models.checkpoint import load_model
from lmbench.models.registry import resolve

#: one model of every n-gram family, parameters chosen so that every kind of fitted state is saved
#: (tuned k, estimated and given discounts with tuples, EM lambdas, Katz ratios).
FAMILIES = {
    "mle": (MLE, {"order": 3}),
    "addk-tuned": (AddK, {"order": 3, "k": None}),
    "kn": (KneserNey, {"order": 4}),
    "kn-given": (KneserNey, {"order": 2, "discounts": [(0.4, 0.9, 1.3), 0.6]}),
    "kn1": (KneserNey, {"order": 3, "modified": False}),
    "wb": (WittenBell, {"order": 3}),
    "abs": (AbsoluteDiscount, {"order": 3, "discount": [0.5, 0.6, 0.7]}),
    "katz": (Katz, {"order": 3, "max_count": 3}),
    "interp": (JelinekMercer, {"order": 3}),
    "stupid": (StupidBackoff, {"order": 3, "alpha": 0.3}),
}


def fit(cls, params, ds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # small-data fallbacks
        return cls(**params).fit(ds.splits["train"], ds.splits["valid"], vocab=ds.vocab)


def one_line_error(path, match: str) -> str:
    with pytest.raises(LmbenchError) as info:
        load_model(path)
    message = str(info.value)
    assert "\n" not in message and match in message, message
    assert "weights_only" not in message and "Errno" not in message
    return message


@pytest.fixture
def ngram_file(tmp_path, tiny_dataset):
    path = tmp_path / "kn.pt"
    fit(KneserNey, {"order": 3}, tiny_dataset).save(path)
    return path


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", FAMILIES)
def test_every_ngram_family_round_trips_through_the_torch_free_format(tmp_path, tiny_dataset, name):
    cls, params = FAMILIES[name]
    ds, test = tiny_dataset, tiny_dataset.splits["test"]
    model = fit(cls, params, ds)
    model.save(tmp_path / "m.pt")
    with zipfile.ZipFile(tmp_path / "m.pt") as archive:
        header = json.loads(archive.read(HEADER_MEMBER))
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
    assert header["format"] == FORMAT and header["class"] == f"{cls.__module__}.{cls.__qualname__}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # the fitted hyperparameters are loaded, not re-estimated
        loaded = load_model(tmp_path / "m.pt")
    assert type(loaded) is cls and loaded.get_params() == model.get_params()
    assert loaded.fitted_summary() == model.fitted_summary() and loaded.n_params == model.n_params
    assert loaded.vocab_.to_list() == model.vocab_.to_list()
    np.testing.assert_array_equal(loaded.logprobs(test), model.logprobs(test))
    np.testing.assert_array_equal(loaded.next_logprobs(test[:4]), model.next_logprobs(test[:4]))


def test_checkpoint_is_an_npz_of_the_counts(tmp_path, tiny_dataset):
    """The arrays are plain .npy members: numpy alone reads them back, no lmbench, no pickle."""
    model = fit(KneserNey, {"order": 3}, tiny_dataset)
    model.save(tmp_path / "m.pt")
    with np.load(tmp_path / "m.pt", allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["counts.1"], model.counts_.counts[1])
        np.testing.assert_array_equal(npz["keys.3"], model.counts_.keys[3])
        np.testing.assert_array_equal(npz["discounts_"], model.discounts_)


def test_tuple_parameters_come_back_as_tuples(tmp_path, tiny_dataset):
    """JSON has no tuples; a (D1, D2, D3+) triple must not come back as a list."""
    model = fit(KneserNey, {"order": 2, "discounts": ((0.4, 0.9, 1.3), [0.5, 0.8, 1.2])}, tiny_dataset)
    model.save(tmp_path / "m.pt")
    discounts = load_model(tmp_path / "m.pt").discounts
    assert discounts == ((0.4, 0.9, 1.3), [0.5, 0.8, 1.2])
    assert type(discounts) is tuple and type(discounts[0]) is tuple and type(discounts[1]) is list


def test_ngram_save_and_load_never_import_torch(tmp_path, tiny_dataset):
    """A fresh interpreter fits, saves and loads every n-gram family: torch stays out of sys.modules."""
    lines = [" ".join(f"w{(i * 7 + j) % 11}" for j in range(1 + i % 6)) for i in range(200)]
    (tmp_path / "lines.json").write_text(json.dumps(lines))
    script = textwrap.dedent(f"""
        import json, sys, warnings
        import numpy as np
        from lmbench.data.corpora import RawCorpus
        from lmbench.data.dataset import build_dataset
        from lmbench.models.checkpoint import load_model
        from lmbench.models.registry import resolve
        from lmbench.data.tokenizers import Tokenizer
        warnings.simplefilter("ignore")
        lines = json.load(open({str(tmp_path / 'lines.json')!r}))
        ds = build_dataset(RawCorpus("t", {{"train": lines[:160], "valid": lines[160:180], "test": lines[180:]}}),
                           Tokenizer("word"))
        for i, name in enumerate(["trigram", "trigram-addk", "4gram-kn", "trigram-kn1", "trigram-wb",
                                  "trigram-abs", "trigram-katz", "trigram-interp", "trigram-stupid"]):
            model = resolve(name).build().fit(ds.splits["train"], ds.splits["valid"], vocab=ds.vocab)
            path = {str(tmp_path)!r} + f"/{{i}}.pt"
            model.save(path)
            again = load_model(path)
            assert np.array_equal(again.logprobs(ds.splits["test"]), model.logprobs(ds.splits["test"])), name
        print("torch imported:", "torch" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "torch imported: False"


def test_neural_model_round_trips_through_torch_save(tmp_path, tiny_dataset):
    pytest.importorskip("torch")
    ds, test = tiny_dataset, tiny_dataset.splits["test"]
    spec = resolve("lstm", {"hidden_size": 8, "num_steps": 8, "batch_size": 4, "epochs": 1, "progress": False,
                            "device": "cpu"})
    model = spec.build().fit(ds.splits["train"], ds.splits["valid"], vocab=ds.vocab)
    model.save(tmp_path / "lstm.pt")
    with zipfile.ZipFile(tmp_path / "lstm.pt") as archive:   # a torch.save archive, not the n-gram format
        assert HEADER_MEMBER not in archive.namelist()
        assert any(name.endswith("/data.pkl") for name in archive.namelist())
    loaded = load_model(tmp_path / "lstm.pt")
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.logprobs(test), model.logprobs(test))
    assert loaded.training_curve() == model.training_curve()


def test_checkpoints_of_the_previous_torch_format_still_load(tmp_path, tiny_dataset):
    """lmbench-model/1: torch.save of {format, class, params, vocab, state with arrays as tensors, numpy_keys}."""
    torch = pytest.importorskip("torch")
    model = fit(KneserNey, {"order": 3}, tiny_dataset)
    state = model.state_dict()
    numpy_keys = [k for k, v in state.items() if isinstance(v, np.ndarray)]
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) if k in numpy_keys else v for k, v in state.items()}
    torch.save({"format": TORCH_FORMAT, "class": "lmbench.models.ngram.interpolated.KneserNey",
                "params": model.get_params(), "vocab": model.vocab_.to_list(), "state": state,
                "numpy_keys": numpy_keys}, tmp_path / "old.pt")
    loaded = load_model(tmp_path / "old.pt")
    test = tiny_dataset.splits["test"]
    np.testing.assert_array_equal(loaded.logprobs(test), model.logprobs(test))


# ---------------------------------------------------------------- files that are not checkpoints


def test_empty_file_is_named_as_empty(tmp_path):
    (tmp_path / "m.pt").write_bytes(b"")
    one_line_error(tmp_path / "m.pt", "is empty (0 bytes)")


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_ngram_checkpoint_is_named_as_truncated(ngram_file, keep):
    data = ngram_file.read_bytes()
    ngram_file.write_bytes(data[: int(len(data) * keep)])
    one_line_error(ngram_file, "is truncated")


def test_truncated_torch_checkpoint_is_named_as_truncated(tmp_path):
    torch = pytest.importorskip("torch")
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(100)}, buffer)
    (tmp_path / "m.pt").write_bytes(buffer.getvalue()[:300])
    one_line_error(tmp_path / "m.pt", "is truncated")


def test_text_file_is_named_as_text(tmp_path):
    (tmp_path / "notes.pt").write_text("the time traveller (for so it will be convenient to speak of him)\n")
    one_line_error(tmp_path / "notes.pt", "is not an lmbench checkpoint (a text file)")


def test_binary_file_is_not_a_checkpoint(tmp_path):
    (tmp_path / "m.pt").write_bytes(bytes(range(256)) * 4)
    one_line_error(tmp_path / "m.pt", "is not an lmbench checkpoint (not a zip archive)")


def test_someone_elses_zip_is_not_a_checkpoint(tmp_path):
    with zipfile.ZipFile(tmp_path / "m.pt", "w") as archive:
        archive.writestr("readme.txt", "hello")
    one_line_error(tmp_path / "m.pt", f"a zip archive but not an lmbench checkpoint (no {HEADER_MEMBER}")


def test_someone_elses_torch_state_dict_is_not_a_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save(torch.nn.Linear(3, 2).state_dict(), tmp_path / "m.pt")
    one_line_error(tmp_path / "m.pt", "is a PyTorch file but not an lmbench checkpoint (no lmbench format marker)")


def test_torch_file_pickling_objects_is_refused_without_unpickling(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save(torch.nn.Linear(3, 2), tmp_path / "m.pt")
    one_line_error(tmp_path / "m.pt", "it pickles Python objects")


def rewrite_header(path, **changes):
    """Rewrite a FORMAT checkpoint with some header fields changed (arrays kept)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    header = {**json.loads(members[HEADER_MEMBER]), **changes}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, json.dumps(header) if name == HEADER_MEMBER else data)


def test_unknown_class_is_named_and_its_module_never_imported(ngram_file):
    rewrite_header(ngram_file, **{"class": "lmbench.models.gone.FancyLM"})
    one_line_error(ngram_file, "holds an unknown model class 'lmbench.models.gone.FancyLM'")
    assert "lmbench.models.gone" not in sys.modules


def test_class_outside_the_registry_is_not_imported(ngram_file):
    """A checkpoint cannot make lmbench import arbitrary modules, only those defining registry models."""
    rewrite_header(ngram_file, **{"class": "lmbench.cli.LmbenchGroup"})
    one_line_error(ngram_file, "unknown model class 'lmbench.cli.LmbenchGroup'")


def test_newer_format_asks_for_the_version_that_wrote_it(ngram_file):
    rewrite_header(ngram_file, format="lmbench-model/99")
    one_line_error(ngram_file, "of format 'lmbench-model/99', which this version does not read")


def test_missing_array_is_a_damaged_checkpoint(ngram_file):
    with zipfile.ZipFile(ngram_file) as archive:
        members = {name: archive.read(name) for name in archive.namelist() if name != "counts.2.npy"}
    with zipfile.ZipFile(ngram_file, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    one_line_error(ngram_file, "is a damaged lmbench checkpoint")


def test_invalid_parameters_in_a_checkpoint_are_refused_before_counting(ngram_file):
    rewrite_header(ngram_file, params={"order": 10**9, "discounts": None, "modified": True})
    message = one_line_error(ngram_file, "n-gram order must be at most 64")
    assert message.startswith(str(ngram_file))


def test_missing_file_and_directory(tmp_path):
    one_line_error(tmp_path / "nope.pt", "model file not found")
    one_line_error(tmp_path, "is a directory, not a model file")


def test_failed_load_leaves_the_file_untouched(ngram_file):
    rewrite_header(ngram_file, format="lmbench-model/99")
    before = ngram_file.read_bytes()
    one_line_error(ngram_file, "does not read")
    assert ngram_file.read_bytes() == before


# ---------------------------------------------------------------- hostile tables and files (issue 16, section 6)


def rewrite_member(path, name, data: bytes):
    """Rewrite a FORMAT checkpoint with one member's bytes replaced (the zip's CRC-32 made to match)."""
    with zipfile.ZipFile(path) as archive:
        members = {member: archive.read(member) for member in archive.namelist()}
    members[name] = data
    with zipfile.ZipFile(path, "w") as archive:
        for member, payload in members.items():
            archive.writestr(member, payload)


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def member_array(path, name):
    with zipfile.ZipFile(path) as archive, archive.open(name) as member:
        return np.lib.format.read_array(member)


def test_unsorted_ngram_keys_in_a_checkpoint_are_refused_not_scored(ngram_file):
    keys = member_array(ngram_file, "keys.2.npy")
    assert keys.size > 2
    rewrite_member(ngram_file, "keys.2.npy", npy_bytes(keys[::-1].copy()))
    one_line_error(ngram_file, "the 2-gram keys are not strictly increasing")


def test_a_key_past_the_tables_is_refused_before_anything_is_sized_by_it(ngram_file):
    """A 44 kB checkpoint whose last key is 2**50 would otherwise size an allocation of hundreds of GiB."""
    keys = member_array(ngram_file, "keys.3.npy")
    keys[-1] = 2**50
    rewrite_member(ngram_file, "keys.3.npy", npy_bytes(keys))
    one_line_error(ngram_file, "a 3-gram key names no stored 2-gram")


def test_zero_or_negative_counts_in_a_checkpoint_are_refused(ngram_file):
    counts = member_array(ngram_file, "counts.2.npy")
    counts[0] = 0
    rewrite_member(ngram_file, "counts.2.npy", npy_bytes(counts))
    one_line_error(ngram_file, "the 2-gram counts must be positive")


def test_an_npy_header_declaring_1e11_entries_is_refused_before_allocating(ngram_file):
    body = npy_bytes(member_array(ngram_file, "counts.2.npy"))
    head_length = 10 + int.from_bytes(body[8:10], "little")      # magic, version, length, then the header dict
    head = body[:head_length].decode("latin1")
    huge = re.sub(r"'shape': \(\d+,\)", "'shape': (100000000000,)", head).rstrip(" \n")
    rewrite_member(ngram_file, "counts.2.npy", huge.ljust(head_length - 1).encode("latin1") + b"\n" + body[head_length:])
    one_line_error(ngram_file, "declares shape (100000000000,)")


@pytest.fixture
def mapped(monkeypatch):
    """Make every checkpoint count as large: its arrays memory-mapped (and CRC-checked) as a disk table's are."""
    from lmbench.models import checkpoint

    monkeypatch.setattr(checkpoint, "COPY_BELOW_BYTES", 0)
    monkeypatch.setattr(checkpoint, "MAP_BYTES", 16)


def flip_a_bit_of(path, name):
    """Flip one bit in the last data byte of a member, leaving the zip's recorded CRC-32 as it was."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    with open(path, "r+b") as handle:
        handle.seek(info.header_offset + 26)
        local = handle.read(4)
        start = info.header_offset + 30 + int.from_bytes(local[:2], "little") + int.from_bytes(local[2:], "little")
        handle.seek(start + info.file_size - 1)
        byte = handle.read(1)[0]
        handle.seek(start + info.file_size - 1)
        handle.write(bytes([byte ^ 1]))


def test_a_flipped_bit_in_a_mapped_member_is_an_error_not_other_scores(ngram_file, mapped):
    assert load_model(ngram_file).mapped_from_[0] == ngram_file      # intact, it loads (mapped)
    flip_a_bit_of(ngram_file, "counts.2.npy")
    one_line_error(ngram_file, "does not match its CRC-32")


def test_a_mapped_checkpoint_truncated_or_overwritten_after_loading_is_named_before_scoring(
        ngram_file, mapped, tiny_dataset):
    from lmbench.scoring.text import TextModel

    model = load_model(ngram_file)
    assert model.mapped_from_[0] == ngram_file
    text_model = TextModel(model, tiny_dataset.tokenizer)
    text_model.score_text("w0 w1 w2\n")
    with open(ngram_file, "r+b") as handle:     # truncated in place: touching the map would be SIGBUS
        handle.truncate(100)
    with pytest.raises(LmbenchError, match="changed on disk after the model was loaded from it") as info:
        text_model.score_text("w0 w1 w2\n")
    assert "\n" not in str(info.value)


def test_a_small_model_is_unchanged_when_another_checkpoint_is_copied_over_its_file(tmp_path, tiny_dataset):
    import shutil

    from lmbench.scoring.text import TextModel

    kn, other = tmp_path / "kn.pt", tmp_path / "other.pt"
    fit(KneserNey, {"order": 3}, tiny_dataset).save(kn)
    fit(MLE, {"order": 1}, tiny_dataset).save(other)
    model = TextModel(load_model(kn), tiny_dataset.tokenizer)
    before = model.score_text("w0 w1 w2\n").logprobs.copy()
    shutil.copyfile(other, kn)        # cp writes in place, unlike lmbench's rename
    np.testing.assert_array_equal(model.score_text("w0 w1 w2\n").logprobs, before)
