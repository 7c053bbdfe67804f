"""Clinician feedback: the confirmed diagnosis for an earlier prediction, stored in the
warehouse (DuckDB table ``feedback``) for retraining.

A feedback row links to the prediction by ``request_id`` and copies what the model said
(model version, its top codes, the rank of the confirmed code), found in the audit
trail. Free-text notes are not stored by default (``serving.feedback_notes: drop``):
a regular-expression scrub misses names and other free-text identifiers, and the
maintained clinical de-identifier (philter-lite) needs NLTK tagger data that cannot be
installed offline. ``feedback_notes: scrub`` stores them after the project's identifier
patterns (a weaker guarantee, for sites that accept it).

The feedback is audited before it is committed to the warehouse (:func:`record_feedback`):
a stored row always has its audit entry; a row that could not be stored gets a
``feedback_not_stored`` entry after its ``feedback`` entry.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from disease_pipeline.core.scrub import scrub_text

FEEDBACK_COLUMNS = {
    "feedback_id": "VARCHAR",
    "request_id": "VARCHAR",
    "received_at": "TIMESTAMP WITH TIME ZONE",
    "user_id": "VARCHAR",
    "role": "VARCHAR",
    "confirmed_code": "VARCHAR",
    "notes": "VARCHAR",
    "model_version": "VARCHAR",
    "predicted_top": "VARCHAR",
    "confirmed_rank": "INTEGER",
}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class WarehouseBusyError(RuntimeError):
    """The warehouse stayed locked by another process for every retry."""


def with_warehouse(warehouse: Path, work, read_only: bool, retries: int = 20, wait_s=0.1):
    """``work(connection)`` on the DuckDB file ``warehouse`` (UTC session), retried while
    another process holds its lock.

    Raises:
        WarehouseBusyError: still locked after ``retries`` tries.
    """
    import duckdb

    for attempt in range(retries):
        try:
            with duckdb.connect(os.fspath(warehouse), read_only=read_only) as con:
                con.execute("SET TimeZone = 'UTC'")
                return work(con)
        except duckdb.IOException as error:
            if attempt == retries - 1:
                raise WarehouseBusyError(
                    f"warehouse {warehouse} stayed locked for {retries * wait_s:.0f} s: {error}"
                ) from error
            time.sleep(wait_s)
    raise AssertionError("unreachable")


class PredictionIndex:
    """``request_id`` → audit summary of every prediction in the audit trail, read
    incrementally (other worker processes append to the same file)."""

    def __init__(self, audit_path: Path) -> None:
        self._path = Path(audit_path)
        self._offset = 0
        self._entries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _catch_up(self) -> None:
        if not self._path.exists():
            return
        with self._path.open("rb") as handle:
            handle.seek(self._offset)
            for line in handle:
                if not line.endswith(b"\n"):
                    break  # a write in progress: read it next time
                self._offset += len(line)
                entry = json.loads(line)
                if entry.get("event") == "prediction":
                    self._entries[entry["request_id"]] = {
                        "model_version": entry.get("model_version"),
                        "top": entry.get("output", {}).get("top", []),
                    }

    def lookup(self, request_id: str) -> dict[str, Any] | None:
        """The audited prediction ``request_id``, or None when there is none."""
        with self._lock:
            if request_id not in self._entries:
                self._catch_up()
            return self._entries.get(request_id)


def feedback_row(
    request_id: str,
    confirmed_code: str,
    notes: str | None,
    prediction: dict[str, Any],
    *,
    user: str,
    role: str,
    keep_notes: bool = False,
) -> dict[str, Any]:
    """One ``feedback`` row; ``confirmed_rank`` is the code's rank among the audited top
    codes (None when it was not among them); ``notes`` only with ``keep_notes``, scrubbed."""
    top_codes = [code for code, _ in prediction.get("top", [])]
    rank = top_codes.index(confirmed_code) + 1 if confirmed_code in top_codes else None
    return {
        "feedback_id": uuid.uuid4().hex,
        "request_id": request_id,
        "received_at": datetime.now(UTC),
        "user_id": user,
        "role": role,
        "confirmed_code": confirmed_code,
        "notes": scrub_text(notes) if notes and keep_notes else None,
        "model_version": prediction.get("model_version"),
        "predicted_top": json.dumps(top_codes),
        "confirmed_rank": rank,
    }


class FeedbackStore:
    """Appends feedback rows to a DuckDB table; connects per write so training runs can
    use the same warehouse file, and retries while another process holds its lock."""

    def __init__(
        self,
        warehouse: Path,
        table: str,
        retries: int = 20,
        wait_s: float = 0.1,
        columns: dict[str, str] | None = None,
    ):
        if not _IDENTIFIER.match(table):
            raise ValueError(f"serving.feedback_table {table!r} is not a plain SQL identifier")
        self.warehouse = Path(warehouse)
        self.table = table
        #: column → SQL type (default: the clinician feedback's; CDS Hooks has its own)
        self.columns = dict(columns or FEEDBACK_COLUMNS)
        self.retries = retries
        self.wait_s = wait_s
        self._lock = threading.Lock()

    def append(self, row: dict[str, Any]) -> None:
        """Insert ``row`` (committed before returning)."""
        columns = ", ".join(f'"{name}" {kind}' for name, kind in self.columns.items())
        frame = pd.DataFrame([row], columns=list(self.columns))
        self.warehouse.parent.mkdir(parents=True, exist_ok=True)

        def work(con) -> None:
            con.execute(f'CREATE TABLE IF NOT EXISTS "{self.table}" ({columns})')
            con.register("incoming_feedback", frame)
            con.execute(f'INSERT INTO "{self.table}" SELECT * FROM incoming_feedback')

        with self._lock:
            with_warehouse(self.warehouse, work, False, self.retries, self.wait_s)


def record_feedback(audit: Any, store: FeedbackStore, row: dict[str, Any], latency_ms: float):
    """Audit ``row``'s feedback, then commit it to the warehouse.

    Raises:
        AuditWriteError: not audited, so not stored either.
        WarehouseBusyError: audited but not stored (a ``feedback_not_stored`` entry
            follows the ``feedback`` entry).
    """
    common = {
        "request_id": row["request_id"],
        "feedback_id": row["feedback_id"],
        "user": row["user_id"],
        "role": row["role"],
    }
    audit.append(
        [
            {
                "event": "feedback",
                **common,
                "output": {
                    "confirmed_code": row["confirmed_code"],
                    "confirmed_rank": row["confirmed_rank"],
                    "notes_stored": row["notes"] is not None,
                },
                "model_version": row["model_version"],
                "latency_ms": round(latency_ms, 3),
            }
        ]
    )
    try:
        store.append(row)
    except WarehouseBusyError as error:
        audit.append([{"event": "feedback_not_stored", **common, "reason": str(error)[:200]}])
        raise
