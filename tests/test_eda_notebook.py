"""notebooks/eda.ipynb executes on the test warehouse, so it cannot rot."""

from __future__ import annotations

import re

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import PROJECT_ROOT

NOTEBOOK = PROJECT_ROOT / "notebooks" / "eda.ipynb"


def test_notebook_is_stored_without_outputs_and_reads_the_catalog():
    """Outputs of a run on real data could carry data; the notebook is kept clean."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    source = "\n".join(cell.source for cell in code)
    assert 'catalog.load(f"prm_{name}")' in source and "DISEASE_PIPELINE_ENV" in source


@pytest.mark.slow
def test_notebook_runs_on_the_test_warehouse(pipeline_runner, monkeypatch):
    for name in ("simulate", "ingestion", "anonymization"):
        pipeline_runner(name)
    monkeypatch.setenv("DISEASE_PIPELINE_ENV", "test")
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(PROJECT_ROOT)}},
    )
    client.execute()
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "environment 'test'" in text
    ratio = re.search(r"common:rare = ([\d.]+):1", text)
    assert ratio and float(ratio.group(1)) > 1
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 5
