"""Screening alerts over HTTP on the real service: a clinician lists the alerts the
screen pipeline wrote to the warehouse and acknowledges then closes one; each call is in
the audit trail; roles without the permission and bad moves are refused."""

from __future__ import annotations

import json
import time

import pytest

from disease_pipeline.datasets.warehouse import WarehouseTableDataset
from disease_pipeline.pipelines.screen.alerts import raise_alerts
from tests.pipelines.screen.test_alerts import RULES, row, screening
from tests.serving.conftest import client, start_service

pytestmark = [pytest.mark.slow, pytest.mark.server]


def write_alerts(warehouse) -> None:
    """The three screening alerts, all ``new``, as the warehouse's ``alerts`` table
    (replacing what an earlier test acknowledged or closed); retried while the service
    holds the file."""
    rows = screening(
        row("e1", "p1", "2024-01-01", p_high_or_critical=0.9, severity_level="critical"),
        row("e2", "p2", "2024-01-03", top1_code="A41.9", top1_name="Sepsis"),
        row("e3", "p3", "2024-01-02", p_high_or_critical=0.7),
    )
    table, _ = raise_alerts(rows, None, None, ["A41.9"], {"rules": RULES})
    for attempt in range(40):
        try:
            WarehouseTableDataset(table="alerts", filepath=str(warehouse)).save(table)
            return
        except Exception:
            if attempt == 39:
                raise
            time.sleep(0.25)


@pytest.fixture(scope="module")
def started_alerts_service(trained_store, tokens, tmp_path_factory):
    """A private service whose warehouse holds three screening alerts (started once per
    module: a start loads the model)."""
    folder = tmp_path_factory.mktemp("alerts_service")
    write_alerts(folder / "warehouse.duckdb")
    server = start_service(folder, tokens, private=True)
    yield server, folder
    server.stop()


@pytest.fixture
def alerts_service(started_alerts_service):
    """The module's service with its three alerts back to ``new`` before each test (a
    test moves them, in any order), and the audit-trail entries of this test alone."""
    server, folder = started_alerts_service
    write_alerts(folder / "warehouse.duckdb")
    trail = folder / "audit_log.jsonl"
    seen = len(trail.read_text().splitlines()) if trail.exists() else 0
    yield server, lambda: [json.loads(line) for line in trail.read_text().splitlines()[seen:]]


def test_clinician_lists_acknowledges_and_closes_an_alert(alerts_service, tokens):
    server, audit_entries = alerts_service
    with client(server, tokens["clinician"]) as http:
        listed = http.get("/alerts").json()["alerts"]
        assert [a["encounter_id"] for a in listed] == ["e2", "e3", "e1"]
        alert = listed[0]["alert_id"]
        done = http.post("/alerts/update", json={"alert_id": alert, "action": "acknowledge"})
        assert done.status_code == 200 and done.json()["state"] == "acknowledged"
        assert done.json()["acknowledged_by"]
        again = http.post("/alerts/update", json={"alert_id": alert, "action": "acknowledge"})
        assert again.status_code == 409 and "acknowledged" in again.json()["error"]
        closed = http.post("/alerts/update", json={"alert_id": alert, "action": "close"})
        assert closed.json()["state"] == "closed"
        assert [a["alert_id"] for a in http.get("/alerts?state=closed").json()["alerts"]] == [alert]
        missing = http.post("/alerts/update", json={"alert_id": "0" * 20, "action": "close"})
        assert missing.status_code == 404
        bad = http.get("/alerts?state=open")
        assert bad.status_code == 422 and "state" in bad.json()["error"]
    entries = audit_entries()  # this test's
    events = [e["event"] for e in entries if e["event"].startswith("alert")]
    assert events.count("alert_update") == 4 and events.count("alerts_view") >= 2
    assert "alert_update_refused" in events
    alert_entries = [e for e in entries if e["event"].startswith("alert")]
    assert not any("patient" in json.dumps(e) for e in alert_entries)  # no patient id


def test_alerts_need_a_token(alerts_service):
    server, _ = alerts_service
    with client(server, None) as http:
        assert http.get("/alerts").status_code == 401


@pytest.mark.browser
def test_a_clinician_acknowledges_an_alert_on_the_page(alerts_service, tokens):
    from playwright.sync_api import expect

    from tests.serving.test_clinician_page import clinician_page

    server, _ = alerts_service
    with clinician_page(server.url, tokens["clinician"]) as page:
        page.select_option("#alerts-state", "")
        page.click("#alerts-load")
        rows = page.locator("#alerts-table tbody tr")
        expect(rows.first).to_be_visible()
        new_rows = page.locator("#alerts-table tbody tr", has_text="new")
        count = new_rows.count()
        assert count >= 1
        new_rows.first.locator("button[data-action='acknowledge']").click()
        expect(page.locator("#alerts-status")).to_contain_text("alert")
        page.select_option("#alerts-state", "new")
        page.click("#alerts-load")
        expect(page.locator("#alerts-status")).to_have_text(f"{count - 1} alert(s)")
