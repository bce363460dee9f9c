"""Data-parallel training: batches split over ranks, and real 2-process gloo runs launched with torchrun.

One torchrun launch (tests/distributed/fit_worker.py, started when this module is collected) runs
every two-process case. After training, every rank holds identical parameters, and they match
single-process training with the same global batch to a stated tolerance (:data:`PARAM_ATOL`; the
differences come from the order in which gradients are summed).
"""

from __future__ import annotations

import atexit
import importlib.util
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
import torch

from lmbench.errors import LmbenchError
from lmbench.models.neural.distributed import RankError, World, all_reduce_sum, broadcast_from_main, launched_world
from lmbench.models.neural.training import TrainConfig, check_divides, count_batches, random_batches, sequential_batches

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "distributed" / "fit_worker.py"
#: largest absolute difference allowed between data-parallel and single-process weights.
PARAM_ATOL = 1e-4
#: largest relative difference allowed between their learning-curve and held-out perplexities.
PPL_RTOL = 1e-5

GLOO = torch.distributed.is_available() and torch.distributed.is_gloo_available()
needs_gloo = pytest.mark.skipif(not GLOO, reason="this torch build has no gloo backend")


# ---------------------------------------------------------------- how batches split over ranks


@pytest.mark.parametrize("world", [2, 3, 6])
def test_sequential_parts_put_together_are_the_single_process_batch(world):
    stream = torch.arange(200)
    whole = list(sequential_batches(stream, stream + 1000, 6, 7, 3))
    parts = [list(sequential_batches(stream, stream + 1000, 6, 7, 3, (r, world))) for r in range(world)]
    assert all(len(p) == len(whole) for p in parts)
    for k, (x, y, weight) in enumerate(whole):
        assert torch.equal(torch.cat([p[k][0] for p in parts], dim=1), x)
        assert torch.equal(torch.cat([p[k][1] for p in parts], dim=1), y)
        assert weight == 1.0 and all(p[k][2] == 1.0 for p in parts)


def test_each_rank_trains_on_its_own_contiguous_slice_of_the_stream():
    stream = torch.arange(120)
    rank1 = torch.cat([x for x, _, _ in sequential_batches(stream, stream, 4, 5, 0, (1, 2))])  # (L, 2)
    assert rank1.t().reshape(-1).tolist() == list(range(60, 120))


def test_random_parts_cover_each_batch_and_weights_restore_the_batch_mean():
    stream = torch.arange(431)
    whole = list(random_batches(stream, stream, 8, 10, 0, torch.Generator().manual_seed(3)))
    parts = [list(random_batches(stream, stream, 8, 10, 0, torch.Generator().manual_seed(3), (r, 2)))
             for r in range(2)]
    assert [x.shape[1] for x, _, _ in whole] == [8] * 5 + [3]
    assert [x.shape[1] for x, _, _ in parts[0]] == [4] * 5 + [1]
    assert [x.shape[1] for x, _, _ in parts[1]] == [4] * 5 + [2]
    for k, (x, _, _) in enumerate(whole):
        assert torch.equal(torch.cat([p[k][0] for p in parts], dim=1), x)
    # the last batch: rank means weighted by W * b_r / b average to the mean over all 3 windows
    losses = torch.tensor([1.0, 2.0, 6.0])
    means = [losses[:1].mean() * parts[0][-1][2], losses[1:].mean() * parts[1][-1][2]]
    assert parts[0][-1][2] == pytest.approx(2 / 3) and parts[1][-1][2] == pytest.approx(4 / 3)
    assert float(sum(means) / 2) == pytest.approx(float(losses.mean()))


def test_a_last_batch_smaller_than_the_world_is_left_out_and_counted_so():
    stream = torch.arange(91)  # 9 windows of 10: batches of 4, 4 and 1
    config = TrainConfig(num_steps=10, batch_size=4, sampling="random")
    parts = list(random_batches(stream, stream, 4, 10, 0, torch.Generator().manual_seed(0), (1, 2)))
    assert len(parts) == 2 == count_batches(91, config, 0, world=2)
    assert count_batches(91, config, 0) == 3


def test_streams_that_do_not_split_evenly_are_refused_with_the_fix():
    with pytest.raises(LmbenchError, match=r"batch_size=5 streams do not split evenly over 2 processes; "
                                           r"set batch_size to a multiple of 2"):
        check_divides(TrainConfig(num_steps=8, batch_size=5), World(rank=0, size=2))
    check_divides(TrainConfig(num_steps=8, batch_size=5, sampling="random"), World(rank=0, size=2))


