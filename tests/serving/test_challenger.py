"""Champion/challenger settings, the sticky A/B split, the shadow job and the variant
of prediction-log rows (docs/retraining.md §6)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from disease_pipeline.records import PatientRecord
from disease_pipeline.serving.auth import Principal
from disease_pipeline.serving.challenger import (
    CHALLENGER,
    CHAMPION,
    ChallengerSettings,
    ab_arm,
    shadow_job,
)
from disease_pipeline.serving.config import ServingConfigError, load_config
from disease_pipeline.serving.inputs import FieldError, InputError
from disease_pipeline.serving.predicting import PatientJob
from disease_pipeline.serving.prediction_log import prediction_log_rows
from disease_pipeline.serving.process import write_config

KEY = b"k" * 40


def test_default_configuration_serves_the_champion_alone():
    settings = load_config().challenger
    assert settings.mode == "off"
    assert settings.shadow_table == "prediction_log_shadow"


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"mode": "canary"}, "serving.challenger.mode"),
        ({"mode": "shadow", "model_tag": None}, "serving.challenger.model_tag"),
        ({"mode": "ab", "model_tag": "m:1", "ab_share": 1.5}, "serving.challenger.ab_share"),
        ({"mode": "ab", "model_tag": "m:1", "ab_share": 0}, "serving.challenger.ab_share"),
        ({"shadow_max_waiting": 0}, "serving.challenger.shadow_max_waiting"),
        ({"shadow_table": "drop table"}, "serving.challenger.shadow_table"),
        ({"modes": "ab"}, "unknown keys"),
    ],
)
def test_bad_settings_name_the_key(raw, named):
    with pytest.raises(ValueError, match=named):
        ChallengerSettings.from_dict(raw)


def test_a_bad_challenger_setting_stops_the_configuration(tmp_path):
    path = write_config(tmp_path, {"clinician": "t" * 32}, challenger={"mode": "ab"})
    with pytest.raises(ServingConfigError, match="model_tag is required in mode ab"):
        load_config(path)


def test_ab_arm_is_sticky_keyed_and_close_to_the_share():
    ids = [f"MRN-{i:06d}" for i in range(20_000)]
    arms = [ab_arm(KEY, pid, 0.1) for pid in ids]
    assert arms == [ab_arm(KEY, pid, 0.1) for pid in ids]  # sticky
    share = arms.count(CHALLENGER) / len(ids)
    assert 0.09 < share < 0.11  # binomial sd 0.002: a fixed key, not a random draw
    other = [ab_arm(b"z" * 40, pid, 0.1) for pid in ids]
    assert other != arms  # another key, another split: callers cannot pick their arm
    assert ab_arm(KEY, None, 0.99) == ab_arm(KEY, "", 0.99) == CHAMPION
    # a larger share keeps everyone already in the challenger arm there
    wider = [ab_arm(KEY, pid, 0.3) for pid in ids]
    assert all(w == CHALLENGER for a, w in zip(arms, wider, strict=True) if a == CHALLENGER)


def job(i: int, top_k: int = 5) -> PatientJob:
    record = PatientRecord(patient_id=f"P{i}", age=30 + i, symptoms=[{"code": "HP:0001945"}])
    return PatientJob(record, top_k, Principal("u", "clinician"), "/predict_batch", f"p[{i}]")


def answer(i: int, version: str = "7") -> dict:
    return {
        "request_id": f"req{i}",
        "model": {"name": "disease_pipeline", "version": version},
        "differential": [{"code": "J06.9", "probability": 0.8, "category": "COMMON"}],
        "p_rare": 0.01,
        "severity": {"level": "low"},
    }


def test_shadow_job_takes_the_predicted_patients_without_their_id():
    jobs = [job(0), job(1, top_k=3), job(2)]
    checked = {0: (jobs[0].record, ["n0"]), 2: (jobs[2].record, [])}
    refused = InputError([FieldError("p[1].age", "bad")])
    positions, made = shadow_job(4, jobs, checked, [answer(0), refused, answer(2)])
    assert positions == [0, 2]
    assert made.batch == 4
    assert made.request_ids == ["req0", "req2"]
    assert made.notes == [["n0"], []]
    assert made.top_k == [5, 5]
    assert all(record.patient_id is None for record in made.records)
    assert [record.age for record in made.records] == [30, 32]
    assert shadow_job(5, [jobs[1]], {}, [refused]) is None


def test_log_rows_carry_the_variant_and_the_answering_version():
    jobs = [job(0), job(1)]
    checked = {0: (jobs[0].record, []), 1: (jobs[1].record, [])}
    at = datetime(2026, 12, 1, tzinfo=UTC)
    batch = (jobs, checked, [answer(0, "7"), answer(1, "9")], 12.0)
    model = {"name": "disease_pipeline", "version": "7"}
    rows = prediction_log_rows(batch, KEY, model, at, [CHAMPION, CHALLENGER])
    assert [r["variant"] for r in rows] == [CHAMPION, CHALLENGER]
    assert [r["model_version"] for r in rows] == ["7", "9"]
    shadow = prediction_log_rows(batch, KEY, model, at, CHALLENGER)
    assert {r["variant"] for r in shadow} == {CHALLENGER}
