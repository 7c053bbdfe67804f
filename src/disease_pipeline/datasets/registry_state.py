"""The MLflow Model Registry's state for one registered model, as a read-only dataset.

``load`` returns, for each alias asked for, the version it points at with the version's
creation time and tags (``None`` when the alias is not set, or the model is not
registered at all). Nodes then decide from plain data (no MLflow calls inside nodes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from disease_pipeline.pipelines.retrain.promotion import alias_absent


def version_state(client: MlflowClient, name: str, alias: str) -> dict[str, Any] | None:
    """``{version, created_at (ISO, UTC), run_id, tags}`` of ``name@alias``, or None."""
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException as error:
        if alias_absent(error):
            return None
        raise
    created = datetime.fromtimestamp(int(version.creation_timestamp) / 1000.0, tz=UTC)
    return {
        "version": str(version.version),
        "created_at": created.isoformat(),
        "run_id": version.run_id,
        "tags": dict(version.tags or {}),
    }


class RegistryStateDataset(AbstractDataset[None, dict[str, Any]]):
    """``{"registered_model_name", "aliases": {alias: state | None}}`` of the registry.

    Example:
        ```yaml
        registry_state:
          type: disease_pipeline.datasets.registry_state.RegistryStateDataset
          registered_model_name: disease_pipeline
          aliases: [champion, challenger]
        ```
    """

    def __init__(
        self,
        *,
        registered_model_name: str,
        aliases: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if not registered_model_name:
            raise ValueError("RegistryStateDataset: 'registered_model_name' must be set")
        self._name = registered_model_name
        self._aliases = list(aliases or ["champion", "challenger"])
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"registered_model_name": self._name, "aliases": self._aliases}

    def load(self) -> dict[str, Any]:
        """The state of every configured alias (read from the active tracking URI)."""
        client = MlflowClient()
        return {
            "registered_model_name": self._name,
            "aliases": {alias: version_state(client, self._name, alias) for alias in self._aliases},
        }

    def save(self, data: None) -> None:
        raise DatasetError("RegistryStateDataset is read-only: aliases move through promotion")
