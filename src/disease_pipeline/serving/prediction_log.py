"""The prediction log: every answered or refused patient as a row of a warehouse table.

The service hands each model call's jobs, checked records and results to
:meth:`PredictionLogWriter.add`, which turns them into rows (:func:`prediction_log_rows`:
strings and numbers, ~0.05 ms a patient) and appends them to an in-memory buffer (no
I/O on the request path; the rows keep nothing of the request, so a large batch's
records and answers are freed with its response). A background thread appends them to
the DuckDB table
(``serving.prediction_log.table``, default ``prediction_log`` in the feedback
warehouse), or with ``backend: snowflake`` to that table in Snowflake
(:mod:`~disease_pipeline.serving.prediction_log_snowflake`), every ``flush_interval_s``
seconds or as soon as ``flush_rows`` rows wait.
:meth:`PredictionLogWriter.close` (BentoML's shutdown hook, and ``atexit``) writes
what is left, so a clean shutdown loses nothing; a killed process loses at most the
rows of the last flush interval (the audit trail still has every prediction).

Rows keep no direct identifier: the patient id is the service's keyed pseudonym (the
same as the audit trail's), the record is the checked record the model saw without its
patient id, encounter id and free-text note, and an age over 90 is stored as 90 (as in
the warehouse; :data:`~disease_pipeline.records.AGE_TOP_CODE`). Rows older than
``retention_days`` are deleted at start and then at most once an hour.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from disease_pipeline.records import AGE_TOP_CODE
from disease_pipeline.serving.audit import keyed_digest
from disease_pipeline.serving.prediction_log_snowflake import (
    SnowflakePredictionLog,
    resolve_connection,
)

logger = logging.getLogger(__name__)

PREDICTION_LOG_COLUMNS = {
    "request_id": "VARCHAR",
    "logged_at": "TIMESTAMP WITH TIME ZONE",
    "endpoint": "VARCHAR",
    "status": "VARCHAR",
    "model_name": "VARCHAR",
    "model_version": "VARCHAR",
    "patient": "VARCHAR",
    "age": "DOUBLE",
    "sex": "VARCHAR",
    "modality": "VARCHAR",
    "record": "VARCHAR",
    "top_codes": "VARCHAR",
    "top_probabilities": "VARCHAR",
    "top1_code": "VARCHAR",
    "top1_category": "VARCHAR",
    "p_rare": "DOUBLE",
    "severity": "VARCHAR",
    "latency_ms": "DOUBLE",
    "batch_size": "INTEGER",
    "refused_fields": "VARCHAR",
    "site": "VARCHAR",
    "variant": "VARCHAR",
}
#: columns a log written by an older release may lack (read as null)
LATER_COLUMNS = ("site", "variant")
#: fields of the record the log never keeps (identifiers and free text)
DROPPED_RECORD_FIELDS = {"patient_id", "encounter_id", "note"}
#: where the log goes: the DuckDB ``warehouse`` file, or Snowflake
BACKENDS = ("duckdb", "snowflake")


@dataclass(frozen=True)
class PredictionLogSettings:
    """``serving.prediction_log`` of serving.yml."""

    enabled: bool = True
    warehouse: Path | None = None
    table: str = "prediction_log"
    flush_interval_s: float = 10.0
    flush_rows: int = 500
    max_buffer_rows: int = 200_000
    retention_days: float | None = 365.0
    #: ``duckdb`` (the ``warehouse`` file) or ``snowflake`` (``table`` in the schema of
    #: the ``snowflake`` connection)
    backend: str = "duckdb"
    #: Snowflake connection: key → environment-variable reference (``${NAME}`` or
    #: ``${NAME,default}``); None: the variables of conf/snowflake/credentials.yml
    snowflake: dict[str, str] | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None, default_warehouse: Path):
        """Settings from the mapping (missing keys keep their defaults); ``warehouse``
        null means the feedback warehouse."""
        raw = dict(raw or {})
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"serving.prediction_log: unknown keys {sorted(unknown)}")
        warehouse = raw.pop("warehouse", None)
        settings = cls(**raw, warehouse=Path(warehouse or default_warehouse))
        if settings.flush_interval_s <= 0 or settings.flush_rows < 1:
            raise ValueError("serving.prediction_log: flush_interval_s and flush_rows must be > 0")
        if not settings.table.isidentifier():
            raise ValueError(f"serving.prediction_log.table {settings.table!r}: not an identifier")
        if settings.backend not in BACKENDS:
            raise ValueError(
                f"serving.prediction_log.backend {settings.backend!r}: one of {list(BACKENDS)}"
            )
        if settings.snowflake is not None and not isinstance(settings.snowflake, dict):
            raise ValueError("serving.prediction_log.snowflake must be a mapping")
        if settings.enabled and settings.backend == "snowflake":
            settings.snowflake_connection()  # a missing variable fails at start, named
        return settings

    def snowflake_connection(self) -> dict[str, Any]:
        """The Snowflake connection parameters, read from the environment variables
        the ``snowflake`` mapping names (``ValueError`` naming a missing one)."""
        return resolve_connection(self.snowflake)


def modality(record: Any) -> str:
    """``symptoms_only``, ``with_vitals``, ``with_labs`` or ``all`` (what the
    record brings besides symptoms)."""
    vitals, labs = bool(record.vitals), bool(record.labs)
    if vitals and labs:
        return "all"
    return "with_vitals" if vitals else "with_labs" if labs else "symptoms_only"


def answer_fields(answer: dict[str, Any]) -> dict[str, Any]:
    """The log's fields of one answer (a response or a predictor output): ``status``
    predicted, the differential's codes and probabilities (rounded to 6 decimals), its
    top-1 code and category, P(rare) and the severity level."""
    differential = answer.get("differential") or []
    return {
        "status": "predicted",
        "top_codes": json.dumps([item.get("code") for item in differential]),
        "top_probabilities": json.dumps(
            [round(float(item.get("probability") or 0.0), 6) for item in differential]
        ),
        "top1_code": differential[0].get("code") if differential else None,
        "top1_category": differential[0].get("category") if differential else None,
        "p_rare": float(answer.get("p_rare") or 0.0),
        "severity": (answer.get("severity") or {}).get("level"),
    }


def prediction_log_rows(
    batch: tuple[Sequence[Any], dict[int, tuple[Any, list[str]]], Sequence[Any], float],
    key: bytes,
    model: dict[str, Any],
    logged_at: datetime,
    variants: Sequence[str] | str = "champion",
) -> list[dict[str, Any]]:
    """One row per job of a model call: ``batch`` is ``(jobs, checked, results,
    elapsed_ms)`` as :class:`~disease_pipeline.serving.predicting.PatientPredictor`
    has them (``checked``: index → (normalised record, notes); a result is a response
    dict or an ``InputError``). ``variants``: the model variant (``champion`` or
    ``challenger``) of every row, or of each job; a response's own ``model`` names the
    version that answered it."""
    jobs, checked, results, elapsed_ms = batch
    if isinstance(variants, str):
        variants = [variants] * len(jobs)
    rows = []
    for index, (job, result) in enumerate(zip(jobs, results, strict=True)):
        record = checked[index][0] if index in checked else job.record
        if record.age is not None and record.age > AGE_TOP_CODE:  # stored top-coded
            record = record.model_copy(update={"age": AGE_TOP_CODE})
        patient_id = job.record.patient_id
        row = {
            "request_id": None,
            "logged_at": logged_at,
            "endpoint": job.endpoint,
            "model_name": model.get("name"),
            "model_version": model.get("version"),
            "patient": keyed_digest(key, "patient", patient_id) if patient_id else None,
            "age": None if record.age is None else float(record.age),
            "sex": record.sex,
            "modality": modality(record),
            "site": record.site,
            "record": record.model_dump_json(exclude=DROPPED_RECORD_FIELDS),
            "latency_ms": round(elapsed_ms, 3),
            "batch_size": len(jobs),
            "variant": variants[index],
        }
        if isinstance(result, dict):
            answered_by = result.get("model") or {}
            row |= {
                "model_name": answered_by.get("name", row["model_name"]),
                "model_version": answered_by.get("version", row["model_version"]),
                "request_id": result["request_id"],
                **answer_fields(result),
            }
        else:
            row |= {
                "status": "refused",
                "refused_fields": json.dumps([error.field for error in result.errors]),
            }
        rows.append(row)
    return rows


class PredictionLogWriter:
    """Buffered, background writer of the prediction log (see the module docstring)."""

    def __init__(
        self,
        settings: PredictionLogSettings,
        key: bytes,
        model: dict | None = None,
        variant: str = "champion",
    ):
        self.settings = settings
        self.key = key
        self.model: dict[str, Any] = dict(model or {})
        #: the model variant of this log's rows unless a call names each job's
        self.variant = variant
        self.written = 0
        self.dropped = 0
        self._buffer: deque = deque()
        self._pending_rows = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._last_retention: float | None = None
        self._schema_checked = False
        self._snowflake = (
            SnowflakePredictionLog(settings.table, settings.snowflake_connection())
            if settings.backend == "snowflake"
            else None
        )
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def add(self, jobs, checked, results, elapsed_ms: float, variants=None) -> None:
        """Queue one model call's patients as log rows (no I/O): called on the request
        path. The rows hold strings and numbers only, so a large batch's records and
        answers are freed with its response, not when the writer next flushes.
        ``variants``: each job's model variant (A/B); None: the writer's ``variant``."""
        try:
            rows = prediction_log_rows(
                (jobs, checked, results, elapsed_ms),
                self.key,
                self.model,
                _now(),
                variants or self.variant,
            )
        except Exception:  # the answers are audited already: a log row must not fail them
            self.dropped += len(jobs)
            logger.exception("prediction log: %d rows could not be made", len(jobs))
            return
        self._buffer.append(rows)
        self._pending_rows += len(rows)
        if self._pending_rows >= self.settings.flush_rows:
            self._wake.set()

    def redate_last(self, logged_at: datetime) -> None:
        """Give the model call queued last the time ``logged_at`` (a replay of past
        traffic; the service dates rows when they are queued)."""
        for row in self._buffer[-1]:
            row["logged_at"] = logged_at

    def close(self) -> None:
        """Stop the thread and write every buffered row (idempotent)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=60)
        self.flush()
        if self._snowflake is not None:
            self._snowflake.close()
        logger.info("prediction log closed: %d rows written", self.written)

    def flush(self) -> int:
        """Write the buffered rows now; returns how many were written (0 when the
        warehouse stayed locked: they stay buffered for the next flush)."""
        with self._flush_lock:
            taken = []
            while self._buffer:
                taken.append(self._buffer.popleft())
            if not taken:
                return 0
            self._pending_rows = sum(len(item) for item in self._buffer)
            rows = [row for call in taken for row in call]
            try:
                self._append(rows)
            except Exception as error:  # kept for the next flush, within max_buffer_rows
                self._requeue(taken, error)
                return 0
            self.written += len(rows)
            return len(rows)

    def _requeue(self, taken: list, error: Exception) -> None:
        self._buffer.extendleft(reversed(taken))
        pending = sum(len(item) for item in self._buffer)
        while pending > self.settings.max_buffer_rows and self._buffer:
            lost = self._buffer.popleft()
            pending -= len(lost)
            self.dropped += len(lost)
        self._pending_rows = pending
        logger.warning(
            "prediction log: %d rows not written yet (%s); %d dropped in all (buffer limit %d)",
            pending,
            error,
            self.dropped,
            self.settings.max_buffer_rows,
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.settings.flush_interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.flush()
            except Exception:  # the thread must survive a bad row; logged with its cause
                logger.exception("prediction log: flush failed")

    def _append(self, rows: list[dict[str, Any]]) -> None:
        if self._snowflake is not None:
            cutoff = self._retention_cutoff()
            self._snowflake.append(rows, PREDICTION_LOG_COLUMNS, cutoff)
            if cutoff is not None:
                self._last_retention = time.monotonic()
            return
        import duckdb

        frame = pd.DataFrame(rows, columns=list(PREDICTION_LOG_COLUMNS))
        columns = ", ".join(f'"{n}" {kind}' for n, kind in PREDICTION_LOG_COLUMNS.items())
        names = ", ".join(f'"{n}"' for n in PREDICTION_LOG_COLUMNS)
        table = self.settings.table
        path = Path(self.settings.warehouse)
        path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(20):
            try:
                with duckdb.connect(os.fspath(path)) as con:
                    con.execute(f'CREATE TABLE IF NOT EXISTS "{table}" ({columns})')
                    if not self._schema_checked:  # a log of an older release, once
                        for name, kind in PREDICTION_LOG_COLUMNS.items():
                            con.execute(
                                f'ALTER TABLE "{table}" ADD COLUMN IF NOT EXISTS "{name}" {kind}'
                            )
                        self._schema_checked = True
                    con.register("incoming_predictions", frame)
                    con.execute(
                        f'INSERT INTO "{table}" ({names}) SELECT {names} FROM incoming_predictions'
                    )
                    self._apply_retention(con)
                return
            except duckdb.IOException:  # another process holds the file: retry shortly
                if attempt == 19:
                    raise
                time.sleep(0.1)

    def _retention_cutoff(self) -> datetime | None:
        """The time before which rows are deleted now; None when retention is off or
        ran less than an hour ago."""
        days = self.settings.retention_days
        if days is None:
            return None
        if self._last_retention is not None and time.monotonic() - self._last_retention < 3600:
            return None
        return datetime.now(UTC) - timedelta(days=float(days))

    def _apply_retention(self, con: Any) -> None:
        cutoff = self._retention_cutoff()
        if cutoff is None:
            return
        con.execute(f'DELETE FROM "{self.settings.table}" WHERE logged_at < ?', [cutoff])
        self._last_retention = time.monotonic()


def _now() -> datetime:
    return datetime.now(UTC)
