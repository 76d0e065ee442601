"""The notebooks in ``notebooks/`` run from top to bottom without error (each makes its own small
run in its first cells), and they are committed without outputs.

Each notebook is executed with :mod:`nbclient` in a fresh Python kernel, from the ``notebooks/``
folder (as a user opening it would), with Matplotlib's file backend and its runs written under a
temporary folder (``RESERVOIR_NOTEBOOK_RUNS``). The time each took is printed (``-s`` or the
``-rA`` summary shows it): all of them together should stay under two minutes.
"""
import json
import os
import time
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
TIMEOUT_PER_CELL_S = 240


def test_there_are_notebooks():
    names = {path.name for path in NOTEBOOKS}
    assert {"readout_subspaces.ipynb", "force_vs_three_factor.ipynb", "continual_hlop.ipynb"} <= names, names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, \
                f"{path.name} has outputs; strip them: python -m tests.strip_notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("RESERVOIR_NOTEBOOK_RUNS", str(tmp_path))
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=TIMEOUT_PER_CELL_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    print(f"{path.name}: {elapsed:.1f} s")
    errors = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if output.get("output_type") == "error"]
    assert not errors
    images = sum("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))
    assert images >= 1, f"{path.name} showed no figure"
    assert os.listdir(tmp_path), f"{path.name} wrote its runs elsewhere than RESERVOIR_NOTEBOOK_RUNS"
