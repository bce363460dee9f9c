"""The README's two top commands stay true: CI runs its test command, the main job's models exist."""

from __future__ import annotations

import re
from pathlib import Path

from lmbench.models.registry import lookup

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
