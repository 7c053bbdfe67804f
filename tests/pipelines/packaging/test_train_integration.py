"""The real ``train`` run logs to MLflow and registers the approved predictor as
``@champion``; a failing gate afterwards promotes nothing."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow

PATIENT = {
    "age": 47,
    "sex": "female",
    "symptoms": [
        {"code": "HP:0001945", "system": "HPO"},
        {"code": "HP:0012735", "system": "HPO"},
    ],
    "vitals": [{"loinc": "8310-5", "value": 38.9, "unit": "Cel"}],
    "labs": [{"loinc": "1988-5", "value": 60, "unit": "mg/L"}],
}


def run_session(**kwargs) -> None:
    bootstrap_project(PROJECT_ROOT)
    runtime_params = kwargs.pop("runtime_params", None)
    with KedroSession.create(
        project_path=PROJECT_ROOT, env="test", runtime_params=runtime_params
    ) as session:
        session.run(**kwargs)


@pytest.fixture(scope="module")
def registry(pipeline_runner):
    """The test environment's model name and an MLflow client on its tracking store."""
    pipeline_runner("simulate")
    pipeline_runner("train")
    bootstrap_project(PROJECT_ROOT)
    with KedroSession.create(project_path=PROJECT_ROOT, env="test") as session:
        context = session.load_context()
        name = context.catalog.get("registry_champion_model")._describe()["registered_model_name"]
        uri = context.mlflow.server.mlflow_tracking_uri
    assert "data/test" in uri, uri
    mlflow.set_tracking_uri(uri)
    return name, MlflowClient(tracking_uri=uri)


def test_train_registers_the_champion_and_it_predicts_a_patient(registry, test_catalog):
    name, client = registry
    assert test_catalog.load("reporting_gate_verdict")["approved"] is True
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    [prediction] = model.predict([PATIENT])
    assert prediction["differential"]
    assert 0 <= prediction["p_rare"] <= 1
    assert prediction["severity"]["level"] in {"low", "moderate", "high", "critical"}

    version = client.get_model_version_by_alias(name, "champion")
    run = client.get_run(version.run_id)
    data_version = test_catalog.load("reporting_data_version")["data_version"]
    assert run.data.tags["data_version"] == data_version
    assert version.tags["data_version"] == data_version
    assert "common.auroc_macro" in run.data.metrics
    assert "drift.max_psi" in run.data.metrics
    assert any(key.startswith("evaluation.gate.criteria") for key in run.data.params)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert {"evaluation/model_card.md", "evaluation/gate_verdict.json"} <= artifacts


#: virtual environments built from a registered model's requirements, one per distinct
#: requirements.txt, kept between runs (data/ is git-ignored)
MODEL_ENVS = PROJECT_ROOT / "data" / "test" / "model_envs"
FRESH_ENV_SCRIPT = """
import importlib.util, json, sys
import mlflow.pyfunc
assert importlib.util.find_spec("kedro") is None, "kedro is installed"
model = mlflow.pyfunc.load_model(sys.argv[1])
[prediction] = model.predict([json.loads(sys.argv[2])])
assert not [m for m in sys.modules if m.split(".")[0] == "kedro"]
print(json.dumps(prediction, sort_keys=True))
"""


def model_env(requirements: Path) -> Path:
    """The Python of a virtual environment with only ``requirements`` installed (built
    once per distinct file). ``--retries 0``: an unreachable extra index (the PyTorch
    CPU index on an offline machine) is skipped at once for the local mirror."""
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    folder = MODEL_ENVS / key
    python = folder / "bin" / "python"
    if not (folder / ".ready").exists():
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
        install = [str(python), "-m", "pip", "install", "--quiet", "--retries", "0"]
        install += ["--timeout", "10", "-r", str(requirements)]
        done = subprocess.run(install, check=False, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        (folder / ".ready").touch()
    return python


def test_the_champion_loads_from_its_own_requirements_without_kedro(registry, tmp_path):
    """A fresh virtual environment with only the registered model's requirements.txt
    loads the champion (its bundled source) and answers as the project does."""
    name, _ = registry
    uri = f"models:/{name}@champion"
    folder = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / "model")))
    python = model_env(folder / "requirements.txt")
    done = subprocess.run(
        [str(python), "-c", FRESH_ENV_SCRIPT, str(folder), json.dumps(PATIENT)],
        check=False,
        cwd=tmp_path,  # not the project: only the model's own code is importable
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    fresh = json.loads(done.stdout.strip().splitlines()[-1])
    [here] = mlflow.pyfunc.load_model(uri).predict([PATIENT])
    assert fresh == json.loads(json.dumps(here, sort_keys=True))


def test_a_failing_gate_promotes_nothing(registry, test_catalog):
    name, client = registry
    before = client.get_model_version_by_alias(name, "champion").version
    impossible = {"evaluation": {"gate": {"criteria": {"auroc_common": {"threshold": 1.01}}}}}
    gate_nodes = [  # registered names: <pipeline folder>.<node> (pipeline_registry)
        "evaluation.apply_acceptance_gate",
        "evaluation.render_gate_verdict",
        "packaging.register_champion",
    ]
    try:
        run_session(
            pipeline_names=["evaluation", "packaging"],
            node_names=gate_nodes,
            runtime_params=impossible,
        )
        verdict = test_catalog.load("reporting_gate_verdict")
        assert verdict["approved"] is False
        assert verdict["failed"] == ["auroc_common"]
        assert client.get_model_version_by_alias(name, "champion").version == before
        latest = max(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))
        assert latest.version == before
    finally:  # leave data/test with the verdict of the regular test configuration
        run_session(pipeline_names=["evaluation"], node_names=gate_nodes[:2])
