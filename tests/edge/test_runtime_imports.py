"""The edge CLI runs with the heavy packages made unimportable: a ``sys.meta_path``
finder placed first raises on any import of them, in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import disease_pipeline

SOURCE = Path(disease_pipeline.__file__).resolve().parents[1]
BLOCKED = (
    "torch", "xgboost", "kedro", "kedro_datasets", "kedro_mlflow", "mlflow", "pandas",
    "sklearn", "scipy", "featuretools", "pyhpo", "pydantic", "yaml", "onnx", "onnxmltools",
    "bentoml", "click",
)  # fmt: skip
BLOCKER = """
import importlib.abc, sys
BLOCKED = set({blocked!r})

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"edge runtime must not import {{name}}")
        return None

sys.meta_path.insert(0, Blocker())
sys.argv = ["disease-pipeline-edge", *{argv!r}]
{body}
"""
#: the console script's entry point, then the top-level modules it loaded (on stderr)
CLI = """
import json
from disease_pipeline.edge.cli import main
status = main(sys.argv[1:])
print("MODULES=" + json.dumps(sorted({m.split(".")[0] for m in sys.modules})), file=sys.stderr)
sys.exit(status)
"""


def run_blocked(argv: list[str], body: str = CLI) -> subprocess.CompletedProcess:
    code = BLOCKER.format(blocked=sorted(BLOCKED), argv=argv, body=body)
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SOURCE), "PATH": "/usr/bin:/bin"},
        timeout=300,
        check=False,
    )


def test_the_blocker_blocks_what_the_full_predictor_needs():
    result = run_blocked([], body="import disease_pipeline.predictor.bundle")
    assert result.returncode != 0
    assert "edge runtime must not import" in result.stderr


@pytest.mark.parametrize("engine", ["exact", "onnx"])
def test_the_edge_cli_predicts_without_the_heavy_packages(edge_package, patients, tmp_path, engine):
    patient = tmp_path / "patient.json"
    patient.write_text(json.dumps(patients[0]), encoding="utf-8")
    argv = ["predict", str(patient), "--package", str(edge_package), "--json"]
    result = run_blocked([*argv, "--engine", engine])
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert len(answer["differential"]) >= 10
    assert 0.0 <= answer["p_rare"] <= 1.0
    assert answer["severity"]["level"] in ("low", "moderate", "high", "critical")
    modules = result.stderr.split("MODULES=")[-1].strip()
    loaded = set(json.loads(modules))
    assert {"numpy", "onnxruntime"} <= loaded
    assert not loaded & set(BLOCKED)
