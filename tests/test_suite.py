"""Suite files checked against their schema, and --set values: one line per mistake, never a traceback."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from lmbench.cli import cli
from lmbench.errors import LmbenchError
from lmbench.runs.runner import RunConfig
from lmbench.runs.suite import RUN_SCHEMA, load_suite, parse_assignments, parse_value, run_field_names

from lmbench.runs.config import SHARED_OPTIONS  # `lmbench run` options passed to every model that accepts them
RUN_FIELDS = run_field_names(RunConfig) | set(SHARED_OPTIONS)


def load(tmp_path, text: str):
    path = tmp_path / "suite.toml"
    path.write_text(text, encoding="utf-8")
    return load_suite(path, RUN_FIELDS)


def refused(tmp_path, text: str) -> str:
    with pytest.raises(LmbenchError) as info:
        load(tmp_path, text)
    message = str(info.value)
    assert "\n" not in message and "suite.toml" in message
    return message


def test_every_run_option_has_a_schema_entry():
    assert set(RUN_SCHEMA) == RUN_FIELDS


def test_valid_suite_is_returned_as_written(tmp_path):
    run, models = load(tmp_path, """
[run]
models = ["bigram-add1", "small"]
corpus = "ptb"
tokenizer = "word"
normalize = "none"
encoding = "utf-8"
out = "results/x"
min_freq = 2
max_vocab = 100
seed = 3
seeds = [0, 1]
split = [0.8, 0.1, 0.1]
save_models = false
save_scores = true
overwrite = true
bootstrap = 0
epochs = 2
time_budget = 1
device = "cpu"

