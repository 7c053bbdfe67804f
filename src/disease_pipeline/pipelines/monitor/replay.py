"""Replaying warehouse encounters through the service's own code path, in-process:
records → :class:`~disease_pipeline.serving.predicting.PatientPredictor` (check,
predict, audit) → :class:`~disease_pipeline.serving.prediction_log.PredictionLogWriter`,
plus a confirmed diagnosis per encounter through the ``/feedback`` store. Used by the
monitor's tests, the drift scenario and ``scripts/benchmark_monitor.py``; the HTTP layer
is covered by the server tests.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from disease_pipeline.records import PatientRecord


def tables_to_records(tables: dict[str, pd.DataFrame]) -> tuple[list[PatientRecord], list[str]]:
    """One record per encounter of the warehouse-shaped ``tables`` (``encounters``,
    ``patients`` or a ``sex`` column, ``symptoms``, ``vitals``, ``labs``,
    ``diagnoses``) and its primary diagnosis code ("" when none). An encounter without a
    start time is sent without a date (the service dates it at the call)."""
    encounters = tables["encounters"]
    if "sex" not in encounters and "patients" in tables:
        sexes = tables["patients"].set_index("patient_id")["sex"]
        encounters = encounters.assign(sex=encounters["patient_id"].map(sexes))
    by = {
        name: {k: g for k, g in tables[name].groupby("encounter_id")}
        for name in ("symptoms", "vitals", "labs", "diagnoses")
        if name in tables
    }
    empty = pd.DataFrame()
    records, labels = [], []
    for row in encounters.itertuples(index=False):
        eid = row.encounter_id
        symptoms = by.get("symptoms", {}).get(eid, empty)
        diagnoses = by.get("diagnoses", {}).get(eid, empty)
        roles = diagnoses["role"] if len(diagnoses) else pd.Series(dtype=str)
        records.append(
            PatientRecord(
                patient_id=str(row.patient_id),
                encounter_id=str(eid),
                age=None if pd.isna(row.age_years) else float(row.age_years),
                sex=row.sex if row.sex in ("female", "male", "other") else "unknown",
                encounter_date=None
                if pd.isna(row.start)
                else pd.Timestamp(row.start).to_pydatetime(),
                symptoms=[_symptom(s) for s in symptoms.itertuples(index=False)],
                vitals=_measurements(by.get("vitals", {}).get(eid, empty)),
                labs=_measurements(by.get("labs", {}).get(eid, empty)),
                comorbidities=diagnoses.loc[roles == "comorbidity", "code"].astype(str).tolist()
                if len(diagnoses)
                else [],
            )
        )
        primary = diagnoses[roles == "primary"] if len(diagnoses) else empty
        labels.append(_label(primary.iloc[0]) if len(primary) else "")
    return records, labels


def _label(diagnosis: pd.Series) -> str:
    """The diagnosis code as the model's classes spell it (``OMIM:``/``ORPHA:`` prefix)."""
    prefix = {"OMIM": "OMIM:", "ORPHA": "ORPHA:"}.get(str(diagnosis.get("system")), "")
    return prefix + str(diagnosis["code"])


def _symptom(s: Any) -> dict[str, Any]:
    return {
        "code": s.hpo_id,
        "present": bool(s.present),
        "severity": None if pd.isna(s.severity) else int(s.severity),
        "onset_days": None if pd.isna(s.onset_days) else float(s.onset_days),
    }


def _measurements(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"loinc": str(m.loinc), "value": float(m.value), "unit": str(m.unit)}
        for m in frame.itertuples(index=False)
        if pd.notna(m.value)
    ]


@dataclass
class Replayer:
    """The service's predictor, audit trail, prediction log and feedback store for an
    in-process replay (``folder`` holds the audit trail; ``warehouse`` the tables)."""

    patients: Any
    log: Any
    warehouse: Path
    feedback_rows: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def create(
        cls, predictor: Any, warehouse: Path, folder: Path, log_settings: dict | None = None
    ) -> Replayer:
        """Everything the service builds at start-up, on ``predictor``."""
        from disease_pipeline.serving.audit import AuditLog
        from disease_pipeline.serving.engine import PredictionEngine
        from disease_pipeline.serving.inputs import RecordNormaliser
        from disease_pipeline.serving.metrics import service_metrics
        from disease_pipeline.serving.predicting import PatientPredictor
        from disease_pipeline.serving.prediction_log import (
            PredictionLogSettings,
            PredictionLogWriter,
        )

        # keys of this replay alone, never a constant anyone could recompute digests with
        key = secrets.token_bytes(32)
        model = {"name": "replay", "version": "replay"}
        settings = PredictionLogSettings.from_dict(log_settings, warehouse)
        log = PredictionLogWriter(settings, key, model)
        engine = PredictionEngine(predictor, model, RecordNormaliser())
        folder.mkdir(parents=True, exist_ok=True)
        audit = AuditLog(folder / "audit_log.jsonl", key=secrets.token_bytes(32))
        patients = PatientPredictor(
            engine, audit, key, service_metrics(), "replay", prediction_log=log
        )
        return cls(patients, log, Path(warehouse))

    def replay(
        self,
        records: list[PatientRecord],
        labels: list[str],
        served_at: list[datetime],
        batch: int = 64,
        top_k: int = 10,
    ) -> Iterator[dict[str, Any]]:
        """Predict ``records`` in batches as ``/predict_batch`` does, dated ``served_at``
        in the log; each answered patient with a label gets its feedback row. Yields
        each answer (or ``InputError``)."""
        from disease_pipeline.serving.auth import Principal
        from disease_pipeline.serving.feedback import feedback_row
        from disease_pipeline.serving.predicting import PatientJob

        principal = Principal("replay", "clinician")
        for first in range(0, len(records), batch):
            part = records[first : first + batch]
            jobs = [
                PatientJob(r, top_k, principal, "/predict_batch", f"patients[{i}]")
                for i, r in enumerate(part)
            ]
            results = self.patients.run(jobs)
            self._redate(served_at[first : first + batch])
            for result, label in zip(results, labels[first : first + batch], strict=True):
                if isinstance(result, dict) and label:
                    top = [[d["code"], d["probability"]] for d in result["differential"]]
                    prediction = {"model_version": "replay", "top": top}
                    self.feedback_rows.append(
                        feedback_row(
                            result["request_id"], label, None, prediction, user="r", role="c"
                        )
                    )
                yield result

    def _redate(self, served_at: list[datetime]) -> None:
        """Give the batch just queued its replayed service times (the log otherwise
        dates rows when they are queued)."""
        self.log.redate_last(served_at[0] if served_at else datetime.now(UTC))

    def close(self) -> None:
        """Write every buffered log row, then the feedback rows (one insert; the
        service's ``FeedbackStore`` writes the same columns one request at a time)."""
        import duckdb

        from disease_pipeline.serving.feedback import FEEDBACK_COLUMNS

        self.log.close()
        if not self.feedback_rows:
            return
        frame = pd.DataFrame(self.feedback_rows, columns=list(FEEDBACK_COLUMNS))
        columns = ", ".join(f'"{n}" {kind}' for n, kind in FEEDBACK_COLUMNS.items())
        with duckdb.connect(str(self.warehouse)) as con:
            con.execute(f"CREATE TABLE IF NOT EXISTS feedback ({columns})")
            con.register("incoming_feedback", frame)
            con.execute("INSERT INTO feedback SELECT * FROM incoming_feedback")
        self.feedback_rows = []
