"""The review queue a clinician works through: the most informative recent predictions
(``kedro run --pipeline=active_learning`` writes the warehouse table ``review_queue``,
docs/retraining.md) that still have no confirmed diagnosis, each with what the service
saw (age, sex, the reported and absent findings) and what it answered (the top of the
differential, P(rare)). Confirming one is an ordinary ``POST /feedback``, after which it
leaves the queue. The service exposes it as ``GET /review`` (permission ``review``,
audited).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from disease_pipeline.serving.alerts import plain_row, with_warehouse

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: entries of the differential shown beside a queued case
SHOWN_CANDIDATES = 3


class ReviewQueue:
    """Reads the queue, the logged predictions and the feedback of one DuckDB warehouse."""

    def __init__(  # noqa: PLR0913 - the three tables and the retry policy
        self,
        warehouse: Path,
        *,
        queue_table: str = "review_queue",
        log_table: str = "prediction_log",
        feedback_table: str = "feedback",
        retries: int = 20,
        wait_s: float = 0.1,
    ) -> None:
        for name in (queue_table, log_table, feedback_table):
            if not _IDENTIFIER.match(name):
                raise ValueError(f"review table {name!r} is not a plain SQL identifier")
        self.warehouse = Path(warehouse)
        self.tables = {"queue": queue_table, "log": log_table, "feedback": feedback_table}
        self.retries = retries
        self.wait_s = float(wait_s)

    def pending(self, limit: int = 50) -> list[dict[str, Any]]:
        """Queued predictions without feedback yet, in queue order (at most ``limit``);
        empty before the active_learning pipeline has written a queue.

        Raises:
            ValueError: a ``limit`` below 1.
        """
        if limit < 1:
            raise ValueError(f"limit: must be >= 1, got {limit}")
        if not self.warehouse.exists():
            return []
        frame = with_warehouse(
            self.warehouse, lambda con: self._read(con, limit), True, self.retries, self.wait_s
        )
        return [entry(row) for row in frame.to_dict("records")]

    def _read(self, con: Any, limit: int) -> pd.DataFrame:
        present = {
            name
            for (name,) in con.execute(
                "SELECT table_name FROM information_schema.tables"
            ).fetchall()
        }
        queue, log, feedback = (self.tables[k] for k in ("queue", "log", "feedback"))
        if queue not in present:
            return pd.DataFrame()
        logged = (
            "LEFT JOIN (SELECT request_id, age, sex, record, top_codes, top_probabilities "
            f'FROM "{log}") AS l USING (request_id)'
            if log in present
            else ""
        )
        chosen = (
            "l.age, l.sex, l.record, l.top_codes, l.top_probabilities"
            if logged
            else (
                "NULL AS age, NULL AS sex, NULL AS record, NULL AS top_codes, "
                "NULL AS top_probabilities"
            )
        )
        unlabelled = (
            f'WHERE q.request_id NOT IN (SELECT request_id FROM "{feedback}" '
            "WHERE request_id IS NOT NULL)"
            if feedback in present
            else ""
        )
        query = (
            "SELECT q.rank, q.request_id, q.logged_at, q.top1_code, q.p_rare, q.score, "
            f'{chosen} FROM "{queue}" AS q {logged} {unlabelled} ORDER BY q.rank LIMIT ?'
        )
        return con.execute(query, [int(limit)]).df()


def entry(row: dict[str, Any]) -> dict[str, Any]:
    """One queued case as the page shows it (no identifier: the record the log kept has
    none)."""
    record = json.loads(row.pop("record") or "{}")
    codes = json.loads(row.pop("top_codes") or "[]")
    probabilities = json.loads(row.pop("top_probabilities") or "[]")
    symptoms = record.get("symptoms") or []
    return plain_row(row) | {
        "present": [s["code"] for s in symptoms if s.get("present", True)],
        "absent": [s["code"] for s in symptoms if not s.get("present", True)],
        "measurements": len(record.get("vitals") or []) + len(record.get("labs") or []),
        "candidates": [
            {"code": code, "probability": probability}
            for code, probability in list(zip(codes, probabilities, strict=False))[
                :SHOWN_CANDIDATES
            ]
        ],
    }
