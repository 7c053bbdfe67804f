"""What the service starts for production monitoring (docs/monitoring.md): the
buffered prediction log and the gauges of the last monitoring report."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from disease_pipeline.serving.monitor_gauges import MonitorGauges
from disease_pipeline.serving.prediction_log import PredictionLogSettings, PredictionLogWriter

logger = logging.getLogger(__name__)


def start_monitoring(config: Any, key: bytes) -> PredictionLogWriter | None:
    """Start the prediction-log writer (None when ``prediction_log.enabled`` is false)
    and, with ``monitoring_summary`` set, the thread exporting its figures as gauges."""
    if config.monitoring_summary is not None:
        MonitorGauges.create(config.monitoring_summary).watch()
    settings = PredictionLogSettings.from_dict(config.prediction_log, config.feedback_warehouse)
    if not settings.enabled:
        logger.warning("prediction log disabled (serving.prediction_log.enabled: false)")
        return None
    where = "Snowflake" if settings.backend == "snowflake" else settings.warehouse
    logger.info("prediction log: table %s of %s", settings.table, where)
    return PredictionLogWriter(settings, key)


def start_shadow_log(config: Any, key: bytes, model: dict[str, Any]) -> PredictionLogWriter:
    """The writer of the shadow challenger's outputs: the prediction log's settings with
    the table ``serving.challenger.shadow_table`` and rows of variant ``challenger``.

    Raises:
        ValueError: the prediction log is disabled (shadow outputs would go nowhere).
    """
    settings = PredictionLogSettings.from_dict(config.prediction_log, config.feedback_warehouse)
    if not settings.enabled:
        raise ValueError(
            "serving.challenger.mode shadow needs serving.prediction_log.enabled: the "
            "challenger's outputs are logged beside the champion's"
        )
    shadow = dataclasses.replace(settings, table=config.challenger.shadow_table)
    logger.info("shadow challenger log: table %s", shadow.table)
    return PredictionLogWriter(shadow, key, model, variant="challenger")
