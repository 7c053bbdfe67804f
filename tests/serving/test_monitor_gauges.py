"""The monitoring summary's gauges (in-process prometheus_client, a private registry)."""

from __future__ import annotations

import json
import math
import os

from prometheus_client import CollectorRegistry, Gauge

from disease_pipeline.serving.monitor_gauges import MonitorGauges


def gauges(path) -> tuple[MonitorGauges, CollectorRegistry]:
    registry = CollectorRegistry()
    psi = Gauge("disease_monitor_feature_psi", "psi", ["feature"], registry=registry)
    drifted = Gauge("disease_monitor_feature_drifted", "flag", ["feature"], registry=registry)
    scalar = Gauge("disease_monitor_max_psi", "max", registry=registry)
    return MonitorGauges(path, {"drift.max_psi": scalar}, psi, drifted), registry


def write(path, top_psi: dict, drifted: list, stamp: int) -> None:
    summary = {"drift": {"max_psi": max(top_psi.values()), "top_psi": top_psi}}
    summary["drift"]["drifted_features"] = drifted
    path.write_text(json.dumps(summary))
    os.utime(path, (stamp, stamp))  # a new modification time: the gauges re-read it


def test_a_feature_that_left_the_report_stops_being_flagged(tmp_path):
    path = tmp_path / "summary.json"
    monitor, registry = gauges(path)
    write(path, {"age_years": 0.31, "temp": 0.05}, ["age_years"], 1_000)
    assert monitor.refresh()
    value = registry.get_sample_value
    assert value("disease_monitor_feature_drifted", {"feature": "age_years"}) == 1.0
    assert value("disease_monitor_feature_psi", {"feature": "age_years"}) == 0.31
    write(path, {"temp": 0.04, "heart_rate": 0.02}, [], 2_000)
    assert monitor.refresh()
    assert value("disease_monitor_feature_drifted", {"feature": "age_years"}) == 0.0
    assert math.isnan(value("disease_monitor_feature_psi", {"feature": "age_years"}))
    assert value("disease_monitor_feature_psi", {"feature": "heart_rate"}) == 0.02
    assert value("disease_monitor_max_psi") == 0.04
    assert not monitor.refresh()  # unchanged file: nothing re-read
