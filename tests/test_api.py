"""What a new user meets in the Python API and in a run's outputs (issue 16), one test per behaviour."""

from __future__ import annotations

import inspect
import io
import json
import math
import os
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import lmbench
from lmbench.cli import cli
from lmbench.errors import LmbenchError

from tests.conftest import FakeClock, figures_not_drawn, random_lines

ROOT = Path(__file__).resolve().parents[1]
TINY_LSTM = {"hidden_size": 8, "embedding_size": 6, "num_steps": 8, "batch_size": 4, "progress": False}
#: perplexity.csv columns that measure time or memory: they differ between two fits of the same model.
COST_COLUMNS = ["fit_seconds", "eval_seconds", "score_tokens_per_s", "model_bytes", "saved_bytes", "fit_peak_bytes"]
#: lines on which modified Kneser-Ney cannot estimate its discounts (no 3-grams seen four times).
SMALL_TEXT = ("the cat sat on the mat\nthe dog sat on the log\na cat and a dog\nthe mat and the log\n"
              "the cat saw the dog\na dog saw a cat\nthe end of the line\non the mat the cat sat\nthe log the dog\n"
              "a mat a log\n")


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """One text of 300 random lines (split 0.8 / 0.1 / 0.1 by the run)."""
    return write_lines(tmp_path_factory.mktemp("corpus") / "corpus.txt",
                       random_lines(np.random.default_rng(3), 300, words=30))


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory) -> Path:
    """A corpus that comes split: train.txt, valid.txt, test.txt (test holds words train lacks)."""
    folder = tmp_path_factory.mktemp("split")
    rng = np.random.default_rng(7)
    write_lines(folder / "train.txt", random_lines(rng, 150, words=10))
    write_lines(folder / "valid.txt", random_lines(rng, 30, words=12))
    write_lines(folder / "test.txt", random_lines(rng, 30, words=12))
    return folder


@pytest.fixture(scope="module")
def ngram_run(split_dir, tmp_path_factory):
    with figures_not_drawn():                                # its figures are built by RunResult.plot
        return lmbench.run(["bigram", "bigram-add1", "3gram-kn"], corpus=split_dir,
                           out=tmp_path_factory.mktemp("runs") / "ngram", bootstrap=50, quiet=True)


@pytest.fixture(scope="module")
def sweep_cli(corpus, tmp_path_factory):
    """`lmbench sweep` of an n-gram and a tiny LSTM; at fraction 0.01 the LSTM has fewer tokens than one batch."""
    out = tmp_path_factory.mktemp("runs") / "sweep"
    sets = [a for k, v in TINY_LSTM.items() for a in ("--set", f"lstm.{k}={v}")]
    result = CliRunner().invoke(cli, ["sweep", "-m", "bigram-add1,lstm", "-c", str(corpus), "--fractions", "0.01,1",
                                      "--out", str(out), "--bootstrap", "20", "--epochs", "1", "--device", "cpu",
                                      *sets])
    return result, lmbench.load_run(out)


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message, message
    return message


# ---------------------------------------------------------------- 1. real signatures, documented


def documented(fn, name: str) -> bool:
    return re.search(rf"(?<![\w.]){name}(?!\w)", inspect.getdoc(fn)) is not None


