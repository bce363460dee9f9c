"""The notebook a d2l student would write runs top to bottom in a real kernel, with inline figures and no warnings."""

from __future__ import annotations

from pathlib import Path

from .conftest import LazyModule, needs

pytestmark = needs("nbformat", "nbclient", "ipykernel")
nbformat, nbclient = LazyModule("nbformat"), LazyModule("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "student.ipynb"


def test_the_student_notebook_runs_with_inline_figures_and_no_warnings(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(f"OUT = {str(tmp_path / 'run')!r}\n%matplotlib inline"))
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    streams = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    stderr = [out["text"] for out in streams if out.get("output_type") == "stream" and out.get("name") == "stderr"]
    # progress bars draw on stderr with carriage returns; anything else there is a warning or an error
    assert not [text for text in stderr if "warning" in text.lower() or "Traceback" in text], stderr
    images = [out for out in streams if out.get("output_type") in ("display_data", "execute_result")
              and "image/png" in out.get("data", {})]
    assert len(images) >= 3  # perplexity, curves, the Zipf plot
    same_function = [out["data"]["text/plain"] for out in streams if out.get("output_type") == "execute_result"
                     and out["data"].get("text/plain") in ("True", "False")]
    assert same_function == ["True"]
