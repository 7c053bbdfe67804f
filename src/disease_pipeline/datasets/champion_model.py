"""The Kedro dataset that logs, registers and promotes the champion MLflow model.

Saving an approved packaging candidate logs the predictor as ONE pyfunc model
(:class:`disease_pipeline.predictor.mlflow_model.DiseasePredictorModel`) in the active
MLflow run, registers a new version and points the ``champion`` alias at it; saving a
rejected candidate promotes nothing. Kept apart from the pyfunc so that loading the
model never imports Kedro.
"""

from __future__ import annotations

import logging
import pickle
import tempfile
from pathlib import Path
from typing import Any

import mlflow
from kedro.io.core import AbstractDataset, DatasetError
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ParamSchema, ParamSpec

from disease_pipeline.pipelines.retrain.promotion import alias_absent
from disease_pipeline.predictor.mlflow_model import DiseasePredictorModel

logger = logging.getLogger(__name__)

#: the package source shipped with the model (``code_paths``)
PACKAGE_DIR = Path(__file__).resolve().parents[1]


class ChampionModelDataset(AbstractDataset[dict[str, Any], Any]):
    """Registers an approved predictor in the MLflow Model Registry as ``<name>@<alias>``.

    ``save`` takes the packaging candidate ``{"approved", "predictor", "reason",
    "tags", "pip_requirements", "top_k"}``. ``load`` returns the current champion as a
    pyfunc model (``models:/<name>@<alias>``).

    Example:
        ```yaml
        registry_champion_model:
          type: disease_pipeline.datasets.champion_model.ChampionModelDataset
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
        # only "no such alias/model" means absent: a registry that cannot answer must not
        # read as "no champion yet" (retrain would then promote without a comparison)
        try:
            MlflowClient().get_model_version_by_alias(self._name, self._alias)
        except MlflowException as error:
            if alias_absent(error):
                return False
            raise DatasetError(f"the registry could not answer for {self.uri}: {error}") from error
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
