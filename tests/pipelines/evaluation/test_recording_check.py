"""Common patients sent in the recording styles of published rare cases
(evaluation/recording_check.py): without their age, with many findings recorded absent."""

from __future__ import annotations

import pandas as pd
import pytest

from disease_pipeline.pipelines.evaluation.recording_check import (
    check_recording_styles,
    patient_records,
    recording_metrics,
)


class _HabitReadingGate:
    """Stands in for a gate that learned the recording habits of published rare cases:
    P(rare) 0.9 and rare candidates first when the age is missing or more than three
    findings are recorded absent; otherwise the first present term decides the common
    answer (HP:0012735 cough -> J06.9, else K21.9)."""

    def __init__(self) -> None:
        self.requests: list[tuple[float | None, int]] = []

    def predict_tables(self, tables, top_k=10, explain=True):
        out = []
        symptoms = tables["symptoms"]
        for row in tables["encounters"].itertuples():
            age = None if pd.isna(row.age_years) else float(row.age_years)
            own = symptoms[symptoms["encounter_id"] == row.encounter_id]
            n_absent = int((~own["present"]).sum())
            self.requests.append((age, n_absent))
            first = own.loc[own["present"], "hpo_id"].iloc[0]
            common = "J06.9" if first == "HP:0012735" else "K21.9"
            rare = age is None or n_absent > 3
            codes = ["OMIM:1", "OMIM:2", common] if rare else [common, "E11.9", "I10"]
            differential = [{"code": c} for c in codes]
            out.append({"p_rare": 0.9 if rare else 0.1, "differential": differential})
        return out


PATIENTS = pd.DataFrame(
    {
        "label": ["J06.9", "K21.9", "J06.9", "I10"],
        "present": [["HP:0012735"], ["HP:0002020"], ["HP:0012735"], ["HP:0002315"]],
        "absent": [[], ["HP:0012735"], [], []],
        "age": [30.0, 50.0, 8.0, 61.0],
        "sex": ["female", "male", "male", "female"],
    }
)
POOL = [f"HP:00{i:05d}" for i in range(100, 130)] + ["HP:0012735"]


def test_every_arm_is_sent_and_scored():
    gate = _HabitReadingGate()
    metrics = recording_metrics(gate, PATIENTS, POOL, threshold=0.5, top_k=2, negatives=5, seed=1)
    ages = [age for age, _ in gate.requests]
    absent = [n for _, n in gate.requests]
    assert ages == [30.0, 50.0, 8.0, 61.0, None, None, None, None, 30.0, 50.0, 8.0, 61.0]
    assert absent == [0, 1, 0, 0, 0, 1, 0, 0, 5, 6, 5, 5]  # five more in the last arm
    assert metrics["recording.patients"] == 4
    assert metrics["recording.as_sampled.share_p_rare_at_least_threshold"] == 0.0
    assert metrics["recording.without_age.share_p_rare_at_least_threshold"] == 1.0
    assert metrics["recording.with_negatives.share_p_rare_at_least_threshold"] == 1.0
    # as sampled: J06.9, K21.9, J06.9 first; I10 third is outside the top 2 -> 3/4
    assert metrics["recording.as_sampled.top2"] == pytest.approx(0.75)
    # otherwise the rare candidates take both places
    assert metrics["recording.without_age.top2"] == 0.0
    assert metrics["recording.with_negatives.top2"] == 0.0


def test_added_negatives_are_findings_the_patient_does_not_show():
    records = patient_records(PATIENTS, "with_negatives", POOL, negatives=40, seed=3)
    for record, row in zip(records, PATIENTS.itertuples(), strict=True):
        absent = [s.code for s in record.symptoms if not s.present]
        present = [s.code for s in record.symptoms if s.present]
        assert present == row.present
        assert len(set(absent)) == len(absent)
        assert not set(absent) & set(present)
        # capped by the pool: every pool finding the patient neither shows nor excludes
        assert len(absent) == len(set(POOL) - set(present))
    with pytest.raises(ValueError, match="unknown arm"):
        patient_records(PATIENTS, "no_sex", POOL, negatives=1, seed=3)


def test_catalogue_patients_are_sampled_when_enabled():
    params = {
        "recording_check": {
            "enabled": True,
            "n_per_disease": 1,
            "seed": 7,
            "threshold": 0.5,
            "top_k": 3,
            "negatives": 8,
        }
    }
    metrics = check_recording_styles(_HabitReadingGate(), params)
    assert metrics["recording.patients"] > 20  # one patient per catalogue disease
    assert metrics["recording.without_age.share_p_rare_at_least_threshold"] == 1.0
    assert metrics["recording.with_negatives.share_p_rare_at_least_threshold"] == 1.0
    off = {"recording_check": {"enabled": False}}
    assert check_recording_styles(_HabitReadingGate(), off) == {}
