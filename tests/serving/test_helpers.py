"""Pure helpers of the service: response shaping, audit summaries, HPO search, feedback.

The predictor here is a tiny fake with the ``predict_records`` contract; the real
model is exercised over HTTP in test_service_http.py.
"""

from __future__ import annotations

import gc
import json
import math

import numpy as np
import pytest

from disease_pipeline.json_types import json_bytes, json_types
from disease_pipeline.records import PatientRecord, records_to_tables
from disease_pipeline.serving.audit import AuditLog
from disease_pipeline.serving.engine import PredictionEngine, output_summary
from disease_pipeline.serving.feedback import FeedbackStore, PredictionIndex, feedback_row
from disease_pipeline.serving.inputs import InputError, RecordNormaliser
from disease_pipeline.serving.runtime import GC_THRESHOLDS, tune_collector


class FakePredictor:
    """The ``predict_tables`` contract on warehouse-shaped tables; raises like the real
    predictor on age 0."""

    def __init__(self):
        self.seen = []

    def predict_tables(self, tables, top_k=10):
        encounters = tables["encounters"]
        self.seen = list(encounters["encounter_id"])
        if (encounters["age_years"] == 0).any():
            raise ValueError("encounters.age_years: newborns are not supported")
        return [
            {
                "encounter_id": encounter_id,
                "differential": [
                    {
                        "code": "J18.9",
                        "name": "Pneumonia",
                        "category": "COMMON",
                        "probability": np.float32(0.7),
                        "interval": [0.6, 0.8],
                    },
                    {
                        "code": "ORPHA:558",
                        "name": "Marfan",
                        "category": "RARE",
                        "probability": 0.2,
                        "interval": [0.1, 0.3],
                    },
                ][:top_k],
                "p_rare": np.float64(0.2),
                "severity": {"level": "high", "probabilities": {"high": math.nan}},
                "explanation": [{"feature": "Fever", "direction": "increases"}],
            }
            for encounter_id in self.seen
        ]


@pytest.fixture(scope="module")
def engine():
    return PredictionEngine(FakePredictor(), {"name": "m", "version": "7"}, RecordNormaliser())


def test_engine_shapes_responses_and_hides_client_encounter_ids(engine):
    records = [
        PatientRecord(
            age=30, encounter_id="MRN-12345", patient_id="p1", symptoms=[{"code": "HP:0001945"}]
        ),
        PatientRecord(age=50, symptoms=[{"code": "HP:0002094"}]),
    ]
    responses, _ = engine.predict(records, top_k=2, where="patients")
    assert engine.predictor.seen == ["r0", "r1"]
    first = responses[0]
    assert first["model"] == {"name": "m", "version": "7"}
    assert first["patient_id"] == "p1" and "encounter_id" not in first
    assert [d["rank"] for d in first["differential"]] == [1, 2]
    assert len({r["request_id"] for r in responses}) == 2
    sent = json.loads(json_bytes(responses))  # what the service puts on the wire
    assert isinstance(sent[0]["differential"][0]["probability"], float)
    assert sent[0]["severity"]["probabilities"]["high"] is None  # NaN is not JSON


def test_engine_reports_bad_fields_of_every_record_and_predictor_errors(engine):
    records = [
        PatientRecord(age=30, symptoms=[{"code": "HP:0001945"}]),
        PatientRecord(age=30, symptoms=[]),
        PatientRecord(age=30, symptoms=[{"code": "HP:12"}]),  # malformed (unknown is noted)
    ]
    with pytest.raises(InputError) as caught:
        engine.predict(records, top_k=2, where="patients")
    assert [e.field for e in caught.value.errors] == [
        "patients[1].symptoms",
        "patients[2].symptoms[0].code",
    ]
    with pytest.raises(InputError, match="newborns"):
        engine.predict([PatientRecord(age=0, symptoms=[{"code": "HP:0001945"}])], top_k=2)


def test_output_summary_keeps_codes_not_identifiers():
    tables = records_to_tables([PatientRecord(age=1, note="Ana Ruiz, 555-1234", symptoms=[])])
    summary = output_summary(json_types(FakePredictor().predict_tables(tables)[0]))
    assert summary == {
        "top": [["J18.9", 0.7], ["ORPHA:558", 0.2]],
        "category": "COMMON",
        "p_rare": 0.2,
        "severity": "high",
    }


def test_feedback_index_rank_and_store(tmp_path):
    audit = AuditLog(tmp_path / "audit.jsonl")
    index = PredictionIndex(tmp_path / "audit.jsonl")
    assert index.lookup("r1") is None
    audit.append(
        [
            {
                "event": "prediction",
                "request_id": "r1",
                "model_version": "7",
                "output": {"top": [["J18.9", 0.7], ["I10", 0.2]]},
            }
        ]
    )
    prediction = index.lookup("r1")  # found after a later append
    assert prediction == {"model_version": "7", "top": [["J18.9", 0.7], ["I10", 0.2]]}
    row = feedback_row(
        "r1", "I10", "called 555-123-4567", prediction, user="dr", role="clinician", keep_notes=True
    )
    assert row["confirmed_rank"] == 2 and "555" not in row["notes"]
    assert feedback_row("r1", "I10", "called", prediction, user="d", role="c")["notes"] is None
    assert (
        feedback_row("r1", "E11.9", None, prediction, user="dr", role="x")["confirmed_rank"] is None
    )
    store = FeedbackStore(tmp_path / "warehouse.duckdb", "feedback")
    store.append(row)
    store.append(row | {"feedback_id": "second"})
    import duckdb

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        stored = con.execute("SELECT confirmed_code, confirmed_rank FROM feedback").fetchall()
    assert stored == [("I10", 2), ("I10", 2)]
    with pytest.raises(ValueError, match="feedback_table"):
        FeedbackStore(tmp_path / "w.duckdb", "feedback; DROP TABLE x")


def test_a_locked_warehouse_is_reported_not_crashed(tmp_path):
    import subprocess
    import sys

    from disease_pipeline.serving.feedback import WarehouseBusyError

    path = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); "
            "print('locked', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        store = FeedbackStore(path, "feedback", retries=3, wait_s=0.05)
        with pytest.raises(WarehouseBusyError, match="stayed locked"):
            store.append(feedback_row("r", "I10", None, {}, user="u", role="clinician"))
    finally:
        holder.kill()
        holder.wait()


def test_tune_collector_freezes_the_loaded_model_and_raises_the_thresholds():
    """Serving speed depends on the collector not re-scanning the model on every
    collection (see ``runtime.tune_collector``); the settings must be the documented ones."""
    before = gc.get_threshold()
    loaded = [{"term": i} for i in range(10_000)]  # long-lived objects, like a model
    try:
        tune_collector()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[0] > before[0]
        assert gc.get_freeze_count() >= len(loaded)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
