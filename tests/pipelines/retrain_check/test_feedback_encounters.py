"""Trusted feedback joined to the prediction log becomes labelled encounters that the
features pipeline reads beside the warehouse: the record the model saw, the confirmed
code as primary diagnosis, provenance kept, unmatched labels reported."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pytest

from disease_pipeline.pipelines.features.nodes import assemble_feature_tables, build_labels
from disease_pipeline.pipelines.features.splits import split_encounters
from disease_pipeline.pipelines.retrain_check.feedback_encounters import (
    code_system,
    feedback_encounters,
)
from disease_pipeline.records import PatientRecord, records_to_tables

SEEN = PatientRecord(
    age=61,
    sex="male",
    symptoms=[{"code": "HP:0001945", "system": "HPO", "present": True}],
    vitals=[{"loinc": "8867-4", "value": 110, "unit": "/min"}],
)
LOGGED_AT = datetime(2026, 5, 2, 10, 0, tzinfo=UTC)
LOG = pd.DataFrame(
    {
        "request_id": ["r1", "r2", None],
        "logged_at": [LOGGED_AT, LOGGED_AT, LOGGED_AT],
        "patient": ["a" * 64, None, "b" * 64],
        "record": [
            SEEN.model_dump_json(exclude={"patient_id", "encounter_id", "note"}),
            SEEN.model_copy(update={"age": 8.0, "sex": "female"}).model_dump_json(),
            None,  # a refused request: no request id, nothing to join
        ],
    }
)
LABELLED = pd.DataFrame(
    {
        "request_id": ["r1", "r2", "r3"],
        "confirmed_code": ["J18.9", "ORPHA:558", "I10"],
        "label_category": ["COMMON", "RARE", "COMMON"],
        "trust": ["role:admin", "concordant:2", "role:admin"],
        "confirmed_by": [json.dumps(["admin1"]), json.dumps(["c1", "c2"]), json.dumps(["a"])],
        "confirmed_at": [LOGGED_AT] * 3,
        "model_version": ["3", "3", "3"],
    }
)


@pytest.mark.parametrize(
    ("code", "system"), [("J18.9", "ICD10"), ("ORPHA:558", "ORPHA"), ("OMIM:219700", "OMIM")]
)
def test_code_system(code, system):
    assert code_system(code) == system


def test_labels_join_their_logged_record_with_provenance():
    tables, unmatched = feedback_encounters(LABELLED, LOG)
    enc = tables["encounters"].set_index("encounter_id")
    assert sorted(enc.index) == ["feedback-r1", "feedback-r2"]
    assert enc.loc["feedback-r1", "patient_id"] == "a" * 64
    assert enc.loc["feedback-r2", "patient_id"] == "feedback-r2"  # no pseudonym was sent
    assert (enc["source"] == "feedback").all()
    assert enc.loc["feedback-r2", "sex"] == "female"
    assert tables["symptoms"]["hpo_id"].tolist() == ["HP:0001945", "HP:0001945"]
    assert len(tables["vitals"]) == 2
    primary = tables["diagnoses"].set_index("encounter_id")
    assert primary.loc["feedback-r2", ["code", "system", "category"]].tolist() == [
        "ORPHA:558",
        "ORPHA",
        "RARE",
    ]
    assert primary["severity"].isna().all()
    provenance = tables["provenance"].set_index("request_id")
    assert provenance.loc["r2", "trust"] == "concordant:2"
    assert provenance.loc["r1", "model_version"] == "3"
    assert unmatched.to_dict("records") == [
        {
            "request_id": "r3",
            "reason": "prediction not in the prediction log (retention or logging off)",
        }
    ]


def test_without_a_prediction_log_every_label_is_reported_unmatched():
    tables, unmatched = feedback_encounters(LABELLED, None)
    assert tables["encounters"].empty
    assert unmatched["request_id"].tolist() == ["r1", "r2", "r3"]


def test_the_features_pipeline_labels_feedback_encounters_beside_the_warehouse():
    export = PatientRecord(
        patient_id="p1",
        encounter_id="e1",
        age=40,
        sex="female",
        encounter_date=datetime(2025, 1, 1),
        symptoms=[{"code": "HP:0012735", "system": "HPO", "present": True}],
    )
    warehouse = records_to_tables([export])
    warehouse["encounters"]["source"] = "fhir"
    warehouse["diagnoses"] = pd.DataFrame(
        {
            "encounter_id": ["e1"],
            "code": ["J06.9"],
            "system": ["ICD10"],
            "role": ["primary"],
            "category": ["COMMON"],
            "severity": ["low"],
        }
    )
    patients = pd.DataFrame({"patient_id": ["p1"], "sex": ["female"]})
    feedback, _ = feedback_encounters(LABELLED, LOG)
    tables = assemble_feature_tables(
        patients=patients, **{k: warehouse[k] for k in warehouse}, feedback=feedback
    )
    labels = build_labels(tables, ["phenopacket"]).set_index("encounter_id")
    assert labels.loc["feedback-r1", "label_disease"] == "J18.9"
    assert labels.loc["feedback-r2", ["label_disease", "label_category"]].tolist() == [
        "ORPHA:558",
        "RARE",
    ]
    assert pd.isna(labels.loc["feedback-r1", "label_severity"])
    assert labels.loc["e1", "label_disease"] == "J06.9"
    sexes = tables["encounters"].set_index("encounter_id")["sex"]
    assert sexes.to_dict() == {"e1": "female", "feedback-r1": "male", "feedback-r2": "female"}
    # without feedback (the default) the warehouse alone
    alone = assemble_feature_tables(patients=patients, **warehouse, feedback=None)
    assert alone["encounters"]["encounter_id"].tolist() == ["e1"]


def test_feedback_encounters_train_the_next_model_without_moving_the_periods():
    starts = pd.date_range("2024-01-01", periods=100, freq="D", tz="UTC")
    exports = pd.DataFrame(
        {"encounter_id": [f"e{i}" for i in range(100)], "patient_id": [f"p{i}" for i in range(100)]}
        | {"start": starts}
    )
    feedback = pd.DataFrame(
        {"encounter_id": ["feedback-r1", "feedback-r2"], "patient_id": ["s1", "s2"]}
        | {"start": pd.to_datetime(["2026-05-01", "2026-05-02"], utc=True)}
    )
    params = {"fractions": {"train": 0.7, "calibration": 0.15, "test": 0.15}}
    alone = split_encounters(exports, params)
    both = split_encounters(pd.concat([exports, feedback], ignore_index=True), params)
    split = both.set_index("encounter_id")["split"]
    assert split[["feedback-r1", "feedback-r2"]].tolist() == ["train", "train"]
    assert split.drop(["feedback-r1", "feedback-r2"]).tolist() == alone["split"].tolist()
    timed = split_encounters(
        pd.concat([exports, feedback], ignore_index=True), {**params, "feedback_split": "time"}
    )
    assert timed.set_index("encounter_id").loc["feedback-r2", "split"] == "test"
    with pytest.raises(ValueError, match="feedback_split: one of"):
        split_encounters(exports, {**params, "feedback_split": "validation"})
