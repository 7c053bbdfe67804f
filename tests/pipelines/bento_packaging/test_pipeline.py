"""bento_packaging: the MLflow champion imported into a BentoML model store."""

from __future__ import annotations

import mlflow
import pytest
from kedro.io.core import DatasetError
from mlflow.tracking import MlflowClient

from disease_pipeline.pipelines.bento_packaging.bento_store import (
    BentoModelStoreDataset,
    model_store,
    stored_versions,
)
from disease_pipeline.pipelines.bento_packaging.nodes import bento_import_spec
from disease_pipeline.pipelines.bento_packaging.pipeline import create_pipeline

PARAMS = {
    "bento_model_name": "dp_test",
    "registered_model_name": "dp_registry_test",
    "alias": "champion",
}


class EchoModel(mlflow.pyfunc.PythonModel):
    """The smallest pyfunc model: the import does not care what it predicts."""

    def predict(self, context, model_input, params=None):
        return model_input


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A throw-away MLflow tracking store and registry; restores the previous URI."""
    folder = tmp_path_factory.mktemp("registry")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = mlflow.create_experiment("bento", artifact_location=(folder / "art").as_uri())
    yield experiment
    mlflow.set_tracking_uri(previous)


def register_champion(experiment: str, auroc: float, data_version: str) -> str:
    """Log, register and alias one model version; returns the version number."""
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_metric("common.auroc_macro", auroc)
        info = mlflow.pyfunc.log_model(
            name="predictor",
            python_model=EchoModel(),
            registered_model_name=PARAMS["registered_model_name"],
        )
    client = MlflowClient()
    version = str(info.registered_model_version)
    client.set_model_version_tag(
        PARAMS["registered_model_name"], version, "data_version", data_version
    )
    client.set_registered_model_alias(PARAMS["registered_model_name"], "champion", version)
    assert run.info.run_id
    return version


def test_node_checks_parameters_and_verdict():
    spec = bento_import_spec({"approved": True, "reason": "ok"}, PARAMS)
    assert spec == {**PARAMS, "approved": True}
    with pytest.raises(ValueError, match="bento_packaging.alias"):
        bento_import_spec({"approved": True}, {**PARAMS, "alias": ""})
    with pytest.raises(ValueError, match="approved"):
        bento_import_spec({"reason": "?"}, PARAMS)
    pipeline = create_pipeline()
    assert pipeline.inputs() == {"reporting_champion_registration", "params:bento_packaging"}
    assert pipeline.outputs() == {"registry_bento_model"}


def test_the_champion_is_imported_once_per_registry_version(registry, tmp_path):
    home = tmp_path / "bentoml"
    dataset = BentoModelStoreDataset(bentoml_home=str(home))
    first = register_champion(registry, 0.91, "data-v1")
    spec = {**PARAMS, "approved": True}
    dataset.save(spec)
    dataset.save(spec)  # same registry version: nothing new
    with model_store(str(home)):
        assert len(stored_versions("dp_test")) == 1
    stored = dataset.load()
    assert stored["labels"] == {
        "registered_model": "dp_registry_test",
        "mlflow_version": first,
        "alias": "champion",
        "data_version": "data-v1",
    }
    assert stored["metadata"]["metrics"] == {"common.auroc_macro": pytest.approx(0.91)}
    assert stored["metadata"]["training_date"]

    second = register_champion(registry, 0.93, "data-v2")
    dataset.save(spec)
    with model_store(str(home)):
        assert len(stored_versions("dp_test")) == 2
    assert dataset.load()["labels"]["mlflow_version"] == second != first
    assert (home / "models" / "dp_test").is_dir()

    # a rollback moves the alias back to a version the store already holds: it is
    # imported again, so that the service's ``dp_test:latest`` is the champion once more
    MlflowClient().set_registered_model_alias(PARAMS["registered_model_name"], "champion", first)
    dataset.save(spec)
    with model_store(str(home)):
        assert len(stored_versions("dp_test")) == 3
    assert dataset.load()["labels"]["mlflow_version"] == first
    dataset.save(spec)  # and only once
    with model_store(str(home)):
        assert len(stored_versions("dp_test")) == 3


def test_no_champion_after_a_rejection_imports_nothing(registry, tmp_path):
    dataset = BentoModelStoreDataset(bentoml_home=str(tmp_path / "bentoml"))
    never_approved = {**PARAMS, "registered_model_name": "never_approved"}
    dataset.save({**never_approved, "approved": False})  # a warning, not a failed run
    assert not dataset.exists()
    with pytest.raises(DatasetError, match="not registered"):
        dataset.save({**never_approved, "approved": True})
