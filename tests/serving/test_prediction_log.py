"""The buffered prediction-log writer against a real DuckDB file (no server)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from disease_pipeline.records import PatientRecord
from disease_pipeline.serving.audit import keyed_digest
from disease_pipeline.serving.auth import Principal
from disease_pipeline.serving.inputs import FieldError, InputError
from disease_pipeline.serving.predicting import PatientJob
from disease_pipeline.serving.prediction_log import (
    PredictionLogSettings,
    PredictionLogWriter,
    modality,
)

KEY = b"k" * 40
RAW_ID = "MRN-000123-jane"
MODEL = {"name": "disease_pipeline", "version": "7"}


def job(index: int, patient_id: str | None = RAW_ID) -> PatientJob:
    record = PatientRecord(
        patient_id=patient_id,
        encounter_id=f"enc-{index}",
        age=30 + index % 50,
        sex="female" if index % 2 else "male",
        symptoms=[{"code": "HP:0001945"}],
        vitals=[{"loinc": "8310-5", "value": 38.5, "unit": "Cel"}] if index % 3 == 0 else [],
        note="Jane called from 555-201-3344",
    )
    return PatientJob(record, 10, Principal("u", "clinician"), "/predict", "patient")


def answer(index: int) -> dict:
    return {
        "request_id": f"req{index:08d}",
        "differential": [
            {"code": "J11.1", "category": "COMMON", "probability": 0.7},
            {"code": "J18.9", "category": "COMMON", "probability": 0.2},
        ],
        "p_rare": 0.01,
        "severity": {"level": "moderate"},
    }


def call(writer: PredictionLogWriter, start: int, size: int, refused: int | None = None):
    jobs = [job(i) for i in range(start, start + size)]
    results = [
        InputError([FieldError("patient.age", "bad")]) if i == refused else answer(i)
        for i in range(start, start + size)
    ]
    checked = {i: (j.record, []) for i, j in enumerate(jobs) if start + i != refused}
    writer.add(jobs, checked, results, 12.5)


def rows(path, table="prediction_log"):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY request_id").df()


def settings(tmp_path, **changes) -> PredictionLogSettings:
    raw = {"flush_interval_s": 60.0, "flush_rows": 1000, **changes}
    return PredictionLogSettings.from_dict(raw, tmp_path / "warehouse.duckdb")


def test_close_writes_every_row_without_identifiers(tmp_path):
    writer = PredictionLogWriter(settings(tmp_path), KEY, MODEL)
    for start in range(0, 30, 3):
        call(writer, start, 3, refused=4)
    assert not (tmp_path / "warehouse.duckdb").exists()  # nothing flushed yet: buffered
    writer.close()
    table = rows(tmp_path / "warehouse.duckdb")
    assert len(table) == 30 and writer.written == 30
    assert (table["status"] == "refused").sum() == 1
    refused = table[table["status"] == "refused"].iloc[0]
    assert json.loads(refused["refused_fields"]) == ["patient.age"]
    predicted = table[table["status"] == "predicted"]
    assert set(predicted["top1_code"]) == {"J11.1"}
    assert set(table["patient"]) == {keyed_digest(KEY, "patient", RAW_ID)}
    assert set(table["model_version"]) == {"7"}
    text = table.to_csv()
    assert RAW_ID not in text and "555-201-3344" not in text and "enc-1" not in text
    record = json.loads(predicted.iloc[0]["record"])
    assert set(record) >= {"age", "sex", "symptoms", "vitals", "labs"}
    assert "patient_id" not in record and "note" not in record
    assert set(table["modality"]) == {"symptoms_only", "with_vitals"}


def test_flushes_by_size_and_by_time(tmp_path):
    by_size = PredictionLogWriter(settings(tmp_path, flush_rows=5), KEY, MODEL)
    call(by_size, 0, 6)
    deadline = time.time() + 10
    while by_size.written < 6 and time.time() < deadline:
        time.sleep(0.05)
    assert by_size.written == 6
    by_size.close()
    other = tmp_path / "other"
    by_time = PredictionLogWriter(settings(other, flush_interval_s=0.2), KEY, MODEL)
    call(by_time, 100, 2)
    deadline = time.time() + 10
    while by_time.written < 2 and time.time() < deadline:
        time.sleep(0.05)
    assert by_time.written == 2
    by_time.close()
    assert len(rows(other / "warehouse.duckdb")) == 2


def test_ages_over_90_are_stored_as_90_like_the_warehouse(tmp_path):
    writer = PredictionLogWriter(settings(tmp_path), KEY, MODEL)
    jobs = [job(0), job(1)]
    old = jobs[1].record.model_copy(update={"age": 97.0})
    writer.add(jobs, {0: (jobs[0].record, []), 1: (old, [])}, [answer(0), answer(1)], 10.0)
    writer.close()
    table = rows(tmp_path / "warehouse.duckdb")
    assert list(table["age"]) == [30.0, 90.0]
    assert [json.loads(r)["age"] for r in table["record"]] == [30.0, 90.0]


def test_adds_while_the_thread_flushes_lose_nothing(tmp_path):
    """add() only queues (no I/O on the request path: see the test above); 2,000 adds
    while the background thread flushes every 50 rows all reach the warehouse once.
    The served overhead is measured by scripts/benchmark_monitor.py, not timed here."""
    writer = PredictionLogWriter(settings(tmp_path, flush_rows=50), KEY, MODEL)
    jobs = [job(0)]
    checked = {0: (jobs[0].record, [])}
    for i in range(2000):
        writer.add(jobs, checked, [answer(i)], 10.0)
    writer.close()
    assert writer.written == 2000 and writer.dropped == 0
    assert len(rows(tmp_path / "warehouse.duckdb")) == 2000


def test_locked_warehouse_keeps_rows_until_it_frees(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    writer = PredictionLogWriter(settings(tmp_path), KEY, MODEL)
    call(writer, 0, 4)
    # a lock held by another process (the server test covers real processes): the
    # insert fails as DuckDB's would
    real_append = writer._append
    calls = []

    def failing(rows):
        calls.append(len(rows))
        raise duckdb.IOException("Could not set lock on file")

    writer._append = failing
    assert writer.flush() == 0
    assert writer._pending_rows == 4 and writer.dropped == 0
    writer._append = real_append
    assert writer.flush() == 4
    writer.close()
    assert len(rows(path)) == 4 and calls == [4]


def test_buffer_limit_drops_oldest_and_counts_them(tmp_path):
    writer = PredictionLogWriter(settings(tmp_path, max_buffer_rows=5), KEY, MODEL)
    call(writer, 0, 4)
    call(writer, 10, 4)

    def failing(rows):
        raise duckdb.IOException("locked")

    writer._append = failing
    writer.flush()
    assert writer.dropped == 4 and writer._pending_rows == 4
    writer._stop.set()  # nothing more to write in this test


def test_retention_deletes_old_rows(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    first = PredictionLogWriter(settings(tmp_path, retention_days=None), KEY, MODEL)
    call(first, 0, 3)
    first.close()
    with duckdb.connect(str(path)) as con:
        old = datetime.now(UTC) - timedelta(days=40)
        con.execute(
            "UPDATE prediction_log SET logged_at = ? WHERE request_id = 'req00000000'", [old]
        )
    second = PredictionLogWriter(settings(tmp_path, retention_days=30), KEY, MODEL)
    call(second, 50, 1)
    second.close()
    assert sorted(rows(path)["request_id"]) == ["req00000001", "req00000002", "req00000050"]


def test_bad_settings_name_the_key(tmp_path):
    with pytest.raises(ValueError, match="unknown keys"):
        PredictionLogSettings.from_dict({"flush_every": 3}, tmp_path / "w.duckdb")
    with pytest.raises(ValueError, match="flush_interval_s"):
        PredictionLogSettings.from_dict({"flush_interval_s": 0}, tmp_path / "w.duckdb")


def test_modality_names_what_the_record_brings():
    base = {"age": 3, "symptoms": [{"code": "HP:0001945"}]}
    lab = [{"loinc": "718-7", "value": 12, "unit": "g/dL"}]
    assert modality(PatientRecord(**base)) == "symptoms_only"
    assert modality(PatientRecord(**base, labs=lab)) == "with_labs"
    assert modality(PatientRecord(**base, labs=lab, vitals=lab)) == "all"


def test_site_is_logged_and_a_log_of_an_older_release_gains_the_column(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:  # the table as a release before `site` wrote it
        con.execute("CREATE TABLE prediction_log (request_id VARCHAR, endpoint VARCHAR)")
        con.execute("INSERT INTO prediction_log VALUES ('old-1', '/predict')")
    writer = PredictionLogWriter(settings(tmp_path), KEY, MODEL)
    sited = job(1)
    sited = PatientJob(
        sited.record.model_copy(update={"site": "north-ED"}), 10, sited.principal, "/predict", "p"
    )
    writer.add([sited, job(2)], {0: (sited.record, []), 1: (job(2).record, [])},
               [answer(1), answer(2)], 3.0)  # fmt: skip
    writer.close()
    table = rows(path).set_index("request_id")
    assert table.loc["req00000001", "site"] == "north-ED"
    assert table["site"].drop(["req00000001"]).isna().all()
    assert table.loc["old-1", "endpoint"] == "/predict"  # the older row is kept
    assert writer.written == 2