[models.small]
model = "deep-lstm"
hidden_size = 8
dropout = 0.2
lambdas = [0.5, 0.5]
tied = true
""")
    assert run["models"] == ["bigram-add1", "small"] and run["split"] == [0.8, 0.1, 0.1] and run["time_budget"] == 1
    assert models == {"small": {"model": "deep-lstm", "hidden_size": 8, "dropout": 0.2, "lambdas": [0.5, 0.5],
                                "tied": True}}


@pytest.mark.parametrize("line, expected", [
    ("corpus = 5", "[run] corpus in suite.toml must be a string, got 5 (an integer)"),
    ("models = [1, 2]", "[run] models in suite.toml must be a non-empty array of model names"),
    ("models = \"bigram\"", "got 'bigram' (a string)"),
    ("models = []", "must be a non-empty array of model names"),
    ("models = [\"bigram\", \"\"]", "must be a non-empty array of model names"),
    ("split = \"0.8,0.1,0.1\"", "[run] split in suite.toml must be an array of three numbers"),
    ("split = [0.8, 0.2]", "split in suite.toml must be an array of three numbers"),
    ("split = [0.8, 0.1, nan]", "split in suite.toml must be an array of three numbers"),
    ("split = [0.8, 0.1, true]", "split in suite.toml must be an array of three numbers"),
    ("seed = true", "[run] seed in suite.toml must be an integer, got True (a boolean)"),
    ("seed = 1.0", "seed in suite.toml must be an integer, got 1.0 (a float)"),
    ("seeds = [1, 2.5]", "seeds in suite.toml must be a non-empty array of integers"),
    ("seeds = []", "seeds in suite.toml must be a non-empty array of integers"),
    ("min_freq = 0", "min_freq in suite.toml must be an integer >= 1, got 0"),
    ("min_freq = \"2\"", "min_freq in suite.toml must be an integer >= 1, got '2' (a string)"),
    ("max_vocab = 2", "max_vocab in suite.toml must be an integer >= 3"),
    ("bootstrap = -1", "bootstrap in suite.toml must be an integer >= 0"),
    ("bootstrap = false", "bootstrap in suite.toml must be an integer >= 0"),
    ("epochs = 0", "epochs in suite.toml must be an integer >= 1"),
    ("time_budget = inf", "time_budget in suite.toml must be a finite number of seconds > 0, got inf (not a finite"),
    ("time_budget = nan", "time_budget in suite.toml must be a finite number of seconds > 0, got nan"),
    ("time_budget = -1.5", "time_budget in suite.toml must be a finite number of seconds > 0"),
    ("time_budget = true", "time_budget in suite.toml must be a finite number of seconds > 0"),
    ("save_models = \"no\"", "save_models in suite.toml must be true or false, got 'no' (a string)"),
    ("save_scores = 0", "save_scores in suite.toml must be true or false, got 0 (an integer)"),
    ("overwrite = 1", "overwrite in suite.toml must be true or false"),
    ("device = 0", "device in suite.toml must be a string"),
    ("out = 1979-05-27", "out in suite.toml must be a string, got datetime.date(1979, 5, 27) (a date/time)"),
    ("tokenizer = [\"word\"]", "tokenizer in suite.toml must be a string, got [\"word\"] (an array)"),
    ("normalize = {kind = \"d2l\"}", "normalize in suite.toml must be a string, got {\"kind\": \"d2l\"} (a table)"),
])
def test_run_option_of_the_wrong_type_is_one_line_naming_key_and_type(tmp_path, line, expected):
    assert expected in refused(tmp_path, f"[run]\n{line}\n")


@pytest.mark.parametrize("text, expected", [
    ("[models.x]\nk = inf\n", "[models.x] k in suite.toml must be a string, boolean, finite number or an array"),
    ("[models.x]\nk = -inf\n", "[models.x] k in suite.toml must be"),
    ("[models.x]\nlambdas = [0.5, [nan]]\n", "[models.x] lambdas in suite.toml must be"),
    ("[models.x]\nk = {a = 1}\n", "[models.x] k in suite.toml must be a string, boolean, finite number or an array of "
                                  "them, got {\"a\": 1} (a table)"),
    ("[models.x]\nk = [{a = 1}]\n", "[models.x] k in suite.toml must be"),
    ("[models.x]\nwhen = 1979-05-27T07:32:00\n", "(a date/time)"),
    ("[models.x]\nmodel = 3\n", "[models.x] model in suite.toml must be a registry name (a string)"),
    ("[models.x]\nmodel = \"\"\n", "[models.x] model in suite.toml must be a registry name"),
    ("[models]\nx = 5\n", "[models.x] in suite.toml must be a table of parameters, got 5 (an integer)"),
    ("models = [\"bigram\"]\n", "models in suite.toml must be tables [models.LABEL] of parameters, got [\"bigram\"] "
                                "(an array); list the models to run as models = [...] under [run]"),
    ("run = 5\n", "run in suite.toml must be a table ([run]), got 5 (an integer)"),
])
def test_model_table_of_the_wrong_shape_is_one_line(tmp_path, text, expected):
    assert expected in refused(tmp_path, text)


def test_unknown_run_option_suggests_the_close_one(tmp_path):
    assert "did you mean 'min_freq'" in refused(tmp_path, "[run]\nmin_freqq = 2\n")
    assert "unknown table in suite.toml 'runn'" in refused(tmp_path, "[runn]\nseed = 1\n")


def test_suite_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "suite.toml"
    path.write_bytes('[run]\ncorpus = "caf\u00e9"\n'.encode("latin-1"))
    with pytest.raises(LmbenchError, match=r"not valid UTF-8 \(byte 0xe9 at offset 19\)"):
        load_suite(path, RUN_FIELDS)


def test_suite_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "suite.toml"
    path.write_bytes('\ufeff[run]\nseed = 2\n'.encode("utf-8"))
    assert load_suite(path, RUN_FIELDS) == ({"seed": 2}, {})


def test_suite_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "suite.toml"
    os.mkfifo(fifo)
    with pytest.raises(LmbenchError, match="FIFO"):
        load_suite(fifo, RUN_FIELDS)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_suite_that_is_a_device_is_refused_without_reading_it():
    with pytest.raises(LmbenchError, match="character device"):
        load_suite("/dev/zero", RUN_FIELDS)


def test_missing_suite_is_one_line(tmp_path):
    with pytest.raises(LmbenchError, match="not found"):
        load_suite(tmp_path / "nope.toml", RUN_FIELDS)


def test_cli_reports_a_suite_type_error_as_one_line(tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text('[run]\nmodels = "bigram"\n')
    result = CliRunner().invoke(cli, ["run", "--config", str(suite), "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lmbench: error: [run] models in suite.toml must be"), result.output
    assert "unknown model" not in result.output and not (tmp_path / "out").exists()


# ---------------------------------------------------------------- --set values


@pytest.mark.parametrize("text", ["Infinity", "-Infinity", "NaN", "inf", "-inf", "nan", " INF ", "+infinity",
                                  "1e999", "-1e999", "[0.5, NaN]", "[[1, Infinity]]"])
def test_set_value_that_is_not_finite_is_refused(text):
    with pytest.raises(LmbenchError, match="is not a finite number") as info:
        parse_assignments([f"trigram-addk.k={text}"])
    assert f"--set trigram-addk.k={text}:" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("text, value", [
    ("0.01", 0.01), ("200", 200), ("-3", -3), ("[1, 2]", [1, 2]), ("true", True), ("False", False),
    ("none", None), ("null", None), ("lstm", "lstm"), ('"inf"', "inf"), ("info", "info"), ("1e308", 1e308),
])
def test_set_value_parses_json_or_falls_back_to_a_string(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_set_assignments_group_by_label():
    assert parse_assignments(["lstm.hidden_size=200", "lstm.dropout=0.1", "a.b.c=x"]) == {
        "lstm": {"hidden_size": 200, "dropout": 0.1}, "a.b": {"c": "x"}}