def test_a_single_process_is_a_world_of_one(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert launched_world() == World() and not World().distributed and World().is_main
    assert broadcast_from_main({"a": 1}) == {"a": 1} and all_reduce_sum(2, 3.5) == (2.0, 3.5)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(LmbenchError, match="WORLD_SIZE=4 is set but MASTER_ADDR and MASTER_PORT are not; start "
                                           "lmbench with torchrun .see README., or unset WORLD_SIZE"):
        launched_world()
    monkeypatch.setenv("MASTER_ADDR", "localhost")
    monkeypatch.setenv("MASTER_PORT", "29500")
    assert launched_world() == World(rank=2, size=4, local_rank=0)
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(LmbenchError, match="WORLD_SIZE='two' is not a whole number; start lmbench with torchrun"):
        launched_world()


# ---------------------------------------------------------------- two processes, gloo


def load_worker():
    spec = importlib.util.spec_from_file_location("fit_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Launch:
    """One torchrun launch of the worker with two processes (the environment passed on as it is), started at once.

    It starts when this module is collected, so that it runs while the other tests do; the tests that
    need it wait for it (:func:`two_ranks`), and a launch nobody waited for is stopped at exit.
    """

    def __init__(self):
        self.out = Path(tempfile.mkdtemp(prefix="lmbench-ddp-"))
        self.log = open(self.out / "launch.log", "w+")
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER),
                   str(self.out)]
        self.process = subprocess.Popen(command, cwd=self.out, env={**os.environ, "OMP_NUM_THREADS": "1"},
                                        stdout=self.log, stderr=subprocess.STDOUT, text=True)
        atexit.register(self.close)

    def wait(self) -> Path:
        code = self.process.wait(timeout=300)
        self.log.seek(0)
        assert code == 0, self.log.read()[-6000:]
        return self.out

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.out, ignore_errors=True)


#: started at collection, except in pytest-xdist workers (each collects every module): they start it when needed.
LAUNCH = Launch() if GLOO and "PYTEST_XDIST_WORKER" not in os.environ else None


@pytest.fixture(scope="module")
def two_ranks() -> Path:
    """The folder the two-process launch wrote."""
    return (LAUNCH or Launch()).wait()


def rank_records(out: Path, case: str) -> list[dict]:
    return [json.loads((out / f"{case}-rank{r}.json").read_text()) for r in (0, 1)]


@needs_gloo
@pytest.mark.parametrize("name", ["lstm", "transformer", "lstm-budget"])
def test_ranks_end_with_identical_parameters(two_ranks, name):
    rank0, rank1 = (np.load(two_ranks / f"{name}-rank{r}.npz") for r in (0, 1))
    assert sorted(rank0) == sorted(rank1)
    for key in rank0:
        assert np.array_equal(rank0[key], rank1[key]), key


@needs_gloo
def test_a_time_budget_stops_every_rank_at_rank_0s_batch(two_ranks):
    """The fit stops on rank 0's (fake) clock; the identical weights above show that both ranks stopped at the same batch."""
    summary = json.loads((two_ranks / "lstm-budget-summary.json").read_text())
    assert summary["stopped_by"] == "time_budget" and summary["epochs_run"] < 1000


