"""The real ``train`` run logs to MLflow and registers the approved predictor as
``@champion``; a failing gate afterwards promotes nothing."""

from __future__ import annotations

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
        name = context.catalog.get("models_champion")._describe()["registered_model_name"]
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


def test_a_failing_gate_promotes_nothing(registry, test_catalog):
    name, client = registry
    before = client.get_model_version_by_alias(name, "champion").version
    impossible = {"evaluation": {"gate": {"criteria": {"auroc_common": {"threshold": 1.01}}}}}
    gate_nodes = ["apply_acceptance_gate", "render_gate_verdict", "register_champion"]
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
