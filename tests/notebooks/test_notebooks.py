"""Both notebooks run headless, top to bottom, as a user would run them.

They join the test session's Ray (through RAY_ADDRESS) instead of starting their own,
so a notebook costs its kernel's start and its few small evaluations.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("name", ["sweep.ipynb", "compare.ipynb"])
def test_notebooks_are_stored_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert all(not c.outputs and c.execution_count is None for c in code_cells(nb))


@pytest.fixture
def joined_ray(ray_session, monkeypatch, tmp_path):
    """The notebook's kernel joins the suite's Ray; the results root each notebook makes
    with ``tempfile.mkdtemp`` lands in this test's folder, not in /tmp for good."""
    import ray

    monkeypatch.setenv("RAY_ADDRESS", ray.get_runtime_context().gcs_address)
    monkeypatch.setenv("TMPDIR", str(tmp_path))


def execute(name: str):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    return nb


def texts(nb) -> str:
    out = []
    for cell in code_cells(nb):
        for output in cell.outputs:
            out.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
    return "\n".join(out)


def images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in code_cells(nb) for o in c.outputs)


def test_the_sweep_notebook(joined_ray):
    nb = execute("sweep.ipynb")
    text = texts(nb)
    assert "4 task(s), 0 failed" in text
    assert "dropped: mnist-8@1.0.0 x mnist-test@1.0.0 x onnx-reference-cpu@1.0.0" in text
    assert "onnx-reference" in text and "onnxruntime" in text  # the grouped DataFrame
    assert images(nb) == 3
    assert "4 runs:" in text and "report.html" in text


def test_the_compare_notebook(joined_ray):
    nb = execute("compare.ipynb")
    text = texts(nb)
    assert "top-1 agree  512 of 512 (100.00%)" in text
    assert "max_abs_diff" in text
    assert images(nb) == 1
