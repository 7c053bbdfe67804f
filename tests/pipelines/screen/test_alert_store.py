"""Clinicians' view of the alerts: the screen pipeline's alerts table (a real DuckDB
file) listed and moved new → acknowledged → closed by ``serving.alerts.AlertStore``."""

from __future__ import annotations

import pandas as pd
import pytest

from disease_pipeline.datasets.warehouse import WarehouseTableDataset
from disease_pipeline.pipelines.screen.alerts import raise_alerts
from disease_pipeline.serving.alerts import AlertStore

from .test_alerts import RULES, row, screening


@pytest.fixture
def store(tmp_path) -> AlertStore:
    rows = screening(
        row("e1", "p1", "2024-01-01", p_high_or_critical=0.9, severity_level="critical"),
        row("e2", "p2", "2024-01-03", top1_code="A41.9", top1_name="Sepsis"),
        row("e3", "p3", "2024-01-02", p_high_or_critical=0.7),
    )
    table, _ = raise_alerts(rows, None, None, ["A41.9"], {"rules": RULES})
    path = tmp_path / "warehouse.duckdb"
    WarehouseTableDataset(table="alerts", filepath=str(path)).save(table)
    return AlertStore(path)


def test_alerts_are_listed_critical_first_then_newest(store):
    listed = store.list_alerts()
    assert [a["encounter_id"] for a in listed] == ["e2", "e3", "e1"]
    assert listed[0]["rule"] == "time_critical" and listed[0]["state"] == "new"
    assert pd.Timestamp(listed[0]["encounter_start"]) == pd.Timestamp("2024-01-03", tz="UTC")
    assert store.list_alerts(limit=1)[0]["encounter_id"] == "e2"


def test_acknowledge_then_close_records_who_and_when(store):
    alert = store.list_alerts()[0]["alert_id"]
    acknowledged = store.update(alert, "acknowledge", "dr-a")
    assert acknowledged["state"] == "acknowledged" and acknowledged["acknowledged_by"] == "dr-a"
    assert acknowledged["acknowledged_at"] is not None and acknowledged["closed_by"] is None
    assert [a["alert_id"] for a in store.list_alerts(state="acknowledged")] == [alert]
    closed = store.update(alert, "close", "dr-b")
    assert closed["state"] == "closed" and closed["closed_by"] == "dr-b"
    assert closed["acknowledged_by"] == "dr-a"
    assert len(store.list_alerts(state="new")) == 2


def test_bad_requests_name_the_problem(store, tmp_path):
    alert = store.list_alerts()[0]["alert_id"]
    store.update(alert, "close", "dr-a")
    with pytest.raises(ValueError, match="cannot acknowledge an alert that is closed"):
        store.update(alert, "acknowledge", "dr-a")
    with pytest.raises(KeyError, match="no alert 'nope'"):
        store.update("nope", "close", "dr-a")
    with pytest.raises(ValueError, match=r"state: 'open' is not one of"):
        store.list_alerts(state="open")
    assert AlertStore(tmp_path / "absent.duckdb").list_alerts() == []
