"""Start-up cost: what a fresh interpreter imports for `import lmbench`, `lmbench --help`, an n-gram-only
run and `lmbench zipf`. Heavy libraries (torch ~0.7 s, scipy.optimize, matplotlib.pyplot, pandas) must be
imported only by the commands that use them; a failure names the lmbench import chain that pulled each in."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

#: what `import lmbench` and `lmbench --help` must not import.
HEAVY = ("torch", "scipy.optimize", "matplotlib.pyplot", "pandas")

#: run in a fresh interpreter: records, for each watched module, the lmbench frames that first imported it.
PROBE = textwrap.dedent('''
    import json, sys, traceback

    WATCH = {watch!r}
    chains = {{}}

    class Spy:
        def find_spec(self, name, path=None, target=None):
            if name in WATCH and name not in chains:
                chains[name] = [f"{{f.filename.rsplit('/lmbench/', 1)[-1]}}:{{f.lineno}} {{f.line}}"
                                for f in traceback.extract_stack()[:-1] if "/lmbench/" in f.filename]
            return None

    sys.meta_path.insert(0, Spy())
    {body}
    print("\\nIMPORTED=" + json.dumps({{m: chains.get(m, []) for m in WATCH if m in sys.modules}}))
    print("ATTEMPTED=" + json.dumps(chains))
''')

CLI_BODY = textwrap.dedent('''
    sys.argv = ["lmbench", *{args!r}]
    from lmbench.cli import main
    try:
        main()
    except SystemExit:
        pass
''')


def imported(body: str, watch=HEAVY, cwd=None, out: dict | None = None) -> dict:
    """Run ``body`` in a fresh interpreter; {watched module imported: lmbench frames that imported it}.

    ``out``, if given, receives the process's ``stdout``.
    """
    script = PROBE.format(watch=tuple(watch), body=textwrap.dedent(body).strip())
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert done.returncode == 0, done.stderr
    if out is not None:
        out["stdout"] = done.stdout
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("IMPORTED=")][-1]
    return json.loads(line[len("IMPORTED="):])


def leaks(found: dict) -> str:
    return "; ".join(f"{m} via {' <- '.join(reversed(chain)) or 'a non-lmbench import'}" for m, chain in found.items())


def cli(*args) -> str:
    return CLI_BODY.format(args=[str(a) for a in args])


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("".join(f"w{i % 7} w{i % 5} w{i % 3} w{i % 11}\n" for i in range(120)))
    return path


def test_import_lmbench_loads_no_heavy_library():
    found = imported("import lmbench")
    assert not found, leaks(found)


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["run", "--help"], ["zipf", "--help"]],
                         ids=" ".join)
def test_help_and_version_load_no_heavy_library(args):
    found = imported(cli(*args))
    assert not found, leaks(found)


def test_ngram_only_run_never_imports_torch(tmp_path, corpus):
    found = imported(cli("run", "--models", "bigram,trigram-kn", "--corpus", corpus, "--out", tmp_path / "out"),
                     watch=("torch",), cwd=tmp_path)
    assert (tmp_path / "out" / "perplexity.csv").is_file()
    assert not found, leaks(found)


def test_zipf_never_imports_torch(tmp_path, corpus):
    found = imported(cli("zipf", corpus, "--max-n", 2, "--out", tmp_path / "z"), watch=("torch",), cwd=tmp_path)
    assert (tmp_path / "z" / "zipf.csv").is_file()
    assert not found, leaks(found)


def test_registry_imports_a_neural_class_only_when_one_is_resolved():
    """With torch made unimportable, n-gram names resolve and build; "lstm" imports lmbench.models.neural.recurrent
    only when resolved (from the registry), and the missing torch is then a one-line error."""
    out = {}
    found = imported(textwrap.dedent('''
        sys.modules["torch"] = None  # as if torch were not installed
        from lmbench.errors import LmbenchError
        from lmbench.models.registry import available_names, resolve
        assert "lstm" in available_names()
        resolve("bigram-kn").build()
        resolve("trigram-addk", {"k": 0.1}).build()
        print("NEURAL_BEFORE=" + str("lmbench.models.neural.recurrent" in sys.modules))
        try:
            resolve("lstm")
        except LmbenchError as exc:
            print("ERROR=" + str(exc).replace("\\n", "|"))
    '''), watch=("lmbench.models.neural.recurrent",), out=out)
    assert "NEURAL_BEFORE=False" in out["stdout"] and not found   # its import failed: torch is missing
    attempted = json.loads(out["stdout"].split("ATTEMPTED=")[-1])
    assert any("registry.py" in frame for frame in attempted["lmbench.models.neural.recurrent"]), attempted
    error = [ln for ln in out["stdout"].splitlines() if ln.startswith("ERROR=")]
    assert error and "torch" in error[0] and "|" not in error[0], out["stdout"]
