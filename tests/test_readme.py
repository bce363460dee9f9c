"""The README stays true: its top commands, and every output block a test can reproduce within CI time."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lmbench.models.registry import lookup
from tests.conftest import figures_not_drawn, require_corpus

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """The first two bash blocks of the README: install + main job, tests."""
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    return blocks[:2]


def test_ci_runs_the_readme_test_command():
    test_command = readme_commands()[1].strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_main_command_names_registered_models():
    main = readme_commands()[0]
    models = re.search(r"--models (\S+)", main).group(1).split(",")
    for name in models:
        lookup(name)  # raises for an unknown name


def test_the_readme_python_example_prints_what_the_readme_shows(tmp_path, monkeypatch, capsys):
    """The Python API section's example is executed as written; its output is the block after it, to the character."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1]
    code, shown = re.search(r"```python\n(.*?)\n```\s*```\n(.*?)\n```", section, re.S).groups()
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    assert capsys.readouterr().out.rstrip("\n") == shown


# ------------------------------------------------- output blocks: what the commands print today

def block_after(command: str) -> str:
    """The output block that follows the README's ```bash block holding exactly ``command``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"```bash\n" + re.escape(command) + r"\n```\s*```\n(.*?)\n```", text, re.S)
    assert found, f"README has no output block after {command!r}"
    return found.group(1)


def table_rows(printed: str) -> dict[tuple[str, str], list[str]]:
    """(model, split) -> the cells of each row of a printed results table, the two timing columns left out."""
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["model", "split"])
    rows = {}
    for line in lines[start + 1:]:
        cells = line.split()
        if len(cells) < 4 or not cells[2].isdigit():
            break
        rows[(cells[0], cells[1])] = cells[2:-2]  # fit_s and eval_s are measured, not computed
    return rows


def run_cli(args: list[str], stdin: str | None = None) -> str:
    from click.testing import CliRunner

    from lmbench.cli import cli

    result = CliRunner().invoke(cli, args, input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def assert_rows_shown(shown: str, printed: str, models: list[str]) -> None:
    """Every row of ``models`` in the README's table is the row the command prints now, cell for cell."""
    readme, now = table_rows(shown), table_rows(printed)
    checked = [key for key in readme if key[0] in models]
    assert {key[0] for key in checked} == set(models), f"README table lacks rows of {set(models) - {k[0] for k in checked}}"
    for key in checked:
        assert readme[key] == now[key], f"README row {key}: {readme[key]} but the command prints {now[key]}"


def test_the_zipf_block_is_what_the_command_prints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    command = "lmbench zipf timemachine --tokenizer word"
    assert run_cli(command.split()[1:]).rstrip("\n") == block_after(command)


def test_the_ngram_rows_of_the_time_machine_table_are_what_a_run_prints(tmp_path):
    """The tour's table: its n-gram rows (the neural ones take minutes) are what a run prints today."""
    command = "lmbench run --models bigram,trigram-add1,trigram-kn,5gram-kn,rnn,gru,lstm,deep-lstm"
    ngrams = ["bigram", "trigram-add1", "trigram-kn", "5gram-kn"]
    printed = run_cli(["run", "--models", ",".join(ngrams), "--out", str(tmp_path / "tm")])
    assert_rows_shown(block_after(command), printed, ngrams)


PTB_COMMAND = ("lmbench run --corpus ptb --models bigram,bigram-add1,trigram-add1,trigram-kn,5gram-kn,transformer-word,"
               "lstm-zaremba-small,'mix(5gram-kn+transformer-word)','mix(5gram-kn+lstm-zaremba-small)' --threads 2 "
               "--out results/ptb")
PTB_NGRAMS = ["bigram", "bigram-add1", "trigram-add1", "trigram-kn", "5gram-kn"]


@pytest.fixture(scope="module")
def ptb_ngram_run(tmp_path_factory):
    """The n-grams of the README's PTB run, fitted now (seconds; the neural rows take an hour)."""
    require_corpus("ptb")
    out = tmp_path_factory.mktemp("readme-ptb") / "ptb"
    with figures_not_drawn():                                # the README shows its table, not its PNGs
        return out, run_cli(["run", "--corpus", "ptb", "--models", ",".join(PTB_NGRAMS), "--out", str(out)])


def test_the_ngram_rows_of_the_ptb_table_are_what_a_run_prints(ptb_ngram_run):
    assert_rows_shown(block_after(PTB_COMMAND), ptb_ngram_run[1], PTB_NGRAMS)


def test_the_score_block_is_what_score_prints(ptb_ngram_run):
    text = "the company said it expects higher earnings from zorbles"
    command = f'echo "{text}" | lmbench score --run results/ptb --model 5gram-kn -'
    printed = run_cli(["score", "--run", str(ptb_ngram_run[0]), "--model", "5gram-kn", "-"], stdin=text + "\n")
    assert printed.rstrip("\n") == block_after(command)
