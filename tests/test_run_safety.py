"""A run never damages what is on disk and never scores the wrong thing silently (issue 8, runner and CLI)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lmbench.cli import cli
from lmbench.errors import LmbenchError
from lmbench.models.base import LanguageModel
from lmbench.runs.rundir import DirectoryLock, OutputDir
from lmbench.runs.runner import RunConfig, file_stems, run_benchmark

from tests.conftest import random_lines

QUIET = dict(echo=lambda *a, **k: None)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(random_lines(np.random.default_rng(1), 200)) + "\n", encoding="utf-8")
    return path


def invoke(*args, **kwargs):
    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


def one_line_error(result, fragment: str) -> None:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("lmbench: error")]
    assert len(errors) == 1 and fragment in errors[0], result.output


def test_no_arguments_prints_help_and_exits_zero():
    result = invoke()
    assert result.exit_code == 0 and "Usage:" in result.output and "run" in result.output


def test_a_locked_output_directory_is_refused_naming_the_other_run(corpus, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    lock = DirectoryLock(out).acquire()
    try:
        result = invoke("run", "--models", "bigram-add1", "--corpus", corpus, "--out", out)
    finally:
        lock.release()
    one_line_error(result, "in use by another lmbench run")
    assert f"pid {os.getpid()}" in result.output
    assert not (out / "config.json").exists() and not (out / "perplexity.csv").exists()


def test_a_foreign_non_empty_directory_is_never_written(corpus, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"my": "settings"}')
    (out / "models").mkdir()
    (out / "models" / "thesis.pt").write_bytes(b"precious")
    result = invoke("run", "--models", "bigram-add1", "--corpus", corpus, "--out", out, "--overwrite")
    one_line_error(result, "holds no lmbench run")
    assert (out / "config.json").read_text() == '{"my": "settings"}'
    assert (out / "models" / "thesis.pt").read_bytes() == b"precious"


def test_a_rerun_into_an_earlier_run_is_refused_without_overwrite(corpus, tmp_path):
    out = tmp_path / "out"
    assert invoke("run", "--models", "bigram-add1", "--corpus", corpus, "--out", out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    one_line_error(invoke("run", "--models", "trigram-kn", "--corpus", corpus, "--out", out), "--overwrite")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_overwrite_replaces_an_earlier_run_cleanly_once_complete(corpus, tmp_path):
    out = tmp_path / "out"
    assert invoke("run", "--models", "bigram-add1", "--corpus", corpus, "--out", out).exit_code == 0
    assert invoke("run", "--models", "trigram-kn", "--corpus", corpus, "--out", out, "--overwrite").exit_code == 0
    table = pd.read_csv(out / "perplexity.csv")
    assert set(table["model"]) == {"trigram-kn"}
    assert not (out / "models" / "bigram-add1.pt").exists()
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name or "incomplete" in p.name]


def fail_kneser_ney(monkeypatch):
    from lmbench.models.ngram.interpolated import KneserNey

    def fit(self, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(KneserNey, "fit", fit)


def test_a_failed_overwrite_leaves_the_earlier_run_untouched(corpus, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert invoke("run", "--models", "bigram-add1", "--corpus", corpus, "--out", out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    fail_kneser_ney(monkeypatch)
    result = invoke("run", "--models", "bigram-add1,trigram-kn", "--corpus", corpus, "--out", out, "--overwrite")
    assert result.exit_code == 1
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert json.loads((out / "config.json").read_text())["status"] == "complete"
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("out.incomplete-")]
    assert len(aside) == 1 and json.loads((aside[0] / "config.json").read_text())["status"] == "failed"


def test_labels_that_map_to_the_same_file_name_get_distinct_files():
    stems = file_stems(["g/1", "g_1", "G_1", "x" * 300])
    assert len(set(s.lower() for s in stems.values())) == 4
    assert all(len(s) <= 80 for s in stems.values())


def test_curve_files_of_colliding_labels_do_not_overwrite_each_other(corpus, tmp_path):
    tiny = {"model": "lstm", "hidden_size": 4, "num_steps": 4, "batch_size": 2, "epochs": 1, "progress": False,
            "device": "cpu"}
    run_benchmark(RunConfig(models=["g/1", "g_1"], corpus=str(corpus), tokenizer="char", out=str(tmp_path / "r"),
                            params={"g/1": tiny, "g_1": {**tiny, "hidden_size": 6}}, bootstrap=0), **QUIET)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    curves = {label: info["curve"] for label, info in config["models"].items()}
    assert len(set(curves.values())) == 2 and all((tmp_path / "r" / c).exists() for c in curves.values())


def test_disk_full_while_saving_fails_in_one_line_and_keeps_finished_rows(corpus, tmp_path, monkeypatch):
    real_save = LanguageModel.save

    def save(self, path):
        if "trigram" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(self, path)

    monkeypatch.setattr(LanguageModel, "save", save)
    out = tmp_path / "out"
    result = invoke("run", "--models", "bigram-add1,trigram-kn,4gram-kn", "--corpus", corpus, "--out", out)
    one_line_error(result, "No space left on device")
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "failed"
    assert "checkpoint" not in config["models"]["trigram-kn"]
    assert "bigram-add1" in set(pd.read_csv(out / "perplexity.csv")["model"])


def test_sigterm_is_handled_like_ctrl_c(corpus, tmp_path):
    out = tmp_path / "out"
    slow = tmp_path / "suite.toml"
    slow.write_text('[models.lstm]\nepochs = 200\nhidden_size = 16\nnum_steps = 8\nbatch_size = 4\n'
                    'progress = false\nearly_stopping = 1000\n')
    process = subprocess.Popen([sys.executable, "-m", "lmbench", "run", "--models", "bigram-add1,lstm", "--corpus",
                                str(corpus), "--tokenizer", "char", "--out", str(out), "--config", str(slow)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (out / "perplexity.csv").exists():
        time.sleep(0.05)
    time.sleep(0.3)  # bigram-add1 is written: the LSTM is being built or trained (200 epochs)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "interrupted"
    assert (out / "perplexity.png").exists()


def test_every_model_failing_claims_no_written_files(corpus, tmp_path, monkeypatch):
    fail_kneser_ney(monkeypatch)
    result = invoke("run", "--models", "trigram-kn", "--corpus", corpus, "--out", tmp_path / "o")
    assert result.exit_code == 1
    assert "no model finished" in result.output and "wrote" not in result.output
    assert "Empty DataFrame" not in result.output


def test_models_given_twice_are_all_run(corpus, tmp_path):
    result = invoke("run", "--models", "bigram-add1", "--models", "trigram-kn", "--corpus", corpus, "--out",
                    tmp_path / "o", "--bootstrap", "0")
    assert result.exit_code == 0, result.output
    assert set(pd.read_csv(tmp_path / "o" / "perplexity.csv")["model"]) == {"bigram-add1", "trigram-kn"}


def test_set_for_an_unknown_label_is_an_error(corpus, tmp_path):
    result = invoke("run", "--models", "trigram-addk", "--corpus", corpus, "--out", tmp_path / "o",
                    "--set", "trigram-adk.k=0.01")
    one_line_error(result, "did you mean 'trigram-addk'")
    assert not (tmp_path / "o").exists()


def test_split_for_an_already_split_corpus_is_an_error(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for name in ("train.txt", "valid.txt", "test.txt"):
        (folder / name).write_text("\n".join(random_lines(rng, 50)) + "\n")
    one_line_error(invoke("run", "--models", "bigram-add1", "--corpus", folder, "--split", "0.5,0.25,0.25",
                          "--out", tmp_path / "o"), "drop --split")


@pytest.mark.parametrize("seed", ["-1", str(2**40)])
def test_out_of_range_seeds_are_one_line_errors(corpus, tmp_path, seed):
    one_line_error(invoke("run", "--models", "bigram-add1", "--corpus", corpus, "--seed", seed, "--out", tmp_path / "o"),
                   "must be a whole number in 0..4294967295")


def test_seeds_must_be_distinct_integers(corpus, tmp_path):
    one_line_error(invoke("run", "--models", "lstm", "--corpus", corpus, "--seeds", "0,0", "--out", tmp_path / "o"),
                   "distinct")
    one_line_error(invoke("run", "--models", "lstm", "--corpus", corpus, "--seeds", "a,b", "--out", tmp_path / "o"),
                   "whole numbers")


def test_a_very_long_label_does_not_break_file_names(corpus, tmp_path):
    label = "k" * 300
    result = invoke("run", "--models", label, "--corpus", corpus, "--out", tmp_path / "o", "--set",
                    f"{label}.model=bigram-add1", "--bootstrap", "0")
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "o" / "config.json").read_text())
    assert (tmp_path / "o" / config["models"][label]["checkpoint"]).exists()


def test_config_json_records_every_resolved_hyperparameter(corpus, tmp_path):
    run_benchmark(RunConfig(models=["lstm"], corpus=str(corpus), out=str(tmp_path / "o"), save_models=False,
                            params={"lstm": {"hidden_size": 4, "num_steps": 4, "batch_size": 2, "epochs": 1,
                                             "progress": False}}, bootstrap=0), **QUIET)
    info = json.loads((tmp_path / "o" / "config.json").read_text())["models"]["lstm"]
    assert info["params"]["hidden_size"] == 4 and "lr" in info["params"] and "optimizer" in info["params"]
    assert info["environment"].get("device") == "cpu"


def test_output_dir_refuses_a_path_that_is_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(LmbenchError, match="not a directory"):
        OutputDir(target).claim()
