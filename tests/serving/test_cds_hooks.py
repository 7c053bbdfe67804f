"""CDS Hooks cards and discovery built from predictions, checked against the JSON
schemas written from the CDS Hooks 2.0 specification (tests/data/cds_hooks)."""

from __future__ import annotations

import json
import uuid

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from disease_pipeline.fhir.patient import MappedBundle
from disease_pipeline.serving import cds_hooks
from tests.conftest import PROJECT_ROOT

CDS_DATA = PROJECT_ROOT / "tests" / "data" / "cds_hooks"


def validator(name: str) -> Draft202012Validator:
    document = json.loads((CDS_DATA / f"{name}.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(document, format_checker=FormatChecker())


def entry(rank: int, code: str, name: str, probability: float, **extra) -> dict:
    category = "RARE" if code.startswith("OMIM:") else "COMMON"
    item = {"rank": rank, "code": code, "name": name, "category": category}
    return {**item, "probability": probability, "must_not_miss": False, "rule_out": None, **extra}


def prediction(
    level: str = "moderate", must_not_miss: bool = False, name: str = "Influenza"
) -> dict:
    advice = "Lactate and blood cultures" if must_not_miss else None
    tests = [
        {"loinc": "2524-7", "name": "Lactate", "kind": "lab", "text": "Lactate would separate"},
        {"loinc": "8480-6", "name": "Systolic blood pressure", "kind": "vital", "text": "x"},
    ]
    fever = {"text": "Fever: reported", "direction": "increases", "hpo_id": "HP:0001945"}
    feature = {"text": "Fever: reported", "direction": "increases", "feature": "hpo_HP_0001945"}
    return {
        "request_id": uuid.uuid4().hex,
        "model": {"name": "disease_pipeline", "version": "13"},
        "differential": [
            entry(1, "J11", name, 0.61),
            entry(2, "A41.9", "Sepsis", 0.2, must_not_miss=must_not_miss, rule_out=advice),
            entry(3, "OMIM:254090", "Bethlem myopathy", 0.01),
        ],
        "severity": {"level": level, "probabilities": {}},
        "explanation": {
            "target": f"{name} (J11)",
            "features": [feature],
            "findings": [fever],
            "recommended_tests": tests,
        },
        "input_notes": [],
    }


def card_of(pred: dict) -> dict:
    mapped = MappedBundle(None, patient_ref="Patient/p1")
    return cds_hooks.prediction_card(pred, mapped, "https://dp.test.invalid/ui/#request_id=x")


def test_discovery_follows_the_specification():
    assert list(validator("discovery").iter_errors(cds_hooks.discovery())) == []


@pytest.mark.parametrize(
    ("level", "must_not_miss", "indicator"),
    [
        ("low", False, "info"),
        ("moderate", False, "info"),
        ("moderate", True, "warning"),
        ("high", False, "warning"),
        ("critical", False, "critical"),
        ("critical", True, "critical"),
    ],
)
def test_the_indicator_rises_with_severity_and_must_not_miss(level, must_not_miss, indicator):
    card = card_of(prediction(level, must_not_miss))
    assert card["indicator"] == indicator
    assert list(validator("response").iter_errors({"cards": [card]})) == []


def test_the_card_carries_summary_detail_source_link_and_suggestions():
    pred = prediction("high", must_not_miss=True)
    card = card_of(pred)
    assert card["uuid"].replace("-", "") == pred["request_id"]
    assert card["summary"] == "Most likely: Influenza (61%); severity high; 1 must-not-miss"
    assert "Sepsis (A41.9, COMMON): 20.0% — **must not miss**" in card["detail"]
    assert "rule out: Lactate and blood cultures" in card["detail"]
    assert card["detail"].count("Fever: reported (increases)") == 1
    assert "- Bethlem myopathy (OMIM:254090), rank 3: 1.0%" in card["detail"]
    assert card["source"]["label"] == "disease_pipeline model, version 13"
    assert card["links"][0]["url"].startswith("https://dp.test.invalid/ui/")
    (suggestion,) = card["suggestions"]  # labs only: a vital is measured, not ordered
    request = suggestion["actions"][0]["resource"]
    assert request["code"]["coding"][0]["code"] == "2524-7"
    assert request["subject"] == {"reference": "Patient/p1"}


def test_the_summary_stays_within_140_characters():
    card = card_of(prediction("critical", True, name="A very long disease name " * 12))
    assert len(card["summary"]) <= 140
    assert card["summary"].endswith("; severity critical; 1 must-not-miss")


def test_hook_requests_are_checked():
    example = json.loads((CDS_DATA / "patient-view-request.json").read_text())
    assert cds_hooks.hook_problem(example) is None
    assert cds_hooks.hook_problem({**example, "hook": "order-sign"})[0] == 400
    assert cds_hooks.hook_problem({**example, "context": {}})[0] == 400
    no_prefetch = json.loads((CDS_DATA / "patient-view-no-prefetch.json").read_text())
    assert cds_hooks.hook_problem(no_prefetch)[0] == 412


def test_the_prefetch_becomes_one_bundle_without_search_outcomes():
    example = json.loads((CDS_DATA / "patient-view-request.json").read_text())
    bundle = cds_hooks.prefetch_bundle(example)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["Patient", "Condition", "Observation", "Observation", "Observation"]
    # a malformed search element is no outcome: its resource is kept for validation
    entry = example["prefetch"]["observations"]["entry"][0]
    entry["search"] = "match"
    kept = cds_hooks.prefetch_bundle(example)
    assert [e["resource"]["resourceType"] for e in kept["entry"]] == kinds


def test_refusal_cards_name_the_problems():
    card = cds_hooks.refusal_card(["Observation/o1: Observation.valueQuantity.code: bad unit"])
    assert card["indicator"] == "info" and "Observation/o1" in card["detail"]
    assert list(validator("response").iter_errors({"cards": [card]})) == []
