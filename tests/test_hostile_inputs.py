"""Hostile inputs, new round (issue 16, section 6): each is one line naming the problem, and nothing on disk is lost."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import lmbench
from lmbench.cli import Terminated, cli
from lmbench.errors import LmbenchError

from tests.conftest import random_lines

FAST = ("--bootstrap", "0")


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(random_lines(np.random.default_rng(1), 200)) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def other_corpus(tmp_path):
    path = tmp_path / "other.txt"
    path.write_text("\n".join(random_lines(np.random.default_rng(2), 200)) + "\n", encoding="utf-8")
    return path


def invoke(*args, **kwargs):
    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


def run_ok(*args):
    result = invoke("run", *args, *FAST)
    assert result.exit_code == 0, result.output
    return result


def one_line_error(result, fragment: str, prefix: str = "lmbench: error:") -> str:
    """The CLI failed with exactly one line starting with ``prefix`` that holds ``fragment``, and no traceback."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    return lines[0]


def one_line(exc_info, fragment: str) -> str:
    message = str(exc_info.value)
    assert "\n" not in message and fragment in message, message
    return message


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` (relative path -> bytes), and every folder (-> None)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def beside(folder: Path, marker: str) -> list[Path]:
    return [p for p in folder.parent.iterdir() if marker in p.name]


def status(folder: Path) -> str:
    return json.loads((folder / "config.json").read_text())["status"]


# ---------------------------------------------------------------- 1. data loss on --overwrite


@pytest.mark.plots  # the figures are among the files an overwrite replaces
def test_sigterm_during_the_final_analysis_of_an_overwrite_keeps_the_earlier_run(corpus, tmp_path, monkeypatch):
    out = tmp_path / "out"
    run_ok("--models", "bigram-add1", "--corpus", corpus, "--out", out)
    before = snapshot(out)
    import lmbench.report.markdown

    def terminated(*args, **kwargs):  # SIGTERM arrives once the new run's figures are written, before its report
        raise Terminated()

    monkeypatch.setattr(lmbench.report.markdown, "write_report", terminated)
    result = invoke("run", "--models", "trigram-kn", "--corpus", corpus, "--out", out, "--overwrite", *FAST)
    assert result.exit_code == 130
    line = one_line_error(result, "interrupted; results of finished models are kept in", prefix="lmbench: interrupted")
    assert snapshot(out) == before and status(out) == "complete"
    aside = beside(out, "out.incomplete-")
    assert len(aside) == 1 and status(aside[0]) == "interrupted" and (aside[0] / "perplexity.png").exists()
    assert line.endswith(f"kept in {aside[0]}; the earlier run is kept as it was")
    assert not beside(out, "staging")


@pytest.mark.plots  # the figures are among the files an overwrite replaces
def test_disk_full_while_an_overwrite_writes_its_figures_is_one_line_and_keeps_the_earlier_run(corpus, tmp_path,
                                                                                              monkeypatch):
    out = tmp_path / "out"
    run_ok("--models", "bigram-add1", "--corpus", corpus, "--out", out)
    before = snapshot(out)
    import lmbench.report.plots as plots

    real_write = plots.atomic_write_bytes

    def write_on_a_full_disk(path, data):
        def full(fd, chunk):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        with monkeypatch.context() as patch:
            patch.setattr(os, "write", full)
            real_write(path, data)

    monkeypatch.setattr(plots, "atomic_write_bytes", write_on_a_full_disk)
    result = invoke("run", "--models", "trigram-kn", "--corpus", corpus, "--out", out, "--overwrite", *FAST)
    assert result.exit_code == 1
    line = one_line_error(result, "perplexity.png (No space left on device): the disk is full")
    assert snapshot(out) == before and status(out) == "complete"
    aside = beside(out, "out.incomplete-")
    assert len(aside) == 1 and status(aside[0]) == "failed" and not (aside[0] / "perplexity.png").exists()
    assert line.endswith(f"; finished rows are kept in {aside[0]}; the earlier run is kept as it was")


def test_a_broken_mplbackend_with_overwrite_is_one_line_and_leaves_the_earlier_run_untouched(corpus, tmp_path):
    out = tmp_path / "out"
    run_ok("--models", "bigram-add1", "--corpus", corpus, "--out", out)
    before = snapshot(out)
    env = {**os.environ, "MPLBACKEND": "nosuch", "OMP_NUM_THREADS": "1"}
    process = subprocess.run([sys.executable, "-m", "lmbench", "run", "--models", "trigram-kn", "--corpus", str(corpus),
                              "--out", str(out), "--overwrite", *FAST], capture_output=True, text=True, env=env)
    assert process.returncode == 1
    assert "Traceback" not in process.stderr
    errors = [line for line in process.stderr.splitlines() if line.startswith("lmbench: error:")]
    assert len(errors) == 1 and "matplotlib refuses MPLBACKEND='nosuch'" in errors[0], process.stderr
    assert "set MPLBACKEND=Agg" in errors[0]
    assert snapshot(out) == before
    assert not beside(out, "staging") and not beside(out, "incomplete")


@pytest.mark.plots  # the figures are among the files an overwrite replaces
def test_overwrite_carries_the_users_own_files_in_the_run_directory_into_the_new_run(corpus, tmp_path):
    out = tmp_path / "out"
    run_ok("--models", "bigram-add1", "--corpus", corpus, "--out", out)
    mine = {"notes.txt": b"what I saw\n", "plot_again.py": b"import lmbench\n", "drafts/fig.svg": b"<svg/>",
            "models/README.md": b"checkpoints of mine\n", "scores/by_hand.npz": b"not lmbench's"}
    for name, data in mine.items():
        (out / name).parent.mkdir(exist_ok=True)
        (out / name).write_bytes(data)
    (out / "plot_again.py").chmod(0o755)
    run_ok("--models", "trigram-kn", "--corpus", corpus, "--out", out, "--overwrite")
    assert set(pd.read_csv(out / "perplexity.csv")["model"]) == {"trigram-kn"}    # the new run is in place ...
    assert not (out / "models" / "bigram-add1.pt").exists() and not (out / "scores" / "bigram-add1.npz").exists()
    assert {name: (out / name).read_bytes() for name in mine if (out / name).exists()} == mine  # ... and theirs
    assert os.access(out / "plot_again.py", os.X_OK)
    assert not beside(out, ".old-") and not beside(out, "staging")


def test_overwrite_given_as_the_string_false_is_one_line_naming_the_argument(corpus, tmp_path):
    out = tmp_path / "out"
    run_ok("--models", "bigram-add1", "--corpus", corpus, "--out", out)
    before = snapshot(out)
    with pytest.raises(LmbenchError) as info:
        lmbench.run("trigram-kn", corpus=str(corpus), out=str(out), overwrite="false", quiet=True)
    assert one_line(info, "overwrite= (--overwrite) must be True or False, got 'false'")
    assert snapshot(out) == before and not beside(out, "staging")


# ---------------------------------------------------------------- 2. run directories holding another run's files


@pytest.mark.parametrize("source, refused", [("same data, other k", "scores/bigram-addk.npz"),
                                             ("other data", "scores/targets.npz")])
def test_scores_copied_from_another_run_are_refused_in_one_line(corpus, other_corpus, tmp_path, source, refused):
    out, other = tmp_path / "out", tmp_path / "other"
    run_ok("--models", "bigram-addk", "--corpus", corpus, "--out", out)
    if source == "other data":
        run_ok("--models", "bigram-addk", "--corpus", other_corpus, "--out", other)
    else:
        run_ok("--models", "bigram-addk", "--corpus", corpus, "--out", other, "--set", "bigram-addk.k=0.1")
    shutil.copytree(other / "scores", out / "scores", dirs_exist_ok=True)
    copied = snapshot(out)
    with pytest.raises(LmbenchError) as info:
        lmbench.load_run(out).scores("bigram-addk", "test")
    message = one_line(info, f"{out / refused} is not the file this run wrote")
    assert "re-run the run that wrote it" in message
    result = invoke("compare", out, other, "--allow-different-data", "--bootstrap", "20")
    one_line_error(result, "is not the file this run wrote")
    assert snapshot(out) == copied


def test_a_checkpoint_copied_from_another_run_is_refused_by_score_in_one_line(corpus, other_corpus, tmp_path):
    out, other = tmp_path / "out", tmp_path / "other"
    run_ok("--models", "bigram-add1", "--corpus", corpus, "--out", out)
    run_ok("--models", "bigram-add1", "--corpus", other_corpus, "--out", other)
    shutil.copy(other / "models" / "bigram-add1.pt", out / "models" / "bigram-add1.pt")
    copied = snapshot(out)
    text = tmp_path / "new.txt"
    text.write_text("w0 w1 w2\n", encoding="utf-8")
    result = invoke("score", "--run", out, "--model", "bigram-add1", text)
    assert result.exit_code == 1
    one_line_error(result, f"{out / 'models' / 'bigram-add1.pt'} is not the file this run wrote")
    with pytest.raises(LmbenchError) as info:
        lmbench.score(out, "bigram-add1", "w0 w1 w2")
    one_line(info, "is not the file this run wrote")
    assert snapshot(out) == copied


# ---------------------------------------------------------------- 3. damaged files


@pytest.mark.parametrize("checksum", ["recorded", "absent (a 0.2 run)"])
def test_a_truncated_scores_file_is_one_line_not_a_badzipfile_traceback(corpus, tmp_path, checksum):
    out = tmp_path / "out"
    run_ok("--models", "bigram-add1", "--corpus", corpus, "--out", out)
    path = out / "scores" / "bigram-add1.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    if checksum != "recorded":
        config = json.loads((out / "config.json").read_text())
        del config["models"]["bigram-add1"]["scores_sha256"]
        (out / "config.json").write_text(json.dumps(config))
    damaged = snapshot(out)
    with pytest.raises(LmbenchError) as info:
        lmbench.load_run(out).scores("bigram-add1", "test")
    expected = "is not the file this run wrote" if checksum == "recorded" else "it is damaged or not an lmbench file"
    assert one_line(info, str(path)) and expected in str(info.value)
    one_line_error(invoke("compare", out, out, "--bootstrap", "20"), expected)
    assert snapshot(out) == damaged


# ---------------------------------------------------------------- 4. spilling


def test_a_full_temporary_folder_while_an_ngram_fit_spills_fails_that_model_in_one_line(corpus, tmp_path, monkeypatch):
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full (a device on which every write fails with ENOSPC)")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    import lmbench.models.ngram.ondisk.arrays as arrays

    opened = []

    def open_on_a_full_disk(path, mode="r", *args, **kwargs):   # the first spill file fits, then the disk is full
        if "w" in mode:
            opened.append(path)
            if len(opened) > 1:
                return open("/dev/full", mode, *args, **kwargs)
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(arrays, "open", open_on_a_full_disk, raising=False)
    out = tmp_path / "out"
    result = invoke("run", "--models", "bigram-add1,3gram-kn,unigram", "--set", "3gram-kn.memory=4K",
                    "--corpus", corpus, "--out", out, *FAST)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(opened) > 1                                       # 3gram-kn was counted on disk, and spilled
    error = json.loads((out / "config.json").read_text())["models"]["3gram-kn"]["error"]
    assert error == (f"the temporary folder {scratch} is full (No space left on device) while counting n-grams on "
                     f"disk; free space there or point TMPDIR at a folder with room (TMPDIR=/path/with/room "
                     f"lmbench ...); or raise --memory (memory=) so that the counts fit in memory")
    assert f"[3gram-kn] FAILED: {error}" in result.stdout
    one_line_error(result, "1 model(s) failed: 3gram-kn")
    assert set(pd.read_csv(out / "perplexity.csv")["model"]) == {"bigram-add1", "unigram"}  # the others finished
    assert status(out) == "failed"
    assert list(scratch.iterdir()) == []                         # what was spilled is gone


# ---------------------------------------------------------------- 5. mixtures


def test_a_mixture_with_stupid_backoff_is_refused_in_one_line(corpus, tmp_path):
    out = tmp_path / "out"
    mix = "mix(bigram-add1+bigram-stupid)"
    result = invoke("run", "--models", f"bigram-add1,bigram-stupid,{mix}", "--corpus", corpus, "--out", out, *FAST)
    assert result.exit_code == 1 and "Traceback" not in result.output
    error = json.loads((out / "config.json").read_text())["models"][mix]["error"]
    assert "\n" not in error and error.startswith("bigram-stupid gives scores that are not probabilities")
    assert "mix only models that are" in error and f"[{mix}] FAILED: {error}" in result.stdout
    one_line_error(result, f"1 model(s) failed: {mix}")
    assert set(pd.read_csv(out / "perplexity.csv")["model"]) == {"bigram-add1", "bigram-stupid"}
    assert not (out / "models" / f"{mix}.pt").exists()


def test_mixture_weights_set_to_text_are_one_line_not_a_valueerror(corpus, tmp_path):
    out = tmp_path / "out"
    result = invoke("run", "--models", "bigram-add1,trigram-kn,mix(bigram-add1+trigram-kn)", "--corpus", corpus,
                    "--set", "mix(bigram-add1+trigram-kn).weights=abc", "--out", out)
    one_line_error(result, "mix(bigram-add1+trigram-kn): mixture weights must be 2 numbers summing to 1")
    assert "ValueError" not in result.output and not out.exists()


# ---------------------------------------------------------------- 7. inputs


def test_a_corpus_file_named_with_a_non_utf8_byte_runs_to_completion(tmp_path):
    name = os.fsdecode(b"corpus-\xff.txt")
    (tmp_path / name).write_text("\n".join(random_lines(np.random.default_rng(1), 200)) + "\n", encoding="utf-8")
    # a UTF-8 terminal whose stdout refuses what UTF-8 cannot encode (most desktops; C.UTF-8 would escape it)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    process = subprocess.run([sys.executable, "-m", "lmbench", "run", "--models", "bigram-add1", "--corpus",
                              os.fsencode(tmp_path / name), *FAST], capture_output=True, cwd=tmp_path, env=env)
    stderr = process.stderr.decode("utf-8", "replace")
    assert process.returncode == 0 and "Traceback" not in stderr, stderr
    (out,) = (tmp_path / "results").iterdir()                    # results/<corpus>-<time>, the byte kept
    assert os.fsencode(out.name).startswith(b"corpus-\xff-")
    assert status(out) == "complete"
    assert set(pd.read_csv(out / "perplexity.csv")["model"]) == {"bigram-add1"}
    assert (out / "perplexity.png").stat().st_size > 1000
    assert (out / "report.md").read_text(encoding="utf-8").startswith("# lmbench run: corpus-?")
    assert b"corpus-\\udcff" in process.stdout


def test_a_line_longer_than_the_score_limit_is_refused_naming_the_limit(corpus, tmp_path, monkeypatch):
    import lmbench.scoring.text

    out = tmp_path / "out"
    run_ok("--models", "bigram-add1", "--corpus", corpus, "--out", out)
    before = snapshot(out)
    monkeypatch.setattr(lmbench.scoring.text, "MAX_LINE_CHARS", 1000)   # 10,000,000 unpatched: a 200 MB line
    text = tmp_path / "one-line.txt"
    text.write_text("w1 w2\n" + "w0 " * 400 + "\n", encoding="utf-8")
    result = invoke("score", "--run", out, "--model", "bigram-add1", text)
    assert result.exit_code == 1
    one_line_error(result, "line 2 of the text has 1,200 characters, more than the 1,000 a line may have here; "
                           "split the text into lines")
    assert snapshot(out) == before


def test_paths_given_as_pathlib_paths_work_in_run_score_and_load_run(corpus, tmp_path):
    out = tmp_path / "out"
    result = lmbench.run("bigram-add1", corpus=Path(corpus), out=out, bootstrap=0, quiet=True)
    assert result.out_dir == out and status(out) == "complete"
    assert result.config["options"]["corpus"] == str(corpus) and result.config["options"]["out"] == str(out)
    text = tmp_path / "new.txt"
    text.write_text("w0 w1 w2\nw3\n", encoding="utf-8")
    by_path = lmbench.score(out, "bigram-add1", file=text)
    by_str = lmbench.score(str(out), "bigram-add1", file=str(text))
    assert by_path.n_tokens == 6 and np.array_equal(by_path.logprobs, by_str.logprobs)
    assert np.array_equal(lmbench.load_run(out).scores("bigram-add1").logprobs, result.scores("bigram-add1").logprobs)
