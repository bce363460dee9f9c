"""``--corpus hf:...``: local datasets (save_to_disk folders, folders of data files, single files) read through
the datasets library with their splits, text columns, sources and one-line errors; no network."""

from __future__ import annotations

import sys

import pytest

from lmbench.data.corpora import load_corpus
from lmbench.data.hf_corpora import offline_hub, parse_spec, rows_to_lines
from lmbench.errors import LmbenchError

from .conftest import LazyModule, needs

pytestmark = needs("datasets")
datasets = LazyModule("datasets")

#: WikiText-style rows: lines with their "\n", blank lines as "".
ROWS = {split: ["", f" = {split} heading = \n", "", f" the {split} text , with <unk> words . \n",
                f" a second {split} line \n"] for split in ("train", "validation", "test")}


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    """No network, and datasets' Arrow cache in a temporary folder."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("hf-datasets-cache"))


def dataset_dict(rows=ROWS, **columns):
    return datasets.DatasetDict({split: datasets.Dataset.from_dict({"text": texts, **{k: v[:len(texts)]
                                                                                     for k, v in columns.items()}})
                                 for split, texts in rows.items()})


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


def test_a_saved_dataset_dict_with_its_splits(tmp_path):
    dataset_dict(label=list(range(5))).save_to_disk(tmp_path / "wiki")
    raw = load_corpus(f"hf:{tmp_path / 'wiki'}")
    assert raw.presplit and raw.name == "wiki" and set(raw.splits) == {"train", "valid", "test"}
    assert raw.splits["valid"] == ["", " = validation heading = ", "", " the validation text , with <unk> words . ",
                                   " a second validation line "]
    assert raw.source["kind"] == "hf" and raw.source["column"] == "text"
    assert raw.source["splits"] == {"train": "train", "valid": "validation", "test": "test"}
    assert raw.source["rows"] == {"train": 5, "valid": 5, "test": 5}
    assert all(isinstance(f, str) and f for f in raw.source["fingerprints"].values())
    assert (raw.tokenizer, raw.normalize) == ("word", "none")


def test_a_folder_of_parquet_files_named_by_split(tmp_path):
    data = dataset_dict()
    folder = tmp_path / "pq"
    folder.mkdir()
    for split, part in data.items():
        part.to_parquet(folder / f"{split}.parquet")
    raw = load_corpus(f"hf:{folder}")
    assert raw.presplit and raw.splits["test"][1] == " = test heading = "


def test_json_lines_files_and_a_chosen_column(tmp_path):
    import json

    folder = tmp_path / "js"
    folder.mkdir()
    for split in ("train", "valid", "test"):
        rows = [{"id": i, "body": f"{split} row {i}\nsecond line"} for i in range(3)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    raw = load_corpus(f"hf:{folder}:body")
    assert raw.source["column"] == "body" and raw.source["splits"]["valid"] == "validation"
    assert raw.splits["train"][:3] == ["train row 0", "second line", "train row 1"]  # a row of two lines
    assert load_corpus(f"hf:{folder}").splits == raw.splits  # the only string column


def test_one_file_is_split_by_fractions(tmp_path):
    datasets.Dataset.from_dict({"text": [f"line {i}" for i in range(20)]}).to_parquet(tmp_path / "all.parquet")
    raw = load_corpus(f"hf:{tmp_path / 'all.parquet'}", (0.8, 0.1, 0.1))
    assert not raw.presplit and [len(raw.splits[s]) for s in ("train", "valid", "test")] == [16, 2, 2]
    assert raw.source["split"] == "80/10/10"
    datasets.Dataset.from_dict({"text": ["a", "b", "c", "d"]}).save_to_disk(tmp_path / "one")
    assert load_corpus(f"hf:{tmp_path / 'one'}", (0.5, 0.25, 0.25)).splits["test"] == ["d"]


def test_rows_to_lines():
    assert rows_to_lines(["a\n", "", "b\r\nc", None, "d\n\n"]) == ["a", "", "b", "c", "", "d", ""]


def test_parse_spec():
    assert parse_spec("Salesforce/wikitext/wikitext-2-raw-v1") == ("Salesforce/wikitext", "wikitext-2-raw-v1", None,
                                                                    None)
    assert parse_spec("wikitext/wikitext-2-raw-v1@abc123:text") == ("wikitext/wikitext-2-raw-v1", None, "abc123",
                                                                     "text")
    assert parse_spec("ptb_text_only") == ("ptb_text_only", None, None, None)
    with pytest.raises(LmbenchError):
        parse_spec("a/b/c/d")


def test_unknown_dataset_offline(tmp_path):
    with pytest.raises(LmbenchError) as excinfo:
        load_corpus("hf:no-such-org/no-such-dataset-xyz")
    message = one_line(excinfo)
    assert "not in the datasets cache" in message and "HF_HUB_OFFLINE" in message
    assert "no-such-org (config no-such-dataset-xyz)" in message  # NAME/CONFIG tried too


def test_missing_splits_and_columns(tmp_path):
    dataset_dict({"train": ["a"], "test": ["b"]}).save_to_disk(tmp_path / "two")
    with pytest.raises(LmbenchError) as excinfo:
        load_corpus(f"hf:{tmp_path / 'two'}")
    assert "train, validation and test" in one_line(excinfo) and "validation is missing" in one_line(excinfo)
    dataset_dict(label=list(range(5))).save_to_disk(tmp_path / "three")
    with pytest.raises(LmbenchError) as excinfo:
        load_corpus(f"hf:{tmp_path / 'three'}:body")
    assert "no column 'body'" in one_line(excinfo) and ":text" in one_line(excinfo)
    with pytest.raises(LmbenchError) as excinfo:
        load_corpus(f"hf:{tmp_path / 'three'}:label")
    assert "not text" in one_line(excinfo)


def test_identical_splits_are_refused(tmp_path):
    same = ["one line", "two"]
    dataset_dict({"train": same, "validation": same, "test": ["x"]}).save_to_disk(tmp_path / "same")
    with pytest.raises(LmbenchError) as excinfo:
        load_corpus(f"hf:{tmp_path / 'same'}")
    assert "identical content" in one_line(excinfo)


def test_not_a_dataset(tmp_path):
    (tmp_path / "notes.md").write_text("hello")
    with pytest.raises(LmbenchError) as excinfo:
        load_corpus(f"hf:{tmp_path / 'notes.md'}")
    assert "not a data file" in one_line(excinfo)


def test_without_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(LmbenchError) as excinfo:
        load_corpus("hf:Salesforce/wikitext/wikitext-2-raw-v1")
    assert '.[hf]' in one_line(excinfo)


def test_offline_hub_restores_the_flags():
    from huggingface_hub import constants

    before = (constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE)
    with offline_hub(True):
        assert constants.HF_HUB_OFFLINE and datasets.config.HF_HUB_OFFLINE
    assert (constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE) == before
