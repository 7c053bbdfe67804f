"""Registry cases through the served path, beside the rare model alone."""

from __future__ import annotations

import pandas as pd
import pytest

from disease_pipeline.pipelines.evaluation.registry_check import (
    check_registry_cases,
    registry_cases_sample,
)


class _RareModel:
    """Ranks OMIM:1 first for every patient."""

    def rank_patient(self, present, excluded=None, age=None, sex="unknown", top_k=10):
        return [{"disease_id": "OMIM:1"}, {"disease_id": "OMIM:3"}][:top_k]


class _Predictor:
    """P(rare) 0.9 when a patient has two present terms or more, else 0.1; the served
    differential lists OMIM:1 only when P(rare) is high (a gate that hides it otherwise)."""

    rare_model = _RareModel()

    def predict_tables(self, tables, top_k=10, explain=True):
        symptoms = tables["symptoms"]
        out = []
        for encounter_id in tables["encounters"]["encounter_id"]:
            mask = (symptoms["encounter_id"] == encounter_id) & symptoms["present"]
            p_rare = 0.9 if mask.sum() >= 2 else 0.1
            codes = ["OMIM:1", "J06.9"] if p_rare > 0.5 else ["J06.9", "K21.9"]
            out.append({"p_rare": p_rare, "differential": [{"code": c} for c in codes]})
        return out


def _registry() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "encounter_id": ["a", "b", "c", "d"],
            "label_disease": ["OMIM:1", "OMIM:1", "OMIM:2", "OMIM:1"],
            "present_terms": [
                ["HP:0001250", "HP:0001263"],
                ["HP:0001250"],
                ["HP:0001250", "HP:0000252"],
                ["HP:0001263"],
            ],
            "excluded_terms": [[], ["HP:0000252"], [], []],
            "age": [4.0, None, 30.0, float("nan")],
            "sex": ["male", None, "female", "female"],
        }
    )


PARAMS = {"seed": 0, "registry_check": {"enabled": True, "threshold": 0.5, "top_k": 10}}


def test_served_top_k_is_reported_beside_the_rare_model_alone():
    metrics = check_registry_cases(_Predictor(), _registry(), PARAMS)
    assert metrics["registry_served.cases"] == 4
    assert metrics["registry_served.share_p_rare_at_least_threshold"] == pytest.approx(0.5)
    # served: a (hit), b (hidden by the gate), c (wrong disease), d (hidden) -> 1/4
    assert metrics["registry_served.top10"] == pytest.approx(0.25)
    # alone: a, b, d ranked -> 3/4; the gap names what the gate costs real patients
    assert metrics["registry_served.rare_model_alone_top10"] == pytest.approx(0.75)
    assert metrics["registry_served.served_minus_rare_model_top10"] == pytest.approx(-0.5)
    # a (4 years) and c (30) have an age, b and d none; the stand-in gate says rare for a
    # and c only, so the split shows the gap a gate reading the age would leave
    assert metrics["registry_served.cases_age_recorded"] == 2
    assert metrics["registry_served.cases_age_unknown"] == 2
    assert metrics["registry_served.share_p_rare_at_least_threshold_age_recorded"] == 1.0
    assert metrics["registry_served.share_p_rare_at_least_threshold_age_unknown"] == 0.0


def test_unknown_age_and_sex_stay_unknown_and_the_sample_is_bounded():
    cases = registry_cases_sample(_registry(), max_cases=None, seed=0)
    assert [c.age for c in cases] == [4.0, None, 30.0, None]
    assert cases[1].sex == "unknown"
    assert len(registry_cases_sample(_registry(), max_cases=2, seed=0)) == 2


def test_disabled_or_empty_registry_reports_nothing():
    off = {"registry_check": {"enabled": False}}
    assert check_registry_cases(_Predictor(), _registry(), off) == {}
    assert check_registry_cases(_Predictor(), _registry().iloc[:0], PARAMS) == {}


def test_diseases_whose_cases_trained_the_gate_are_left_out():
    from disease_pipeline.rare.gate_check import in_gate_share

    registry = pd.concat([_registry()] * 10, ignore_index=True)
    registry["label_disease"] = [f"OMIM:{700000 + i}" for i in range(len(registry))]
    unseen = sum(not in_gate_share(d, 0.5) for d in registry["label_disease"])
    assert 0 < unseen < len(registry)
    gate_rows = {"enabled": True, "registry_share": 0.5}
    metrics = check_registry_cases(_Predictor(), registry, PARAMS, gate_rows)
    assert metrics["registry_served.cases"] == unseen
    off = check_registry_cases(_Predictor(), registry, PARAMS, {"enabled": False})
    assert off["registry_served.cases"] == len(registry)