@pytest.mark.parametrize("fn", [lmbench.run, lmbench.sweep, lmbench.compare, lmbench.zipf])
def test_api_functions_have_named_parameters_with_defaults_each_described_in_the_docstring(fn):
    params = inspect.signature(fn).parameters
    catch_all = [p for p in params.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
    # the one ** of run and sweep only turns a misspelled option into a did-you-mean error
    assert [p.name for p in catch_all] in ([], ["misspelled"])
    options = [p for p in params.values() if p.kind not in (inspect.Parameter.VAR_KEYWORD,
                                                              inspect.Parameter.VAR_POSITIONAL)]
    without_default = [p.name for p in options if p.default is inspect.Parameter.empty]
    assert without_default in ([], ["source"])  # zipf's text or corpus is the one thing it cannot guess
    undocumented = [name for name in params if not documented(fn, name)]
    assert not undocumented, f"{fn.__name__}: {undocumented} not described in its docstring"


def test_help_of_run_shows_every_default_as_its_value():
    import pydoc

    text = pydoc.render_doc(lmbench.run, renderer=pydoc.plaintext)
    assert "bootstrap=1000" in text and "corpus='timemachine'" in text and "seed=0" in text
    assert "Default" not in text.split("Fit models")[0]  # the marker objects print as the values they hold


def test_sweep_takes_every_option_of_run_by_name():
    run = inspect.signature(lmbench.run).parameters
    sweep = inspect.signature(lmbench.sweep).parameters
    assert set(sweep) == set(run)
    for name, param in run.items():
        if name != "fractions":
            assert (sweep[name].kind, repr(sweep[name].default)) == (param.kind, repr(param.default)), name
    assert sweep["fractions"].default == (0.01, 0.03, 0.1, 0.3, 1.0)


def test_a_misspelled_sweep_option_is_a_did_you_mean_error(corpus, tmp_path):
    with pytest.raises(LmbenchError, match="did you mean 'bootstrap'") as caught:
        lmbench.sweep(["bigram-add1"], corpus, fractions=[0.5, 1], out=tmp_path / "s", bootstrapp=10)
    assert "lmbench.sweep" in one_line(caught) and not (tmp_path / "s").exists()


def test_sweep_fractions_that_are_not_a_list_are_a_one_line_error(corpus, tmp_path):
    with pytest.raises(LmbenchError, match=r"fractions= \(--fractions\) needs distinct numbers") as caught:
        lmbench.sweep(["bigram-add1"], corpus, fractions=0.5, out=tmp_path / "s")
    one_line(caught)


# ---------------------------------------------------------------- 2. quiet, warnings, verbose


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    path = tmp_path / "small.txt"
    path.write_text(SMALL_TEXT, encoding="utf-8")
    return path


def test_a_quiet_run_prints_nothing_even_when_kneser_ney_falls_back(small_corpus, tmp_path, capfd):
    result = lmbench.run(["3gram-kn"], corpus=small_corpus, out=tmp_path / "q", bootstrap=20, quiet=True)
    assert capfd.readouterr() == ("", "")
    assert result.status == "complete"
    lmbench.run(["3gram-kn"], corpus=small_corpus, out=tmp_path / "loud", bootstrap=20)
    assert "Kneser-Ney" in capfd.readouterr().err  # the same run without quiet does warn


def test_each_kneser_ney_fallback_is_one_warning_line_without_source(small_corpus, tmp_path, capfd):
    lmbench.run(["3gram-kn"], corpus=small_corpus, out=tmp_path / "w", bootstrap=20)
    out, err = capfd.readouterr()
    assert out == ""
    lines = err.splitlines()
    fallback = [line for line in lines if "Kneser-Ney" in line]
    assert len(fallback) == 1, err
    assert fallback[0].startswith("lmbench: warning: Kneser-Ney discounts for ") and "fallback" in fallback[0]
    assert all(line.startswith("lmbench: warning: ") for line in lines), err  # no file:line, no source line
    assert ".py:" not in err and "UserWarning" not in err


def test_verbose_prints_the_table_and_the_default_does_not(small_corpus, tmp_path, capfd):
    lmbench.run(["bigram-add1", "3gram-kn"], corpus=small_corpus, out=tmp_path / "d", bootstrap=20)
    assert capfd.readouterr().out == ""
    result = lmbench.run(["bigram-add1", "3gram-kn"], corpus=small_corpus, out=tmp_path / "v", bootstrap=20,
                         verbose=True)
    out = capfd.readouterr().out
    header = next(line for line in out.splitlines() if line.split()[:2] == ["model", "split"])
    assert "perplexity" in header and "95% CI" in header
    for row in result.table.itertuples():
        assert re.search(rf"^\s*{re.escape(row.model)}\s+{row.split}\s+{row.n_tokens}\s+{row.perplexity:.2f}\s",
                         out, re.M), (row.model, row.split)


def test_verbose_escapes_an_undecodable_corpus_name_on_a_strict_stdout(small_corpus, tmp_path, monkeypatch):
    """A UTF-8 stdout that refuses lone surrogates (most terminals) prints the byte as an escape, no crash."""
    name = tmp_path / os.fsdecode(b"corpus-\xff.txt")
    name.write_bytes(Path(small_corpus).read_bytes())
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    monkeypatch.setattr(sys, "stdout", stdout)
    result = lmbench.run(["bigram-add1"], corpus=name, out=tmp_path / "v", bootstrap=0, verbose=True)
    stdout.flush()
    printed = stdout.buffer.getvalue().decode("utf-8")
    assert "corpus corpus-\\udcff: word tokens" in printed and "bigram-add1" in printed
    assert result.config["status"] == "complete"


# ---------------------------------------------------------------- 3. plots


def test_plot_documents_exactly_the_kinds_it_draws():
    doc = inspect.getdoc(lmbench.runs.result.RunResult.plot)
    assert set(re.findall(r'"(\w+)"\s+\(', doc)) == set(lmbench.runs.result.RunResult.PLOTS)


@pytest.mark.parametrize("kind", ["perplexity", "curves", "buckets", "sweep", "cost"])
def test_plot_returns_a_matplotlib_figure_for_each_kind(sweep_cli, kind):
    from matplotlib.figure import Figure

    assert kind in sweep_cli[1].PLOTS
    figure = sweep_cli[1].plot(kind)
    assert isinstance(figure, Figure) and figure.axes and any(ax.has_data() for ax in figure.axes)


def test_an_unknown_plot_kind_is_one_line_naming_the_kinds(ngram_run):
    with pytest.raises(LmbenchError, match="unknown plot 'histogram'") as caught:
        ngram_run.plot("histogram")
    message = one_line(caught)
    assert all(kind in message for kind in ngram_run.PLOTS)


def test_plots_a_run_cannot_draw_are_one_line_saying_why(ngram_run):
    with pytest.raises(LmbenchError, match="no learning curves") as caught:
        ngram_run.plot("curves")
    one_line(caught)
    with pytest.raises(LmbenchError, match="not a data-size sweep") as caught:
        ngram_run.plot("sweep")
    one_line(caught)


# ---------------------------------------------------------------- 4. zipf


def test_zipf_returns_the_full_rank_frequency_table_not_only_the_top(tmp_path):
    lines = random_lines(np.random.default_rng(11), 400, words=120, max_len=12)
    found = lmbench.zipf("\n".join(lines) + "\n", max_n=2, min_count=2, top=5)
    expected = {1: Counter(w for line in lines for w in line.split()),
                2: Counter(" ".join(p) for line in lines for p in zip(line.split(), line.split()[1:]))}
    for n, counts in expected.items():
        part = found.ranks[found.ranks["n"] == n]
        assert len(part) == len(counts) > 5  # every distinct n-gram, far more than top
        assert part["rank"].tolist() == list(range(1, len(counts) + 1))
        assert (np.diff(part["count"].to_numpy()) <= 0).all()
        assert dict(zip(part["ngram"], part["count"])) == dict(counts)
        assert len(found.top(5)[found.top(5)["n"] == n]) == 5


# ---------------------------------------------------------------- 5. Tokenizer, generate, score as nltk.lm


def test_tokenizer_is_part_of_the_documented_api():
    from lmbench.data.tokenizers import Tokenizer

    assert lmbench.Tokenizer is Tokenizer and "Tokenizer" in lmbench.__all__ and "Tokenizer" in lmbench.__doc__
    assert {"Tokenizer", "TextModel"} <= set(dir(lmbench))  # tab completion offers the lazy names too
    doc = inspect.getdoc(lmbench.Tokenizer)
    assert all(name in doc for name in ("kind", "normalize", "vocab_size"))
    assert lmbench.Tokenizer("word", "lower").tokenize_line("The Time  Machine") == ["the", "time", "machine"]
    assert lmbench.Tokenizer("char").tokenize_line("ab c") == ["a", "b", " ", "c"]


def test_result_generate_returns_the_prefix_and_length_tokens_of_text(ngram_run):
    text = ngram_run.generate("bigram-add1", "w1 w2", 12, seed=3)
    assert isinstance(text, str) and text.startswith("w1 w2")
    continuation = text[len("w1 w2"):]
    assert len(continuation.split()) + continuation.count("\n") == 12  # words plus ends of line
    vocab = set(ngram_run.model("bigram-add1").vocab.itos)
    assert set(continuation.split()) <= vocab
    assert ngram_run.generate("bigram-add1", "w1 w2", 12, seed=3) == text
    assert lmbench.generate(ngram_run.out_dir, "bigram-add1", "w1 w2", 12, seed=3) == text


def nltk_models(train_lines: list[str]):
    from nltk.lm import MLE, Laplace
    from nltk.lm.preprocessing import padded_everygram_pipeline

    sents = [line.split() for line in train_lines]
    mle, laplace = MLE(2), Laplace(2)
    mle.fit(*padded_everygram_pipeline(2, sents))
    laplace.fit(*padded_everygram_pipeline(2, sents))
    return mle, laplace


def test_text_model_score_and_logscore_agree_with_nltk_lm_on_a_bigram(ngram_run, split_dir):
    """TextModel.score(word, context): the context follows the start of a line, as nltk.lm's "<s>" pad; "\\n"
    is nltk's "</s>". nltk's vocabulary also holds "<s>", which lmbench never predicts: its Laplace V is ours + 1."""
    train = (split_dir / "train.txt").read_text(encoding="utf-8").splitlines()
    mle, laplace = nltk_models(train)
    ours_mle, ours_add1 = ngram_run.model("bigram"), ngram_run.model("bigram-add1")
    V = len(ours_add1.vocab)
    assert len(laplace.vocab) == V + 1
    words = sorted({w for line in train for w in line.split()}) + ["\n"]
    for context in ("", "w0", "w5 w1", ["w3"], "w9"):
        last = context.split()[-1:] if isinstance(context, str) else context[-1:]
        nltk_context = tuple(last) or ("<s>",)
        counts = laplace.counts[nltk_context]
        for word in words:
            nltk_word = "</s>" if word == "\n" else word
            expected = mle.score(nltk_word, nltk_context)
            assert ours_mle.score(word, context) == pytest.approx(expected, rel=1e-12, abs=0)
            if expected > 0:
                assert ours_mle.logscore(word, context) == pytest.approx(mle.logscore(nltk_word, nltk_context),
                                                                         rel=1e-12)
            else:
                assert ours_mle.logscore(word, context) == -math.inf
            by_hand = (counts[nltk_word] + 1) / (counts.N() + V)
            nltk_laplace = (counts[nltk_word] + 1) / (counts.N() + V + 1)
            assert laplace.score(nltk_word, nltk_context) == pytest.approx(nltk_laplace)
            assert ours_add1.score(word, context) == pytest.approx(by_hand, rel=1e-12)
            assert ours_add1.logscore(word, context) == pytest.approx(math.log2(by_hand), rel=1e-12)
    assert sum(ours_add1.score(w, "w0") for w in words) == pytest.approx(1 - ours_add1.score("<unk>", "w0"))


@pytest.mark.parametrize("call, fragment", [
    (lambda m: m.generate(50), "the prefix comes first, then the length"),  # nltk.lm's generate(num_words, ...)
    (lambda m: m.generate("w1 w2", "50"), "length (tokens to generate) must be a whole number"),
    (lambda m: m.generate("w1 w2", 2.5), "length (tokens to generate) must be a whole number"),
    (lambda m: m.generate("w1 w2", 5, temperature=0), "temperature must be a number in (0, inf)"),
    (lambda m: m.generate("w1 w2", 5, top_k=0), "top_k must be a whole number >= 1"),
    (lambda m: m.model.generate("w1 w2", 50), "generate() of a model takes token ids"),
    (lambda m: m.model.generate([1, 2], "50"), "length (tokens to generate) must be a whole number"),
])
def test_confusing_generate_calls_are_one_line_errors(ngram_run, call, fragment):
    with pytest.raises(LmbenchError) as caught:
        call(ngram_run.model("bigram-add1"))
    assert fragment in one_line(caught)


# ---------------------------------------------------------------- 6. errors name the API's arguments


def test_a_rerun_from_python_into_an_earlier_run_names_overwrite_and_resume_arguments(corpus, tmp_path):
    lmbench.run(["bigram-add1"], corpus=corpus, out=tmp_path / "r", bootstrap=0, quiet=True)
    with pytest.raises(LmbenchError, match="holds an earlier run") as caught:
        lmbench.run(["bigram-add1"], corpus=corpus, out=tmp_path / "r", bootstrap=0, quiet=True)
    message = one_line(caught)
    assert "overwrite=True" in message and "resume=True" in message
    with pytest.raises(LmbenchError) as caught:
        lmbench.run(["bigram-add1"], corpus=corpus, out=tmp_path / "r", overwrite=True, resume=True)
    assert "resume=" in one_line(caught) and "overwrite=" in str(caught.value)


def test_split_of_an_already_split_corpus_from_python_names_the_split_argument(split_dir, tmp_path):
    with pytest.raises(LmbenchError, match="split=") as caught:
        lmbench.run(["bigram-add1"], corpus=split_dir, split=(0.5, 0.25, 0.25), out=tmp_path / "o", quiet=True)
    assert "--split" in one_line(caught) and not (tmp_path / "o").exists()


# ---------------------------------------------------------------- 7. results.json


def json_value(value):
    """A perplexity.csv value as results.json's schema writes it: NaN as null, infinities as "inf"."""
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def test_results_json_holds_the_tables_figures_intervals_comparisons_and_config(ngram_run):
    out = ngram_run.out_dir
    path = out / "results.json"
    assert path.parent == (out / "perplexity.csv").parent and path.is_file()
    document = json.loads(path.read_text(encoding="utf-8"))
    assert ngram_run.results == document
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert document["schema"] == "lmbench-results/1" and document["status"] == "complete"
    assert document["lmbench_version"] == lmbench.__version__ and document["config"] == config["options"]
    assert document["data"] == {split: {k: info[k] for k in ("n_tokens", "n_lines", "n_bytes", "n_oov", "sha256")}
                                for split, info in config["data"]["splits"].items()}
    table = ngram_run.table
    assert list(document["results"]) == list(dict.fromkeys(table["model"]))
    assert any(math.isinf(p) for p in table["perplexity"])  # the MLE bigram meets unseen bigrams: "inf"
    for row in table.itertuples():
        entry = document["results"][row.model]
        assert entry["family"] == row.family and entry["n_params"] == row.n_params
        assert entry["params"] == config["models"][row.model]["params"]
        assert entry["fit"]["fit_seconds"] == row.fit_seconds
        split = entry[row.split]
        for key in ("n_tokens", "nll_nats", "perplexity", "bits_per_token", "bits_per_byte", "n_zero_prob",
                    "tuned_on_valid"):
            assert split[key] == json_value(getattr(row, key)), (row.model, row.split, key)
        assert split["perplexity_ci95"] == [json_value(row.ppl_low), json_value(row.ppl_high)]
        if math.isfinite(row.perplexity):
            assert split["perplexity_ci95"][0] <= split["perplexity"] <= split["perplexity_ci95"][1]
    pairs = ngram_run.compare
    assert len(document["comparisons"]) == len(pairs) > 0
    for item, row in zip(document["comparisons"], pairs.itertuples()):
        assert (item["split"], item["model_a"], item["model_b"]) == (row.split, row.model_a, row.model_b)
        assert item["ratio"] == json_value(row.ppl_ratio) and item["n_resamples"] == 50
        assert item["ratio_ci95"] == [json_value(row.ratio_low), json_value(row.ratio_high)]


def test_results_json_of_a_run_without_bootstrap_has_no_intervals_or_comparisons(corpus, tmp_path):
    result = lmbench.run(["bigram-add1", "3gram-kn"], corpus=corpus, out=tmp_path / "r", bootstrap=0, quiet=True)
    document = result.results
    assert document["comparisons"] == [] and document["config"]["bootstrap"] == 0
    for entry in document["results"].values():
        assert entry["valid"]["perplexity_ci95"] == entry["test"]["perplexity_ci95"] == [None, None]
        assert isinstance(entry["test"]["perplexity"], float)


# ---------------------------------------------------------------- 8. resume


@pytest.fixture
def count_fits(monkeypatch):
    """The labels of every n-gram model fitted from now on, in order."""
    from lmbench.models.ngram.model import NGramModel

    fitted, fit = [], NGramModel.fit

    def counting(self, *args, **kwargs):
        fitted.append(self.label)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(NGramModel, "fit", counting)
    return fitted


def test_resume_keeps_unchanged_models_fits_new_and_changed_ones_and_equals_a_fresh_run(corpus, tmp_path,
                                                                                           count_fits):
    out = tmp_path / "run"
    models = ["bigram-add1", "trigram-add1", "3gram-kn"]
    changed = {"trigram-add1": {"k": 0.5}}
    lmbench.run(models[:2], corpus=corpus, out=out, bootstrap=50, quiet=True)
    assert count_fits == models[:2]
    count_fits.clear()
    resumed = lmbench.run(models, corpus=corpus, out=out, params=changed, bootstrap=50, resume=True, quiet=True)
    assert count_fits == ["trigram-add1", "3gram-kn"]  # bigram-add1 is kept, not refitted
    kept = {label: info.get("kept_from_earlier_run", False) for label, info in resumed.config["models"].items()}
    assert kept == {"bigram-add1": True, "trigram-add1": False, "3gram-kn": False}
    assert resumed.config["models"]["trigram-add1"]["params"]["k"] == 0.5
    count_fits.clear()
    fresh = lmbench.run(models, corpus=corpus, out=tmp_path / "fresh", params=changed, bootstrap=50, quiet=True)
    assert count_fits == models
    pd.testing.assert_frame_equal(resumed.table.drop(columns=COST_COLUMNS), fresh.table.drop(columns=COST_COLUMNS))
    pd.testing.assert_frame_equal(resumed.compare, fresh.compare)
    assert np.array_equal(resumed.scores("bigram-add1", "test").logprobs, fresh.scores("bigram-add1", "test").logprobs)


def test_resume_over_a_changed_corpus_refits_every_model(corpus, tmp_path, count_fits):
    text = tmp_path / "text.txt"
    text.write_text(corpus.read_text(encoding="utf-8"), encoding="utf-8")
    lmbench.run(["bigram-add1", "3gram-kn"], corpus=text, out=tmp_path / "run", bootstrap=0, quiet=True)
    write_lines(text, random_lines(np.random.default_rng(99), 300, words=30))
    count_fits.clear()
    resumed = lmbench.run(["bigram-add1", "3gram-kn"], corpus=text, out=tmp_path / "run", bootstrap=0, resume=True,
                          quiet=True)
    assert count_fits == ["bigram-add1", "3gram-kn"]
    assert not any(info.get("kept_from_earlier_run") for info in resumed.config["models"].values())
    fresh = lmbench.run(["bigram-add1", "3gram-kn"], corpus=text, out=tmp_path / "fresh", bootstrap=0, quiet=True)
    pd.testing.assert_frame_equal(resumed.table.drop(columns=COST_COLUMNS), fresh.table.drop(columns=COST_COLUMNS))


# ---------------------------------------------------------------- 9. threads


def blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return sorted({info["num_threads"] for info in threadpool_info() if info.get("num_threads")})


def test_threads_are_recorded_in_config_json_from_python_and_the_command_line(corpus, tmp_path):
    before = blas_threads()
    result = lmbench.run(["bigram-add1"], corpus=corpus, out=tmp_path / "api", threads=2, bootstrap=0, quiet=True)
    assert result.config["options"]["threads"] == 2
    assert result.config["threads"]["blas"] == ([2] if before else [])  # in force while the run wrote it
    assert blas_threads() == before  # and given back after
    cli_run = CliRunner().invoke(cli, ["run", "-m", "bigram-add1", "-c", str(corpus), "--out", str(tmp_path / "cli"),
                                       "--bootstrap", "0", "--threads", "3"])
    assert cli_run.exit_code == 0, cli_run.output
    config = json.loads((tmp_path / "cli" / "config.json").read_text(encoding="utf-8"))
    assert config["options"]["threads"] == 3 and config["threads"]["blas"] == ([3] if before else [])


# ---------------------------------------------------------------- 10. bidirectional RNNs


@pytest.mark.parametrize("name", ["birnn", "bilstm", "bi-lstm", "bigru", "blstm", "bidirectional-lstm",
                                  "deep-bilstm"])
def test_a_bidirectional_rnn_is_refused_with_the_reason_not_as_unknown(name, corpus, tmp_path):
    with pytest.raises(LmbenchError) as caught:
        lmbench.run([name], corpus=corpus, out=tmp_path / "o", quiet=True)
    message = one_line(caught)
    assert message.startswith(f"{name!r}: a bidirectional RNN cannot be a language model")
    assert "sees the token it predicts" in message and "unknown" not in message
    assert not (tmp_path / "o").exists()


def test_bidirectional_true_for_a_recurrent_model_gets_the_same_reason(corpus, tmp_path):
    with pytest.raises(LmbenchError, match="lstm with bidirectional=True: a bidirectional RNN cannot be") as caught:
        lmbench.run(["lstm"], corpus=corpus, params={"lstm": {"bidirectional": True}}, out=tmp_path / "o")
    assert "unknown" not in one_line(caught)


def test_the_command_line_refuses_a_bidirectional_rnn_in_one_line_and_still_knows_bigram(corpus, tmp_path):
    result = CliRunner().invoke(cli, ["run", "-m", "bilstm", "-c", str(corpus), "--out", str(tmp_path / "o")])
    errors = [line for line in result.output.splitlines() if line.startswith("lmbench: error")]
    assert result.exit_code == 1 and len(errors) == 1 and "bidirectional RNN cannot" in errors[0]
    from lmbench.models.registry import lookup

    assert lookup("bigram")[1]["order"] == 2 and lookup("bigram-kn")[1]["order"] == 2


# ---------------------------------------------------------------- 11. citation and papers


def test_citation_cff_parses_with_version_title_and_authors():
    yaml = pytest.importorskip("yaml")
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert str(citation["cff-version"]).startswith("1.2")
    assert "lmbench" in citation["title"] and str(citation["version"]) == lmbench.__version__
    assert citation["authors"] and all(a.get("name") or a.get("family-names") for a in citation["authors"])
    assert all(ref["title"] and ref["year"] for ref in citation.get("references", []))


def test_models_long_lists_a_paper_under_every_family_of_names():
    from lmbench.models.registry import describe_models

    result = CliRunner().invoke(cli, ["models", "--long"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    for row in describe_models():
        at = next(i for i, line in enumerate(lines) if line.startswith(f"  {row['name']} "))
        assert lines[at + 1].lstrip().startswith("paper: "), row["name"]
    kn = lines[next(i for i, line in enumerate(lines) if line.startswith("  <order>-kn ")) + 1]
    assert "Kneser & Ney 1995" in kn and "Chen & Goodman 1998" in kn
    assert "paper:" not in CliRunner().invoke(cli, ["models"]).stdout


# ---------------------------------------------------------------- 12. fits cut short by the time budget


@pytest.fixture
def slow_lstm(monkeypatch):
    """On a fake clock every training batch of an LSTM takes 1 s and every scoring chunk 0.5 s."""
    import torch

    from lmbench.models.neural.recurrent import RecurrentLM

    clock = FakeClock()
    build, fit = RecurrentLM.build_network, RecurrentLM.fit

    class Slow(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x, state=None):
            clock.advance(1.0 if self.training else 0.5)
            return self.net(x, state)

    monkeypatch.setattr(RecurrentLM, "build_network", lambda self, vocab_size: Slow(build(self, vocab_size)))
    monkeypatch.setattr(RecurrentLM, "fit", lambda self, *a, **k: fit(self, *a, clock=clock, **k))
    return clock


def test_a_fit_cut_short_is_marked_in_the_table_and_a_budget_without_validation_warns_once(corpus, tmp_path, capfd,
                                                                                             slow_lstm):
    result = lmbench.run(["bigram-add1", "lstm"], corpus=corpus, out=tmp_path / "r", params={"lstm": TINY_LSTM},
                         time_budget=1.5, epochs=5, device="cpu", bootstrap=0, save_models=False, verbose=True)
    out, err = capfd.readouterr()
    rows = result.table.set_index(["model", "split"])
    lstm = rows.loc[("lstm", "test")]
    assert lstm["stopped_by"] == "time_budget" and lstm["epochs_completed"] == 0
    one_batch = TINY_LSTM["batch_size"] * TINY_LSTM["num_steps"]
    assert lstm["tokens_trained"] == one_batch < lstm["train_tokens"]
    assert rows.loc[("bigram-add1", "test"), "stopped_by"] != "time_budget"
    warnings = [line for line in err.splitlines() if "time budget" in line]
    assert warnings == [f"lmbench: warning: lstm: the time budget of 1.5 s left no time to validate: trained "
                        f"{one_batch:,} of the {int(lstm['train_tokens']):,} training tokens; the last weights are "
                        f"kept, raise time_budget"]
    table = out[out.index("model "):]
    assert re.search(r"^\s*lstm\^\s+test\s", table, re.M) and not re.search(r"bigram-add1\^", table)
    assert f"^ lstm: training cut short by the time budget (0 complete epoch(s), {one_batch:,} tokens trained)" in table
    assert f"[lstm] cut short by the time budget: 0 complete epochs, {one_batch:,} training tokens seen" in out


# ---------------------------------------------------------------- 13. sweeps


@pytest.mark.plots
def test_an_infeasible_sweep_point_is_a_row_with_its_reason_and_the_sweep_goes_on(sweep_cli):
    invoked, result = sweep_cli
    assert invoked.exit_code == 0, invoked.output
    assert result.status == "complete" and not result.failures
    sweep = pd.read_csv(result.out_dir / "sweep.csv", keep_default_na=False, na_values=[""])
    assert set(sweep["split"]) == {"valid", "test"} and len(sweep) == 2 * 2 * 2  # long: model x fraction x split
    infeasible = sweep[sweep["status"] == "infeasible"]
    assert set(zip(infeasible["model"], infeasible["fraction"])) == {("lstm", 0.01)} and len(infeasible) == 2
    need = TINY_LSTM["batch_size"] * TINY_LSTM["num_steps"] + TINY_LSTM["num_steps"] - 1
    tokens = int(infeasible["train_tokens"].iloc[0])
    assert tokens < need
    reason = f"{tokens:,} training tokens at fraction 0.01, fewer than the {need} lstm needs"
    assert (infeasible["reason"] == reason).all()
    assert infeasible["perplexity"].isna().all()
    done = sweep[sweep["status"] == "done"]
    assert set(zip(done["model"], done["fraction"])) == {("bigram-add1", 0.01), ("bigram-add1", 1.0), ("lstm", 1.0)}
    assert done["perplexity"].notna().all() and done.groupby("split")["n_tokens"].nunique().eq(1).all()
    assert f"[lstm@0.01] infeasible: {tokens:,} training tokens" in invoked.output
    assert "lstm@0.01" not in set(result.table["model"])
    assert (result.out_dir / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # drawn with the infeasible point


def test_a_sweep_says_that_every_size_shares_one_vocabulary(sweep_cli):
    invoked, result = sweep_cli
    assert "every training size shares this vocabulary (of the whole training split)" in invoked.output
    assert result.table["vocab_size"].nunique() == 1
    report = (result.out_dir / "report.md").read_text(encoding="utf-8")
    assert "with the vocabulary of the whole training split" in report
    assert "| lstm | 0.01 |" in report  # the infeasible point, listed with its reason


def test_a_plain_run_does_not_claim_to_be_a_sweep(small_corpus, tmp_path, capfd):
    lmbench.run(["bigram-add1"], corpus=small_corpus, out=tmp_path / "r", bootstrap=0, verbose=True)
    assert "sweep" not in capfd.readouterr().out