@needs_gloo
@pytest.mark.parametrize("name", ["lstm", "transformer"])
def test_two_processes_match_one_process_with_the_same_global_batch(two_ranks, name):
    worker = load_worker()
    dataset = worker.corpus()
    single = worker.fit(name, dataset)
    parallel = np.load(two_ranks / f"{name}-rank0.npz")
    reference = worker.weights(single)
    assert max(np.abs(parallel[k] - reference[k]).max() for k in reference) <= PARAM_ATOL
    curve = json.loads((two_ranks / f"{name}-curve.json").read_text())
    assert len(curve) == len(single.training_curve())
    for got, want in zip(curve, single.training_curve()):
        assert got["train_tokens"] == want["train_tokens"]  # both ranks' tokens are counted
        assert got["train_ppl"] == pytest.approx(want["train_ppl"], rel=PPL_RTOL)
        assert got["valid_ppl"] == pytest.approx(want["valid_ppl"], rel=PPL_RTOL)
    # the tolerance is meaningful: training on one rank's half of each batch ends far from it
    half = worker.fit(name, dataset, batch_size=single.batch_size // 2)
    assert max(np.abs(parallel[k] - worker.weights(half)[k]).max() for k in reference) > 100 * PARAM_ATOL


@needs_gloo
def test_a_torchrun_launched_run_is_written_by_rank_0_only_and_matches_one_process(two_ranks, tmp_path):
    from lmbench import api

    rank0, rank1 = rank_records(two_ranks, "run")
    assert rank0["code"] == rank1["code"] == 0, rank0["stderr"] + rank1["stderr"]
    work = two_ranks / "work"
    assert sorted(p.name for p in work.iterdir()) == ["ddp-run"]  # nothing from rank 1, no stray files
    assert rank0["stdout"].count("[lstm] done") == 1 and "[lstm]" not in rank1["stdout"] + rank1["stderr"]
    config = json.loads((work / "ddp-run" / "config.json").read_text())
    assert config["distributed"]["world_size"] == 2 and config["distributed"]["backend"] == "gloo"
    assert config["models"]["lstm"]["environment"]["world_size"] == 2

    worker = load_worker()
    single = api.run("bigram,lstm", str(two_ranks / "corpus"), quiet=True, out=str(tmp_path / "one"), bootstrap=0,
                     epochs=2, device="cpu", params=worker.RUN_PARAMS)
    assert single.config["distributed"] == {"world_size": 1, "backend": None, "nodes": 1, "processes_per_node": 1}
    got = pd.read_csv(work / "ddp-run" / "perplexity.csv").set_index(["model", "split"])["perplexity"]
    want = single.table.set_index(["model", "split"])["perplexity"]
    assert got.index.equals(want.index)
    assert np.allclose(got, want, rtol=PPL_RTOL, atol=0)
    assert got[("bigram", "test")] == want[("bigram", "test")]


@needs_gloo
def test_bad_input_under_torchrun_is_one_line_from_rank_0_and_nothing_is_touched(two_ranks):
    foreign = two_ranks / "foreign"
    rank0, rank1 = rank_records(two_ranks, "foreign")
    assert rank0["code"] != 0 and rank1["code"] != 0
    errors = [line for r in (rank0, rank1) for line in (r["stdout"] + r["stderr"]).splitlines()
              if line.startswith("lmbench:")]
    assert errors == [f"lmbench: error: output directory {foreign} is not empty and holds no lmbench run (a.txt); "
                      f"choose a new or empty --out"]
    assert rank1["stdout"] + rank1["stderr"] == ""
    assert sorted(p.name for p in foreign.iterdir()) == ["a.txt"] and (foreign / "a.txt").read_text() == "mine"


def test_a_rank_that_built_other_data_than_rank_0_stops_with_its_own_error(tmp_path):
    from lmbench.runs.runner import RunConfig, data_fingerprints, follow_run, load_dataset

    config = RunConfig(models=["bigram", "lstm"], out=str(tmp_path / "never"))
    expected = data_fingerprints(load_dataset(config))
    assert set(expected) == {"vocab_size", "train", "valid", "test"}
    expected["train"] = "0" * 64  # rank 0 read another training file
    with pytest.raises(RankError, match="rank 1 built other data than rank 0 .train differ.; every machine must read "
                                        "the same corpus files with the same options"):
        follow_run(config, expected, World(rank=1, size=2))
    assert not (tmp_path / "never").exists()


def test_a_stray_world_size_without_torchrun_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from lmbench.cli import cli

    for name in ("MASTER_ADDR", "MASTER_PORT", "RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = CliRunner().invoke(cli, ["run", "--models", "bigram", "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "lmbench: error: WORLD_SIZE=2 is set but MASTER_ADDR and MASTER_PORT are not; start lmbench with torchrun "
        "(see README), or unset WORLD_SIZE for one process"]
    assert not (tmp_path / "run").exists()


def test_rank_0_ends_the_launch_when_a_collective_fit_crashes(tmp_path, monkeypatch):
    """Recording the failure and going on, as one process does, would leave the other ranks waiting inside that fit."""
    from lmbench.models.neural.recurrent import RecurrentLM
    from lmbench.runs.runner import Run, RunConfig

    def crash(self, *args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(RecurrentLM, "fit", crash)
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("the time traveller for so it will be convenient to speak of him\n" * 120)
    config = RunConfig(models=["bigram", "lstm"], corpus=str(corpus), out=str(tmp_path / "run"), bootstrap=0)
    with pytest.raises(RuntimeError, match="out of memory"):
        Run(config, lambda *a: None, World(rank=0, size=2)).execute()
    alone = Run(RunConfig(models=["bigram", "lstm"], corpus=str(corpus), out=str(tmp_path / "alone"), bootstrap=0),
                lambda *a: None)
    assert alone.execute().failures == {"lstm": "RuntimeError: CUDA out of memory"}
