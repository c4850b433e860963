"""The training notebooks execute (tiny configuration) and are committed with outputs cleared."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "training" / "notebooks"


@pytest.mark.parametrize("task", ["screening", "diagnosis"])
def test_notebook_executes(task, tmp_path, monkeypatch, data_dir):
    nb = nbformat.read(NOTEBOOKS / f"{task}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code), \
        "commit notebooks with outputs cleared"
    # Read by the notebook's first cell: a tiny run, written under tmp_path (not runs/).
    monkeypatch.setenv("DIACHESTXR_NB_TINY", "1")
    monkeypatch.setenv("DIACHESTXR_NB_OUT", str(tmp_path))
    monkeypatch.setenv("DIACHESTXR_SHARED", str(data_dir.parent))
    NotebookClient(nb, timeout=240, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()

    run = tmp_path / task
    assert (run / f"{task}.safetensors").is_file() and (run / f"{task}.json").is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == task and metrics["n"] > 0
    assert (run / f"{task}_roc.png").is_file()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # the Grad-CAM cell drew a figure
    assert any("image/png" in o.get("data", {}) for o in nb.cells[-2].outputs)
