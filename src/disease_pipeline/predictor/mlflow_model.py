"""The whole predictor as ONE MLflow pyfunc model, and the dataset that registers it.

:class:`DiseasePredictorModel` wraps the pickled
:class:`disease_pipeline.predictor.DiseasePredictor`: ``predict`` takes patient records
(a DataFrame with one ``PatientRecord``-shaped row per patient, or a list of dicts) and
returns one JSON-ready prediction per record. The package source is shipped with the
model (``code_paths``) so ``mlflow.pyfunc.load_model("models:/<name>@champion")`` works
wherever the pinned requirements are installed.

:class:`ChampionModelDataset` is the Kedro dataset of the packaging pipeline: saving an
approved candidate logs the model in the active MLflow run, registers a new version and
points the ``champion`` alias at it; saving a rejected candidate promotes nothing.
"""

from __future__ import annotations

import logging
import math
import pickle
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ParamSchema, ParamSpec

from disease_pipeline.json_types import json_types

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def records_from_input(model_input: Any) -> list[Any]:
    """``PatientRecord`` objects from a DataFrame of records or a list of dicts.

    Missing scalar cells of a DataFrame (NaN/None) are dropped so that optional fields
    take their defaults; invalid rows raise pydantic's ``ValidationError`` naming the field.
    """
    from disease_pipeline.records import PatientRecord

    if isinstance(model_input, pd.DataFrame):
        rows = model_input.to_dict(orient="records")
    elif isinstance(model_input, dict):
        rows = [model_input]
    else:
        rows = list(model_input)
    records = []
    for row in rows:
        if isinstance(row, PatientRecord):
            records.append(row)
            continue
        clean = {
            key: value
            for key, value in dict(row).items()
            if not (value is None or (isinstance(value, float) and math.isnan(value)))
        }
        records.append(PatientRecord.model_validate(clean))
    return records


class DiseasePredictorModel(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper of the pickled ``DiseasePredictor`` (artifact ``predictor``)."""

    def __init__(self, top_k: int = 5) -> None:
        self.top_k = top_k
        self.predictor = None

    def load_context(self, context) -> None:
        """Unpickle the predictor from the model's ``predictor`` artifact."""
        with open(context.artifacts["predictor"], "rb") as handle:
            self.predictor = pickle.load(handle)  # noqa: S301 - our own registered artifact

    # The hint only silences MLflow's "add type hints" warning: MLflow passes a DataFrame
    # hint's input through unchanged, and records are validated by pydantic below.
    def predict(self, context, model_input: pd.DataFrame, params=None):
        """Predictions for ``model_input`` (DataFrame of ``PatientRecord`` rows, or a list
        of dicts): one dict per record with the ranked differential, P(rare), severity and
        explanation. ``params={"top_k": n}`` changes the length of the differential."""
        top_k = int((params or {}).get("top_k", self.top_k))
        records = records_from_input(model_input)
        return json_types(self.predictor.predict_records(records, top_k=top_k))


def pinned_requirements(packages: list[str]) -> list[str]:
    """``name==version`` for each installed package (a clear error for a missing one)."""
    pins = []
    for name in packages:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError as error:
            raise ValueError(f"pip requirement '{name}' is not installed") from error
    return pins


class ChampionModelDataset(AbstractDataset[dict[str, Any], Any]):
    """Registers an approved predictor in the MLflow Model Registry as ``<name>@<alias>``.

    ``save`` takes the packaging candidate ``{"approved", "predictor", "reason",
    "tags", "pip_requirements", "top_k"}``. ``load`` returns the current champion as a
    pyfunc model (``models:/<name>@<alias>``).

    Example:
        ```yaml
        models_champion:
          type: disease_pipeline.predictor.mlflow_model.ChampionModelDataset
          registered_model_name: disease_pipeline
          alias: champion
        ```
    """

    def __init__(
        self,
        *,
        registered_model_name: str,
        alias: str = "champion",
        artifact_name: str = "predictor",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if not registered_model_name:
            raise ValueError("ChampionModelDataset: 'registered_model_name' must be set")
        self._name = registered_model_name
        self._alias = alias
        self._artifact_name = artifact_name
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"registered_model_name": self._name, "alias": self._alias}

    @property
    def uri(self) -> str:
        """The registry URI of the champion, ``models:/<name>@<alias>``."""
        return f"models:/{self._name}@{self._alias}"

    def load(self) -> Any:
        """The champion as an ``mlflow.pyfunc.PyFuncModel``."""
        try:
            return mlflow.pyfunc.load_model(self.uri)
        except MlflowException as error:
            raise DatasetError(f"no model registered as {self.uri}: {error}") from error

    def _exists(self) -> bool:
        try:
            MlflowClient().get_model_version_by_alias(self._name, self._alias)
        except MlflowException:
            return False
        return True

    def save(self, data: dict[str, Any]) -> None:
        """Log, register and promote an approved candidate; promote nothing otherwise."""
        for key in ("approved", "predictor", "reason"):
            if key not in data:
                raise DatasetError(f"ChampionModelDataset.save: candidate lacks '{key}'")
        if mlflow.active_run() is None:
            with mlflow.start_run(run_name="packaging"):
                self._save_in_run(data)
        else:
            self._save_in_run(data)

    def _save_in_run(self, data: dict[str, Any]) -> None:
        mlflow.set_tag("gate.approved", str(bool(data["approved"])).lower())
        mlflow.set_tag("gate.reason", str(data["reason"])[:5000])
        if not data["approved"]:
            logger.warning(
                "packaging: gate rejected the model, nothing promoted (%s)", data["reason"]
            )
            return
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"{self._artifact_name}.pkl"
            path.write_bytes(pickle.dumps(data["predictor"], protocol=pickle.HIGHEST_PROTOCOL))
            info = mlflow.pyfunc.log_model(
                name=self._artifact_name,
                python_model=DiseasePredictorModel(top_k=int(data.get("top_k", 5))),
                artifacts={"predictor": path.as_posix()},
                code_paths=[PACKAGE_DIR.as_posix()],
                pip_requirements=list(data.get("pip_requirements") or []),
                signature=ModelSignature(
                    params=ParamSchema([ParamSpec("top_k", "long", int(data.get("top_k", 5)))])
                ),
                registered_model_name=self._name,
            )
        version = str(info.registered_model_version)
        client = MlflowClient()
        for key, value in (data.get("tags") or {}).items():
            client.set_model_version_tag(self._name, version, key, str(value))
        client.set_registered_model_alias(self._name, self._alias, version)
        mlflow.set_tag("registry.version", version)
        logger.info("packaging: registered %s version %s as @%s", self._name, version, self._alias)
