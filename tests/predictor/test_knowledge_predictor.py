"""The predictor anchored in knowledge: blend by modality, can't-miss diagnoses with their
rule-out test, severity that respects them, knowledge findings and recommended tests, and
"not reported" never worded as absent."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from disease_pipeline.knowledge.catalogue import load_lab_table
from disease_pipeline.predictor.feature_knowledge import knowledge_column, modality_pattern
from disease_pipeline.records import Measurement, PatientRecord, Symptom

CHEST_PAIN, DYSPNEA, FATIGUE = "HP:0100749", "HP:0002094", "HP:0012378"

#: classic red-flag presentations (symptoms only) → the can't-miss diagnosis to flag
RED_FLAGS = {
    "myocardial infarction": (58, "male", [CHEST_PAIN, DYSPNEA], "I21"),
    "pulmonary embolism": (45, "female", ["HP:0033771", DYSPNEA, "HP:0002105"], "I26"),
    "sepsis": (72, "male", ["HP:0001945", "HP:0001289", "HP:0002789", "HP:0025143"], "A41.9"),
    "appendicitis": (19, "male", ["HP:0002027", "HP:0002018", "HP:0002039", "HP:0001945"], "K35.8"),
    "diabetic ketoacidosis": (17, "female", ["HP:0000103", "HP:0001959", "HP:0002013"], "E10.1"),
    "stroke": (74, "male", ["HP:0001269", "HP:0001260", "HP:0010628"], "I63.9"),
}


def symptoms_only(age, sex, terms, absent=()) -> PatientRecord:
    return PatientRecord(
        age=age,
        sex=sex,
        symptoms=[Symptom(code=t) for t in terms]
        + [Symptom(code=t, present=False) for t in absent],
    )


def test_the_knowledge_block_and_blend_are_in_the_bundle(knowledge_predictor):
    blend = knowledge_predictor.knowledge_blend
    assert blend is not None and set(blend.weights) == {"symptoms_only", "vitals", "labs", "all"}
    assert knowledge_column("I21") in knowledge_predictor.feature_names
    assert "measured_labs" in knowledge_predictor.feature_names


def test_catalogue_diseases_the_model_never_saw_can_be_ranked(knowledge_predictor):
    """The synthetic training data hold a few diseases only: the others come from the
    knowledge scorer, so a symptom-only myocardial infarction is still ranked."""
    unseen = knowledge_predictor.knowledge_blend.extra
    assert unseen and set(unseen).isdisjoint(knowledge_predictor.common_model.classes_)
    assert knowledge_predictor.common_classes[-len(unseen) :] == unseen
    output = knowledge_predictor.predict_records(
        [symptoms_only(58, "male", [CHEST_PAIN, DYSPNEA])]
    )[0]
    codes = [e["code"] for e in output["differential"][:10]]
    assert "I21" in codes


def test_symptoms_only_rows_follow_the_blend_of_their_pattern(knowledge_predictor):
    record = symptoms_only(58, "male", [CHEST_PAIN, DYSPNEA])
    from disease_pipeline.records import records_to_tables

    X = knowledge_predictor.feature_builder.transform(records_to_tables([record]))
    assert modality_pattern(X).tolist() == ["symptoms_only"]
    blend = knowledge_predictor.knowledge_blend
    alpha, beta = blend.weights["symptoms_only"]
    raw = knowledge_predictor._calibrated(
        "common", knowledge_predictor.common_model.predict_proba(X)
    )
    K = blend.knowledge(X)
    expected = softmax(alpha * K + beta * blend.model_log_proba(raw, K), axis=1)
    assert np.allclose(knowledge_predictor.predict_arrays(X)["common"], expected)


@pytest.mark.parametrize("presentation", sorted(RED_FLAGS))
def test_red_flag_presentations_keep_the_cant_miss_diagnosis(knowledge_predictor, presentation):
    age, sex, terms, code = RED_FLAGS[presentation]
    output = knowledge_predictor.predict_records([symptoms_only(age, sex, terms)])[0]
    flagged = {e["code"]: e for e in output["differential"] if e["must_not_miss"]}
    assert code in flagged, presentation
    assert flagged[code]["rule_out"]
    # a plausible time-critical disease never leaves severity "low" with high confidence
    cap = knowledge_predictor.must_not_miss["low_cap"]
    assert output["severity"]["probabilities"]["low"] <= cap + 1e-9
    assert output["severity"]["level"] != "low"
    assert "note" in output["severity"]


def test_without_a_plausible_critical_disease_severity_is_left_alone(knowledge_predictor):
    record = symptoms_only(25, "female", ["HP:0031417", "HP:0025095", "HP:0033050"])
    output = knowledge_predictor.predict_records([record])[0]
    assert not any(e["must_not_miss"] for e in output["differential"])
    assert "note" not in output["severity"]


def test_chest_pain_man_gets_troponin_or_ecg_style_tests_and_findings(knowledge_predictor):
    output = knowledge_predictor.predict_records(
        [symptoms_only(58, "male", [CHEST_PAIN, DYSPNEA])]
    )[0]
    explanation = output["explanation"]
    assert len(explanation["recommended_tests"]) == 3
    gains = [t["expected_information_gain"] for t in explanation["recommended_tests"]]
    assert gains == sorted(gains, reverse=True) and gains[0] > 0
    reported = {f["hpo_id"] for f in explanation["findings"]}
    assert reported <= {CHEST_PAIN, DYSPNEA}


def test_a_measured_test_is_not_recommended_again(knowledge_predictor):
    record = symptoms_only(58, "male", [CHEST_PAIN, DYSPNEA])
    first = knowledge_predictor.predict_records([record])[0]["explanation"]["recommended_tests"][0]
    row = load_lab_table().set_index("loinc").loc[first["loinc"]]
    value = Measurement(
        loinc=first["loinc"], value=float(row["normal"]["mean"]), unit=row["canonical_unit"]
    )
    measured = record.model_copy(update={"labs" if first["kind"] == "lab" else "vitals": [value]})
    again = knowledge_predictor.predict_records([measured])[0]
    assert first["loinc"] not in [t["loinc"] for t in again["explanation"]["recommended_tests"]]


def test_not_reported_is_never_worded_as_absent(knowledge_predictor):
    output = knowledge_predictor.predict_records(
        [symptoms_only(58, "male", [CHEST_PAIN], absent=[DYSPNEA])]
    )[0]
    explanation = output["explanation"]
    texts = [f["text"] for f in explanation["features"]]
    assert not any(
        t.endswith(": no") and t.split(":")[0] != "female sex" for t in texts if "hpo" in t
    )
    for item in explanation["features"]:
        if item["feature"].startswith("hpo_") and not item["feature"].startswith("hpo_not_"):
            assert item["text"].endswith(("reported", "not reported"))
    findings = {f["hpo_id"]: f for f in explanation["findings"]}
    assert FATIGUE not in findings  # never sent: never a finding
    if DYSPNEA in findings:
        assert findings[DYSPNEA]["text"] == "Dyspnea: reported absent"


def test_a_near_certain_stroke_is_critical():
    """Severity follows how plausible the time-critical disease is: a near-certain
    tier-5 disease moves most of the probability to "critical"."""
    from disease_pipeline.predictor.probabilities import respect_critical

    severity = {
        "level": "low",
        "probabilities": {"low": 0.7, "moderate": 0.2, "high": 0.05, "critical": 0.05},
    }
    respect_critical(severity, 0.4, tier=5, plausibility=0.95)
    assert severity["level"] == "critical"
    assert np.isclose(sum(severity["probabilities"].values()), 1.0)
    mild = {
        "level": "low",
        "probabilities": {"low": 0.7, "moderate": 0.2, "high": 0.05, "critical": 0.05},
    }
    respect_critical(mild, 0.4, tier=4, plausibility=0.05)
    assert mild["level"] in {"moderate", "high"} and mild["probabilities"]["low"] <= 0.4
