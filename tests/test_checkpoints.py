"""Checkpoints: n-gram models round-trip without torch, neural ones through torch, old files still load,
and every file that is not a readable lmbench checkpoint is a one-line error saying what it is."""

from __future__ import annotations

import io
import json
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
