"""P(rare) and the served differential on registry cases, through any predictor."""

from __future__ import annotations

import pytest

from disease_pipeline.rare.cases import Case
from disease_pipeline.rare.gate_check import case_record, registry_gate_check


class _Predictor:
    """P(rare) = 0.2 per present term (capped at 1); the differential lists OMIM:1 first."""

    def __init__(self) -> None:
        self.seen = []

    def predict_tables(self, tables, top_k=10, explain=True):
        self.seen.append(tables)
        symptoms = tables["symptoms"]
        out = []
        for encounter_id in tables["encounters"]["encounter_id"]:
            present = symptoms[(symptoms["encounter_id"] == encounter_id) & symptoms["present"]]
            out.append(
                {
                    "p_rare": min(1.0, 0.2 * len(present)),
                    "differential": [{"code": "OMIM:1"}, {"code": "J18.9"}][:top_k],
                }
            )
        return out


def _case(case_id, disease, present, excluded=(), *, age=None, sex="unknown"):
    return Case(case_id, disease, list(present), list(excluded), age=age, sex=sex)


def test_share_of_p_rare_and_served_hits_are_counted_per_case():
    cases = [
        _case("a", "OMIM:1", ["HP:0001250", "HP:0001263", "HP:0000252"]),  # p 0.6, hit
        _case("b", "OMIM:2", ["HP:0001250"], ["HP:0000252"], age=4.0, sex="male"),  # p 0.2
        _case("c", "OMIM:2", []),  # no present term: skipped
    ]
    predictor = _Predictor()
    result = registry_gate_check(predictor, cases, threshold=0.5, top_k=1)
    assert result["cases"] == 2
    assert result["share_p_rare_at_least"] == pytest.approx(0.5)
    assert result["differential_top_k"] == pytest.approx(0.5)
    symptoms = predictor.seen[0]["symptoms"]
    assert sorted(symptoms.loc[~symptoms["present"], "hpo_id"]) == ["HP:0000252"]


def test_a_case_becomes_the_request_a_clinician_would_send():
    record = case_record(_case("x", "OMIM:1", ["HP:0001250"], ["HP:0000252"], sex="weird"))
    assert record.age is None and record.sex == "unknown"
    assert [(s.code, s.present) for s in record.symptoms] == [
        ("HP:0001250", True),
        ("HP:0000252", False),
    ]
