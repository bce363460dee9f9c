"""The command line through click's CliRunner: real runs, bad input, failures and interruptions."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lmbench.models import registry
from lmbench.cli import cli
from lmbench.errors import LmbenchError
from lmbench.models.ngram.mle import AddK
from lmbench.models.registry import Family

from tests.conftest import random_lines


@pytest.fixture
def text_file(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "text.txt"
    path.write_text("\n".join(random_lines(rng, 120, words=20)) + "\n")
    return path


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result, pattern):
    assert result.exit_code != 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lmbench: error:")
    assert pattern in lines[0], lines[0]
    assert "Traceback" not in result.output


@pytest.mark.plots("perplexity_plot")
def test_run_writes_table_config_and_plot(tmp_path, text_file):
    out = tmp_path / "out"
    result = invoke("run", "--models", "unigram,bigram,bigram-add1,trigram-addk", "--corpus", text_file, "--out", out)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "perplexity.csv")
    assert list(table.columns[:16]) == ["model", "split", "n_tokens", "nll_nats", "cross_entropy_nats", "bits_per_token",
                                        "bits_per_byte", "perplexity", "ppl_low", "ppl_high", "n_zero_prob", "n_nan",
                                        "vocab_size", "n_params", "fit_seconds", "eval_seconds"]
    assert len(table) == 8 and set(table["split"]) == {"valid", "test"}
    # the fairness contract: every model is scored on the same number of tokens of the same data
    assert (table.groupby("split")["n_tokens"].nunique() == 1).all()
    assert (table.groupby("split")["data_sha256"].nunique() == 1).all()
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "complete"
    assert table[table.split == "test"]["n_tokens"].iloc[0] == config["data"]["splits"]["test"]["n_tokens"]
    finite = table[np.isfinite(table["perplexity"])]
    np.testing.assert_allclose(finite["perplexity"], np.exp(finite["nll_nats"] / finite["n_tokens"]))
    assert (out / "perplexity.png").stat().st_size > 1000
    assert sorted(p.name for p in (out / "models").iterdir()) == ["bigram-add1.pt", "bigram.pt", "trigram-addk.pt", "unigram.pt"]
    assert "bigram-add1" in result.stdout and "perplexity" in result.stdout


def test_mle_zero_probability_is_reported_as_inf_and_the_run_goes_on(tmp_path, text_file):
    out = tmp_path / "out"
    result = invoke("run", "--models", "trigram,bigram-add1", "--corpus", text_file, "--out", out)
    assert result.exit_code == 0
    table = pd.read_csv(out / "perplexity.csv").set_index(["model", "split"])
    assert table.loc[("trigram", "test"), "perplexity"] == np.inf
    assert table.loc[("trigram", "test"), "n_zero_prob"] > 0
    assert np.isfinite(table.loc[("bigram-add1", "test"), "perplexity"])


def test_set_and_suite_file(tmp_path, text_file):
    suite = tmp_path / "suite.toml"
    suite.write_text(f'[run]\ncorpus = "{text_file}"\nmodels = ["smooth", "bigram-addk"]\nseed = 3\n\n'
                     '[models.smooth]\nmodel = "trigram-addk"\nk = 0.25\n')
    out = tmp_path / "out"
    result = invoke("run", "--config", suite, "--set", "bigram-addk.k=0.5", "--out", out)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["models"]["smooth"]["params"] == {"order": 3, "k": 0.25, "memory": None, "storage": "auto"}
    assert config["models"]["bigram-addk"]["params"] == {"order": 2, "k": 0.5, "memory": None, "storage": "auto"}
    assert config["options"]["seed"] == 3
    assert list(pd.read_csv(out / "perplexity.csv")["model"].unique()) == ["smooth", "bigram-addk"]


# ---------------------------------------------------------------- bad input: one line, non-zero, nothing written


@pytest.mark.parametrize("args, message", [
    (["--models", "bigram", "--corpus", "missing.txt"], "corpus file not found"),
    (["--models", "bigarm", "--corpus", "{text}"], "did you mean 'bigram'"),
    (["--models", "bigram", "--corpus", "ptbb"], "did you mean 'ptb'"),
    (["--models", "0gram", "--corpus", "{text}"], "order must be"),
    (["--models", "bigram-addk", "--set", "bigram-addk.k=-1", "--corpus", "{text}"], "k must be a number > 0"),
    (["--models", "bigram-add1", "--set", "bigram-add1.kk=2", "--corpus", "{text}"], "did you mean 'k'"),
    (["--models", "bigram", "--set", "nonsense", "--corpus", "{text}"], "--set expects MODEL.PARAM=VALUE"),
    (["--models", "bigram", "--corpus", "{text}", "--split", "0.5,0.1,0.1"], "summing to 1"),
    (["--models", "bigram", "--corpus", "{text}", "--split", "a,b,c"], "three comma-separated fractions"),
    (["--models", "bigram", "--corpus", "{text}", "--min-freq", "0"], "--min-freq"),
    (["--models", "bigram", "--corpus", "{text}", "--tokenizer", "sentencepiece"], "--tokenizer"),
    (["--corpus", "{text}"], "no models given"),
    (["--models", "bigram,bigram", "--corpus", "{text}"], "listed twice"),
    (["--models", "bigram", "--corpus", "{empty}"], "is empty"),
    (["--models", "bigram", "--corpus", "{binary}"], "looks binary"),
    (["--models", "bigram", "--corpus", "{latin1}"], "--encoding"),
    (["--models", "bigram", "--corpus", "{short}"], "too few to split"),
    (["--models", "bigram", "--corpus", "{blank_test}"], "no tokens besides line ends"),
    (["--models", "bigram", "--corpus", "{text}", "--encoding", "klingon"], "unknown encoding"),
    (["--models", "bigram", "--config", "{bad_toml}"], "not valid TOML"),
])
def test_bad_input(tmp_path, text_file, args, message):
    files = {"text": text_file, "empty": tmp_path / "empty.txt", "binary": tmp_path / "bin.dat",
             "latin1": tmp_path / "latin1.txt", "short": tmp_path / "short.txt",
             "blank_test": tmp_path / "blank.txt", "bad_toml": tmp_path / "bad.toml"}
    files["empty"].write_text("")
    files["binary"].write_bytes(bytes(range(256)) * 40)
    files["latin1"].write_bytes("d\u00e9j\u00e0 vu\n".encode("latin-1") * 20)
    files["short"].write_text("one line\ntwo lines\n")
    files["blank_test"].write_text("a b c\n" * 9 + "\n")
    files["bad_toml"].write_text("[run\nmodels = ")
    out = tmp_path / "out"
    result = invoke("run", *[a.format(**files) for a in args], "--out", out)
    assert_one_line_error(result, message)
    assert not out.exists()


def test_unwritable_output_directory(tmp_path, text_file):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = invoke("run", "--models", "bigram", "--corpus", text_file, "--out", blocker / "sub")
    assert_one_line_error(result, "cannot create output directory")
    result = invoke("run", "--models", "bigram", "--corpus", text_file, "--out", blocker)
    assert_one_line_error(result, "is a file")


# ---------------------------------------------------------------- failures and interruptions keep finished results


class Exploding(AddK):
    """A model that fails while fitting."""

    def fit(self, train_ids, valid_ids=None, *, vocab):
        raise ValueError("boom")


class Interrupting(AddK):
    def fit(self, train_ids, valid_ids=None, *, vocab):
        raise KeyboardInterrupt


@pytest.mark.parametrize("cls, code, status", [(Exploding, 1, "failed"), (Interrupting, 130, "interrupted")])
def test_failing_model_keeps_finished_rows(tmp_path, text_file, monkeypatch, cls, code, status):
    monkeypatch.setitem(registry.NAMED_MODELS, "bad", Family(cls, {"order": 2}))
    out = tmp_path / "out"
    result = invoke("run", "--models", "bigram-add1,bad,unigram", "--corpus", text_file, "--out", out)
    assert result.exit_code == code
    table = pd.read_csv(out / "perplexity.csv")
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == status
    assert "bigram-add1" in set(table["model"]) and "bad" not in set(table["model"])
    if cls is Exploding:
        assert "unigram" in set(table["model"])  # later models still run
        assert config["models"]["bad"]["error"] == "ValueError: boom"
        assert "1 model(s) failed: bad" in result.stderr
    assert not list(out.glob(".*.tmp"))


def test_results_are_written_after_each_model(tmp_path, text_file, monkeypatch):
    seen = {}

    class Spy(AddK):
        def fit(self, train_ids, valid_ids=None, *, vocab):
            seen["rows"] = pd.read_csv(tmp_path / "out" / "perplexity.csv")["model"].tolist()
            return super().fit(train_ids, valid_ids, vocab=vocab)

    monkeypatch.setitem(registry.NAMED_MODELS, "spy", Family(Spy, {"order": 2}))
    assert invoke("run", "--models", "bigram-add1,spy", "--corpus", text_file, "--out", tmp_path / "out").exit_code == 0
    assert seen["rows"] == ["bigram-add1", "bigram-add1"]


# ---------------------------------------------------------------- other commands


@pytest.mark.plots
def test_zipf_command(tmp_path, text_file):
    out = tmp_path / "z"
    result = invoke("zipf", text_file, "--max-n", 2, "--out", out)
    assert result.exit_code == 0, result.output
    zipf = pd.read_csv(out / "zipf.csv")
    assert list(zipf.columns[:6]) == ["n", "n_tokens", "n_types", "n_hapax", "alpha", "intercept"]
    assert zipf["n"].tolist() == [1, 2] and "r2" in zipf.columns
    ranks = pd.read_csv(out / "zipf_ranks.csv")
    assert ranks.iloc[0].to_dict()["ngram"] == "w0"
    assert (out / "zipf.png").exists()
    assert "ranks fitted" in result.stdout and "hapax" in result.stdout


def test_zipf_bad_input(tmp_path):
    assert_one_line_error(invoke("zipf", tmp_path / "nope.txt", "--out", tmp_path / "z"), "not found")
    assert not (tmp_path / "z").exists()


def test_listing_commands():
    result = invoke("corpora")
    assert result.exit_code == 0 and "ptb" in result.stdout and "wikitext-2" in result.stdout
    assert invoke("list").exit_code != 0  # one name per command: `corpora` (0.2 also had `list`)
    models = invoke("models")
    assert models.exit_code == 0 and "add1" in models.stdout and "paper:" not in models.stdout
    long = invoke("models", "--long")
    assert "paper: Kneser & Ney 1995" in long.stdout and "paper: Hochreiter & Schmidhuber 1997" in long.stdout


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "lmbench", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "zipf" in result.stdout


def test_library_errors_are_lmbench_errors():
    with pytest.raises(LmbenchError):
        registry.lookup("no-such-model")


def test_generate_continues_a_prefix_with_a_saved_ngram(tmp_path, text_file):
    out = tmp_path / "out"
    assert invoke("run", "--models", "trigram-add1", "--corpus", text_file, "--out", out).exit_code == 0
    first = invoke("generate", "--run", out, "--model", "trigram-add1", "--prefix", "w0 w1", "--length", 12, "--seed", 5)
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("w0 w1 ")
    assert len(first.stdout.split()) >= 3
    again = invoke("generate", "--run", out, "--model", "trigram-add1", "--prefix", "w0 w1", "--length", 12, "--seed", 5)
    assert again.stdout == first.stdout
    greedy = invoke("generate", "--run", out, "--model", "trigram-add1", "--prefix", "w0", "--length", 3, "--greedy")
    assert greedy.exit_code == 0


def test_generate_bad_input(tmp_path, text_file):
    out = tmp_path / "out"
    assert invoke("run", "--models", "bigram-add1", "--corpus", text_file, "--out", out).exit_code == 0
    assert_one_line_error(invoke("generate", "--run", out, "--model", "bigram-ad1"), "did you mean 'bigram-add1'")
    assert_one_line_error(invoke("generate", "--run", tmp_path / "none", "--model", "x"), "no lmbench run")
    assert_one_line_error(invoke("generate", "--run", out, "--model", "bigram-add1", "--temperature", 0), "--temperature")


def test_export_then_load_arpa_by_absolute_path(tmp_path, text_file):
    first, second, arpa = tmp_path / "first", tmp_path / "second", tmp_path / "models dir" / "kn3.arpa"
    arpa.parent.mkdir()
    assert invoke("run", "--models", "trigram-kn,trigram", "--corpus", text_file, "--out", first).exit_code == 0
    exported = invoke("export", "--run", first, "--model", "trigram-kn", arpa)
    assert exported.exit_code == 0, exported.output
    assert arpa.read_text().startswith("\\data\\")
    label = f"arpa:{arpa}"
    result = invoke("run", "--models", f"trigram-kn,{label}", "--corpus", text_file, "--out", second)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(second / "perplexity.csv").set_index(["model", "split"])
    np.testing.assert_allclose(table.loc[(label, "test"), "nll_nats"], table.loc[("trigram-kn", "test"), "nll_nats"], rtol=1e-7)
    config = json.loads((second / "config.json").read_text())
    checkpoint = config["models"][label]["checkpoint"]
    assert "/" not in checkpoint.removeprefix("models/") and (second / checkpoint).is_file()
    assert_one_line_error(invoke("export", "--run", first, "--model", "trigram", tmp_path / "mle.arpa"),
                          "cannot be written as ARPA")
    assert not (tmp_path / "mle.arpa").exists()


@pytest.mark.plots("curves_plot")
def test_neural_and_ngram_side_by_side_then_generate(tmp_path):
    """One CLI run with an n-gram and an LSTM: same n_tokens; the LSTM continues a prefix through the CLI."""
    corpus = tmp_path / "chars.txt"
    corpus.write_text("the time traveller was expounding a recondite matter to us\n" * 40)
    out = tmp_path / "out"
    result = invoke("run", "--models", "trigram-kn,lstm", "--corpus", corpus, "--tokenizer", "char", "--out", out,
                    "--epochs", 1, "--set", "lstm.hidden_size=8", "--set", "lstm.batch_size=4",
                    "--set", "lstm.num_steps=8")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "perplexity.csv")
    assert (table.groupby("split")["n_tokens"].nunique() == 1).all()
    assert (out / "curves" / "lstm.csv").exists() and (out / "curves.png").exists()
    generated = invoke("generate", "--run", out, "--model", "lstm", "--prefix", "the time", "--length", 20, "--seed", 2)
    assert generated.exit_code == 0, generated.output
    assert generated.stdout.startswith("the time") and len(generated.stdout.rstrip("\n")) >= len("the time") + 1
    again = invoke("generate", "--run", out, "--model", "lstm", "--prefix", "the time", "--length", 20, "--seed", 2)
    assert again.stdout == generated.stdout
