"""The screening alerts a clinician reviews: read from and updated in the warehouse's
``alerts`` table (written by ``kedro run --pipeline=screen``, DuckDB).

Each call connects to the warehouse file for as long as it needs (the screen pipeline
and training use the same file) and retries while another process holds its lock.
A state change follows ``core.alerts.next_state`` (new → acknowledged → closed) and is
one ``UPDATE`` guarded by the state read, so two clinicians cannot both move the same
alert. The service exposes it as ``GET /alerts`` and ``POST /alerts/update`` (permission
``alerts``, audited).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from disease_pipeline.core.alerts import ALERT_ACTIONS, ALERT_COLUMNS, ALERT_STATES, next_state
from disease_pipeline.serving.feedback import WarehouseBusyError, with_warehouse

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: the columns of an alert shown to a clinician (no run, data or model versions)
VIEW_COLUMNS = tuple(
    c
    for c in ALERT_COLUMNS
    if c not in {"screen_run", "created_at", "model_version", "data_version"}
)


class AlertUpdate(BaseModel):
    """The body of ``POST /alerts/update``."""

    model_config = ConfigDict(extra="forbid")

    alert_id: str = Field(min_length=8, max_length=64, pattern=r"^[0-9a-f]+$")
    action: Literal["acknowledge", "close"]


#: the name the alert routes know it by
AlertBusyError = WarehouseBusyError


class AlertStore:
    """Lists alerts and moves them through their states."""

    def __init__(self, warehouse: Path, table: str = "alerts", retries: int = 20, wait_s=0.1):
        if not _IDENTIFIER.match(table):
            raise ValueError(f"alerts table {table!r} is not a plain SQL identifier")
        self.warehouse = Path(warehouse)
        self.table = table
        self.retries = retries
        self.wait_s = float(wait_s)

    def _run(self, work, read_only: bool):
        return with_warehouse(self.warehouse, work, read_only, self.retries, self.wait_s)

    def list_alerts(self, state: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Alerts, critical first then newest encounter first; only ``state`` when given.

        Raises:
            ValueError: an unknown ``state`` or a ``limit`` below 1.
        """
        if state is not None and state not in ALERT_STATES:
            raise ValueError(f"state: {state!r} is not one of {list(ALERT_STATES)}")
        if limit < 1:
            raise ValueError(f"limit: must be >= 1, got {limit}")
        if not self.warehouse.exists():
            return []
        columns = ", ".join(f'"{c}"' for c in VIEW_COLUMNS)
        where = "WHERE state = ?" if state else ""
        query = (
            f'SELECT {columns} FROM "{self.table}" {where} ORDER BY '
            "CASE priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 ELSE 2 END, "
            "encounter_start DESC, alert_id LIMIT ?"
        )

        def work(con):
            found = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                [self.table],
            ).fetchone()
            if not found or not found[0]:
                return pd.DataFrame(columns=list(VIEW_COLUMNS))
            return con.execute(query, [*([state] if state else []), int(limit)]).df()

        frame = self._run(work, read_only=True)
        return [plain_row(row) for row in frame.to_dict("records")]

    def update(self, alert_id: str, action: str, user: str) -> dict[str, Any]:
        """Apply ``action`` (``acknowledge`` or ``close``) to an alert as ``user``; the
        alert as it is afterwards.

        Raises:
            KeyError: no alert ``alert_id``.
            ValueError: an unknown action, or one not allowed from the alert's state.
        """
        if action not in ALERT_ACTIONS:
            raise ValueError(
                f"action: unknown alert action {action!r}, expected {list(ALERT_ACTIONS)}"
            )
        by, at = (
            ("acknowledged_by", "acknowledged_at")
            if action == "acknowledge"
            else (
                "closed_by",
                "closed_at",
            )
        )

        def work(con):
            row = con.execute(
                f'SELECT state FROM "{self.table}" WHERE alert_id = ?', [alert_id]
            ).fetchone()
            if row is None:
                raise KeyError(f"alert_id: no alert {alert_id!r}")
            target = next_state(row[0], action)
            con.execute(
                f'UPDATE "{self.table}" SET state = ?, "{by}" = ?, "{at}" = ? '
                "WHERE alert_id = ? AND state = ?",
                [target, user, datetime.now(UTC), alert_id, row[0]],
            )
            columns = ", ".join(f'"{c}"' for c in VIEW_COLUMNS)
            return con.execute(
                f'SELECT {columns} FROM "{self.table}" WHERE alert_id = ?', [alert_id]
            ).df()

        frame = self._run(work, read_only=False)
        return plain_row(frame.to_dict("records")[0])


def plain_row(row: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready values: ISO times, None for missing."""
    out = {}
    for key, value in row.items():
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            out[key] = None
        elif isinstance(value, pd.Timestamp | datetime):
            out[key] = pd.Timestamp(value).isoformat()
        else:
            out[key] = value
    return out
