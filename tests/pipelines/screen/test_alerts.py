"""Alert rules, de-duplication, states and the webhook (a real local HTTP receiver)."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.io import DatasetError

from disease_pipeline.core.alerts import ALERT_COLUMNS, next_state
from disease_pipeline.datasets.webhook import WebhookDataset
from disease_pipeline.pipelines.screen.alerts import raise_alerts, webhook_payloads
from disease_pipeline.pipelines.screen.nodes import must_not_miss_codes

from .conftest import Receiver

RULES = {
    "severity": {"threshold": 0.5},
    "rare_candidate": {"threshold": 0.2, "top": 3},
    "time_critical": {"codes": None},
}


def row(encounter: str, patient: str, day: str, **values) -> dict:
    """A screening row of a patient with nothing alarming unless ``values`` say so."""
    base = {
        "encounter_id": encounter,
        "patient_id": patient,
        "encounter_start": pd.Timestamp(day, tz="UTC"),
        "top1_code": "J06.9",
        "top1_name": "Common cold",
        "top1_category": "COMMON",
        "top1_probability": 0.6,
        "top2_code": "J18.9",
        "top2_category": "COMMON",
        "top3_code": "RARE",
        "top3_category": "RARE",
        "p_rare": 0.05,
        "severity_level": "low",
        "p_high_or_critical": 0.1,
        "error": None,
        "screen_run": "run1",
        "model_version": "sha256:abc",
        "data_version": "d1",
    }
    return base | values


def screening(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def test_each_rule_fires_on_its_condition_only():
    rows = screening(
        row("e1", "p1", "2024-01-01"),
        row("e2", "p2", "2024-01-01", p_high_or_critical=0.7, severity_level="high"),
        row("e3", "p3", "2024-01-01", p_rare=0.3, top2_code="ORPHA:558", top2_category="RARE"),
        row("e4", "p4", "2024-01-01", p_rare=0.1, top2_code="ORPHA:558", top2_category="RARE"),
        row("e5", "p5", "2024-01-01", top1_code="A41.9", top1_name="Sepsis"),
        row("e6", "p6", "2024-01-01", p_high_or_critical=0.9, error="encounter e6: refused"),
    )
    table, new = raise_alerts(rows, None, None, ["A41.9", "I21"], {"rules": RULES})
    fired = dict(zip(new["encounter_id"], new["rule"], strict=True))
    assert fired == {"e2": "severity", "e3": "rare_candidate", "e5": "time_critical"}
    assert list(table.columns) == list(ALERT_COLUMNS) and (table["state"] == "new").all()
    rare = new.set_index("rule").loc["rare_candidate"]
    assert rare["codes"] == "ORPHA:558|RARE" and "P(rare) 0.300 >= 0.200" in rare["reason"]
    assert new.set_index("rule").loc["time_critical", "priority"] == "critical"


def test_thresholds_default_to_the_evaluation_operating_points():
    rows = screening(row("e1", "p1", "2024-01-01", p_high_or_critical=0.04))
    rules = {"severity": {"threshold": None}}
    _, new = raise_alerts(
        rows, None, {"p_high_or_critical": 0.03, "p_rare": 0.08}, [], {"rules": rules}
    )
    assert list(new["rule"]) == ["severity"]
    with pytest.raises(ValueError, match=r"rules\.severity\.threshold: null needs"):
        raise_alerts(rows, None, None, [], {"rules": rules})
    with pytest.raises(ValueError, match=r"unknown rule\(s\) \['sevrity'\]"):
        raise_alerts(rows, None, None, [], {"rules": {"sevrity": {}}})


def test_an_alert_is_not_repeated_within_the_period_per_patient_and_rule():
    hot = {"p_high_or_critical": 0.8}
    first = screening(row("e1", "p1", "2024-01-01", **hot), row("e2", "p1", "2024-01-03", **hot))
    table, new = raise_alerts(first, None, None, [], {"rules": RULES, "dedupe_days": 7})
    assert list(new["encounter_id"]) == ["e1"]
    later = screening(
        row("e3", "p1", "2024-01-06", **hot),  # within 7 days of e1: suppressed
        row("e4", "p1", "2024-01-09", **hot),  # 8 days after e1: a new alert
        row("e5", "p2", "2024-01-06", **hot),  # another patient
        row("e6", "p1", "2024-01-06", top1_code="I21", top1_name="MI"),  # another rule
    )
    table, new = raise_alerts(later, table, None, ["I21"], {"rules": RULES, "dedupe_days": 7})
    assert sorted(new["encounter_id"]) == ["e4", "e5", "e6"]
    assert len(table) == 4
    again, new = raise_alerts(later, table, None, ["I21"], {"rules": RULES, "dedupe_days": 7})
    assert new.empty and len(again) == 4  # re-screening the same encounters adds nothing


def test_alert_states_move_forward_only():
    assert next_state("new", "acknowledge") == "acknowledged"
    assert next_state("acknowledged", "close") == "closed"
    assert next_state("new", "close") == "closed"
    with pytest.raises(ValueError, match="cannot acknowledge an alert that is closed"):
        next_state("closed", "acknowledge")
    with pytest.raises(ValueError, match="unknown alert action 'delete'"):
        next_state("new", "delete")


def test_webhook_delivers_batches_to_a_real_receiver_and_retries_a_5xx():
    rows = screening(
        *[row(f"e{i}", f"p{i}", "2024-01-01", p_high_or_critical=0.9) for i in range(5)]
    )
    _, new = raise_alerts(rows, None, None, [], {"rules": RULES})
    messages = webhook_payloads(new)
    with Receiver(statuses=[503]) as receiver:
        WebhookDataset(url=receiver.url, batch_size=2).save(messages)
    assert [len(b["alerts"]) for b in receiver.bodies] == [2, 2, 1]
    assert [a["alert_id"] for a in receiver.alerts] == list(new["alert_id"])
    assert receiver.alerts[0]["rule"] == "severity" and receiver.alerts[0]["state"] == "new"


def test_webhook_refusal_fails_loudly_naming_the_url():
    messages = [{"alert_id": "a1"}]
    refused = pytest.raises(DatasetError, match=r"1 alert\(s\) not delivered \(HTTP 400\)")
    with Receiver(statuses=[400]) as receiver, refused:
        WebhookDataset(url=receiver.url, retries=2).save(messages)
    with pytest.raises(DatasetError, match="must start with http"):
        WebhookDataset(url="ftp://example.org/hook")


def test_the_catalogue_names_the_time_critical_diseases():
    codes = must_not_miss_codes()
    assert {"A41.9", "I21"} <= set(codes)
    assert "J06.9" not in codes
