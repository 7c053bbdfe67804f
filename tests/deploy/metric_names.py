"""Metric names the service and the monitor export, and the names a PromQL text uses."""

from __future__ import annotations

import contextlib
import re

#: BentoML's own request metrics (namespace ``bentoml_service``); checked against a real
#: ``/metrics`` by tests/deploy/test_prometheus_server.py
BENTOML_METRICS = {
    "bentoml_service_request_total",
    "bentoml_service_request_duration_seconds_bucket",
    "bentoml_service_request_in_progress",
}
SUFFIXES = ("", "_total", "_bucket", "_count", "_sum")
_NAME = re.compile(r"\b((?:disease|bentoml)_[a-zA-Z0-9_]+|up)\b")


def exported_names(tmp_path) -> set[str]:
    """Every sample name of the service's metrics, the monitor gauges and BentoML's."""
    from prometheus_client import REGISTRY

    from disease_pipeline.serving.metrics import service_metrics
    from disease_pipeline.serving.monitor_gauges import MonitorGauges

    service_metrics()
    with contextlib.suppress(ValueError):  # already registered in this process
        MonitorGauges.create(tmp_path / "summary.json")
    families = {family.name for family in REGISTRY.collect() if family.name.startswith("disease_")}
    return {f + s for f in families for s in SUFFIXES} | BENTOML_METRICS | {"up"}


def used_names(promql: str) -> set[str]:
    """The metric names a PromQL expression reads (not its label names)."""
    without_labels = re.sub(r"\{[^}]*\}", "", promql)
    without_by = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", without_labels)
    return set(_NAME.findall(without_by))
