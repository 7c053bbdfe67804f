"""Screening alerts: their states, the allowed transitions and the table's columns.

An alert is raised ``new`` by the screen pipeline; a clinician ``acknowledge``-s it
(``acknowledged``) and ``close``-s it (``closed``). Defined once here so the pipeline
that raises alerts and the service that updates them agree.
"""

from __future__ import annotations

#: the states, in lifecycle order
ALERT_STATES: tuple[str, ...] = ("new", "acknowledged", "closed")
#: action -> (states it applies to, state it leads to)
ALERT_ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "acknowledge": (("new",), "acknowledged"),
    "close": (("new", "acknowledged"), "closed"),
}
#: columns of the alerts warehouse table
ALERT_COLUMNS: tuple[str, ...] = (
    "alert_id",
    "rule",
    "priority",
    "patient_id",
    "encounter_id",
    "encounter_start",
    "reason",
    "codes",
    "screen_run",
    "created_at",
    "model_version",
    "data_version",
    "state",
    "acknowledged_by",
    "acknowledged_at",
    "closed_by",
    "closed_at",
)


def next_state(current: str, action: str) -> str:
    """The state an alert in ``current`` moves to by ``action``.

    Raises:
        ValueError: an unknown action or state, or an action not allowed from ``current``
            (e.g. acknowledging a closed alert).
    """
    if action not in ALERT_ACTIONS:
        raise ValueError(f"action: unknown alert action {action!r}, expected {list(ALERT_ACTIONS)}")
    if current not in ALERT_STATES:
        raise ValueError(f"state: unknown alert state {current!r}")
    allowed, target = ALERT_ACTIONS[action]
    if current not in allowed:
        raise ValueError(f"action: cannot {action} an alert that is {current}")
    return target
