"""The Kedro dataset that carries out the retrain pipeline's promotion request.

Saving ``{"promote": True, "reason": …}`` moves the registry's ``champion`` alias to the
``challenger`` version (``pipelines/retrain/promotion.py``: model-version tags, the
replaced champion kept as ``previous_champion``) and appends the move to the service's
audit trail when ``serving_config`` names one; saving ``{"promote": False, …}`` moves
nothing and tags the challenger with the reason it was kept out. Both are tagged on the
active MLflow run.
"""

from __future__ import annotations

import logging
from typing import Any

import mlflow
from kedro.io.core import AbstractDataset, DatasetError
from mlflow.tracking import MlflowClient

from disease_pipeline.pipelines.retrain.promotion import CHALLENGER, alias_version, promote

logger = logging.getLogger(__name__)


def open_audit_trail(serving_config: str | None) -> Any | None:
    """The service's audit trail (path and key from the serving configuration), or None."""
    if not serving_config:
        return None
    from disease_pipeline.serving.audit import AuditLog
    from disease_pipeline.serving.config import audit_key, load_config

    config = load_config(serving_config)
    return AuditLog(config.audit_log, key=audit_key(config))


class PromotionDataset(AbstractDataset[dict[str, Any], None]):
    """Write-only: promote ``<name>@challenger`` to ``@champion`` when asked to.

    Example:
        ```yaml
        registry_promotion:
          type: disease_pipeline.datasets.promotion.PromotionDataset
          registered_model_name: disease_pipeline
          serving_config: conf/base/serving.yml
        ```
    """

    def __init__(
        self,
        *,
        registered_model_name: str,
        serving_config: str | None = None,
        user: str = "retrain-pipeline",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._name = registered_model_name
        self._serving_config = serving_config
        self._user = user
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"registered_model_name": self._name, "serving_config": self._serving_config}

    def load(self) -> None:
        raise DatasetError("PromotionDataset is write-only")

    def save(self, data: dict[str, Any]) -> None:
        """Promote or keep out the challenger, as ``data['promote']`` says."""
        if "promote" not in data or "reason" not in data:
            raise DatasetError("PromotionDataset.save: request needs 'promote' and 'reason'")
        client = MlflowClient()
        reason = str(data["reason"])
        challenger = alias_version(client, self._name, CHALLENGER)
        if mlflow.active_run() is not None:
            mlflow.set_tag("promotion.decision", "promote" if data["promote"] else "keep")
            mlflow.set_tag("promotion.reason", reason[:5000])
        if not data["promote"]:
            if challenger is not None:
                client.set_model_version_tag(
                    self._name, challenger, "promotion.kept_out", reason[:5000]
                )
            logger.info("retrain: champion kept (%s)", reason)
            return
        audit = open_audit_trail(self._serving_config)
        try:
            record = promote(client, self._name, reason=reason, user=self._user, audit=audit)
        finally:
            if audit is not None:
                audit.close()
        logger.info("retrain: version %s promoted to champion (%s)", record["champion"], reason)
