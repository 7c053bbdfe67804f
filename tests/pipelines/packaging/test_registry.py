"""Packaging: an approved predictor becomes ONE pyfunc model ``@champion``; a rejected
one promotes nothing. Runs against a throw-away MLflow store."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from disease_pipeline.datasets.champion_model import ChampionModelDataset
from disease_pipeline.pipelines.packaging import create_pipeline
from disease_pipeline.predictor.mlflow_model import records_from_input
from tests.pipelines.evaluation.standin import StandInPredictor, make_split, run_in_memory

PARAMS = {"top_k": 3, "requirements_extra": "model", "tag_metrics": ["gate.auroc"]}
PATIENT = {
    "age": 61,
    "sex": "male",
    "symptoms": [{"code": "HP:0001945", "system": "HPO", "present": True}],
    "vitals": [{"loinc": "8867-4", "value": 110, "unit": "/min"}],
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A throw-away SQLite tracking store; each test registers under its own model name."""
    tmp_path = tmp_path_factory.mktemp("mlflow")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("unit", artifact_location=(tmp_path / "art").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    yield MlflowClient()
    mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="module")
def predictor():
    return StandInPredictor(make_split(300, 1, "2021-01-01"))


def run_packaging(predictor, approved: bool, name: str) -> None:
    verdict = {"approved": approved, "reason": "all criteria passed" if approved else "failed: x"}
    catalog_data = {
        "model_predictor": predictor,
        "reporting_gate_verdict": verdict,
        "reporting_metrics": {"gate.auroc": 0.91},
        "reporting_data_version": {"data_version": "dv-42"},
        "params:packaging": PARAMS,
    }
    with mlflow.start_run():
        outputs = run_in_memory(create_pipeline(), catalog_data)
        candidate = outputs["registry_champion_model"]
        ChampionModelDataset(registered_model_name=name).save(candidate)
    # what bento_packaging reads to stage the champion after the registration
    assert outputs["reporting_champion_registration"] == {
        "approved": approved,
        "reason": verdict["reason"],
        "tags": candidate["tags"],
    }


def test_approved_predictor_is_registered_as_champion_and_predicts(store, predictor):
    name = "approved"
    run_packaging(predictor, approved=True, name=name)
    version = store.get_model_version_by_alias(name, "champion")
    assert version.tags["data_version"] == "dv-42"
    assert version.tags["metric.gate.auroc"] == "0.9100"
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    [prediction] = model.predict([PATIENT])
    assert len(prediction["differential"]) == 3
    assert 0 <= prediction["p_rare"] <= 1
    frame_predictions = model.predict(pd.DataFrame([PATIENT, {"age": 5, "sex": "female"}]))
    assert frame_predictions[0]["differential"] == prediction["differential"]
    assert frame_predictions[0]["p_rare"] == pytest.approx(prediction["p_rare"])
    assert len(model.predict([PATIENT], params={"top_k": 5})[0]["differential"]) == 5
    run = store.get_run(version.run_id)
    assert run.data.tags["gate.approved"] == "true"


def test_rejected_predictor_promotes_nothing(store, predictor):
    name = "rejected"
    run_packaging(predictor, approved=False, name=name)
    assert store.search_registered_models(f"name='{name}'") == []
    assert not ChampionModelDataset(registered_model_name=name).exists()


def test_rejection_keeps_the_previous_champion(store, predictor):
    name = "kept"
    run_packaging(predictor, approved=True, name=name)
    run_packaging(predictor, approved=False, name=name)
    versions = store.search_model_versions(f"name='{name}'")
    assert [str(v.version) for v in versions] == ["1"]
    assert str(store.get_model_version_by_alias(name, "champion").version) == "1"
    runs = mlflow.search_runs(order_by=["start_time DESC"])
    assert runs.iloc[0]["tags.gate.approved"] == "false"
    assert runs.iloc[0]["tags.gate.reason"] == "failed: x"


def test_invalid_records_are_rejected_with_the_field_name():
    # a missing age is allowed (noted by the predictor); an impossible one is not
    with pytest.raises(ValueError, match="age"):
        records_from_input([{"age": 200, "sex": "male"}])
    assert records_from_input(pd.DataFrame([{"age": 3.0, "note": float("nan")}]))[0].note is None
