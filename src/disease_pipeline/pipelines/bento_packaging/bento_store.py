"""The BentoML model store as a Kedro dataset.

``save`` takes the spec of :func:`~.nodes.bento_import_spec`, resolves
``models:/<registered_model_name>@<alias>`` in the MLflow registry and imports that
version with ``bentoml.mlflow.import_model`` — unless the store already holds it —
with labels (``registered_model``, ``mlflow_version``, ``alias``, ``data_version``) and
metadata (run id, training date, evaluation metrics) for ``/model_info``. When the gate
rejected the model and no champion was ever registered there is nothing to import: a
warning, not an error (the store keeps what it had). ``load`` describes the newest
stored model of that name.

Example:
    ```yaml
    registry_bento_model:
      type: disease_pipeline.pipelines.bento_packaging.bento_store.BentoModelStoreDataset
      bentoml_home: null   # null: $BENTOML_HOME or ~/bentoml
    ```
"""

from __future__ import annotations

import contextlib
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

logger = logging.getLogger(__name__)
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")


@contextlib.contextmanager
def model_store(bentoml_home: str | None):
    """Point BentoML's model store at ``<bentoml_home>/models`` inside the block."""
    if not bentoml_home:
        yield
        return
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.models import ModelStore

    folder = Path(bentoml_home) / "models"
    folder.mkdir(parents=True, exist_ok=True)
    with BentoMLContainer.model_store.patch(ModelStore(folder.as_posix())):
        yield


def stored_versions(name: str) -> list[Any]:
    """BentoML models called ``name``, newest first (empty when there are none)."""
    import bentoml

    models = [model for model in bentoml.models.list() if model.tag.name == name]
    return sorted(models, key=lambda model: model.info.creation_time, reverse=True)


class BentoModelStoreDataset(AbstractDataset[dict[str, Any], dict[str, Any]]):
    """Imports the MLflow champion into the BentoML model store (see module doc)."""

    def __init__(
        self, *, bentoml_home: str | None = None, metadata: dict[str, Any] | None = None
    ) -> None:
        self._home = bentoml_home
        self._last: dict[str, Any] = {}
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"bentoml_home": self._home or os.environ.get("BENTOML_HOME", "~/bentoml")}

    def load(self) -> dict[str, Any]:
        """Tag, labels and metadata of the newest stored model of the last saved name."""
        name = self._last.get("bento_model_name", "disease_pipeline")
        with model_store(self._home):
            models = stored_versions(name)
        if not models:
            raise DatasetError(f"no BentoML model named {name!r} in the store")
        newest = models[0]
        return {
            "tag": str(newest.tag),
            "labels": dict(newest.info.labels),
            "metadata": dict(newest.info.metadata),
        }

    def save(self, data: dict[str, Any]) -> None:
        """Import the registered champion unless it is already the newest stored model
        (the one the service serves as ``:latest``)."""
        import bentoml
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        for key in ("bento_model_name", "registered_model_name", "alias"):
            if key not in data:
                raise DatasetError(f"BentoModelStoreDataset.save: spec lacks '{key}'")
        name, alias = data["registered_model_name"], data["alias"]
        client = MlflowClient()
        try:
            version = client.get_model_version_by_alias(name, alias)
        except MlflowException as error:
            if data.get("approved"):
                raise DatasetError(
                    f"the gate approved the model but models:/{name}@{alias} is not "
                    f"registered (run the packaging pipeline first): {error}"
                ) from error
            logger.warning(
                "the gate rejected the model and no models:/%s@%s exists: nothing to import "
                "into the BentoML store",
                name,
                alias,
            )
            return
        run = client.get_run(version.run_id)
        labels = {
            "registered_model": name,
            "mlflow_version": str(version.version),
            "alias": alias,
            "data_version": str(version.tags.get("data_version", "unknown")),
        }
        self._last = dict(data)
        with model_store(self._home):
            # the service serves ``<name>:latest``, the newest import: only the newest
            # counts as already there; an older copy (the champion a rollback moved the
            # alias back to) is imported again so that it becomes the served one
            newest = next(iter(stored_versions(data["bento_model_name"])), None)
            if newest is not None:
                held = {
                    k: newest.info.labels.get(k) for k in ("registered_model", "mlflow_version")
                }
                if held == {k: labels[k] for k in held} and (
                    newest.info.metadata.get("mlflow_run_id") == version.run_id
                ):
                    logger.info("BentoML store already serves %s (%s@%s)", newest.tag, name, alias)
                    return
            stored = bentoml.mlflow.import_model(
                data["bento_model_name"],
                model_uri=f"models:/{name}/{version.version}",
                labels=labels,
                metadata={
                    "mlflow_run_id": version.run_id,
                    "model_uri": f"models:/{name}/{version.version}",
                    "training_date": datetime.fromtimestamp(
                        run.info.start_time / 1000, tz=UTC
                    ).isoformat(timespec="seconds"),
                    "metrics": {key: float(value) for key, value in run.data.metrics.items()},
                },
            )
        logger.info("imported %s@%s (version %s) as %s", name, alias, version.version, stored.tag)

    def _exists(self) -> bool:
        try:
            self.load()
        except DatasetError:
            return False
        return True
