"""What the service starts for production monitoring (docs/monitoring.md): the
buffered prediction log and the gauges of the last monitoring report."""

from __future__ import annotations

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
