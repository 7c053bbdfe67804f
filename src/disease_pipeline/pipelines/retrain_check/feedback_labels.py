"""Clinician feedback → trusted labels with provenance (no Kedro, no I/O).

The service's ``feedback`` table (``serving/feedback.py``) holds one row per
confirmation: ``request_id`` of the audited prediction, the confirmed code, who (user
and role), when, and which model version answered. A confirmation becomes a training
label only under the trust rule of ``parameters_retrain.yml`` (``retrain.feedback``):

- one user's repeated confirmations of one request count once (the latest wins: a
  clinician may correct themselves);
- a request confirmed by a trusted role (``trusted_roles``, e.g. ``admin``) takes that
  role's latest code;
- otherwise it needs ``concordant_clinicians`` distinct users of ``clinician_roles``
  confirming the same code and nobody confirming another one.

Every request that does not pass is kept in the ``excluded`` table with its reason, so
nothing is silently dropped.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

#: columns of the labelled-feedback table (one row per trusted request)
LABEL_COLUMNS = (
    "request_id",
    "confirmed_code",
    "label_category",
    "trust",
    "n_confirmations",
    "confirmed_by",
    "first_confirmed_at",
    "confirmed_at",
    "model_version",
    "confirmed_rank",
)
#: columns of the excluded-feedback table (one row per request left out)
EXCLUDED_COLUMNS = ("request_id", "n_confirmations", "codes", "reason")
REQUIRED = ("request_id", "received_at", "user_id", "role", "confirmed_code", "model_version")


def empty_labels() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The labelled and excluded tables without rows."""
    return pd.DataFrame(columns=list(LABEL_COLUMNS)), pd.DataFrame(columns=list(EXCLUDED_COLUMNS))


def check_feedback(feedback: pd.DataFrame) -> None:
    """Raise a ``ValueError`` naming the missing columns or the rows with empty fields."""
    missing = [c for c in REQUIRED if c not in feedback.columns]
    if missing:
        raise ValueError(f"feedback table lacks column(s) {missing}: is it serving's table?")
    for column in ("request_id", "user_id", "role", "confirmed_code"):
        empty = feedback[column].isna() | (feedback[column].astype(str).str.strip() == "")
        if empty.any():
            ids = feedback.loc[empty, "request_id"].astype(str).head(5).tolist()
            raise ValueError(f"feedback.{column} is empty in {int(empty.sum())} row(s): {ids}")


def _judge(rows: pd.DataFrame, rule: dict[str, Any]) -> tuple[str | None, str, str]:
    """(code or None, trust or '', reason) for one request's latest-per-user rows."""
    trusted = rows[rows["role"].isin(rule["trusted_roles"])]
    if not trusted.empty:
        latest = trusted.sort_values("received_at").iloc[-1]
        return str(latest["confirmed_code"]), f"role:{latest['role']}", ""
    clinicians = rows[rows["role"].isin(rule["clinician_roles"])]
    codes = sorted(clinicians["confirmed_code"].astype(str).unique())
    if len(codes) > 1:
        return None, "", f"discordant confirmations {codes}"
    needed = int(rule["concordant_clinicians"])
    if len(codes) == 1 and clinicians["user_id"].nunique() >= needed:
        return codes[0], f"concordant:{clinicians['user_id'].nunique()}", ""
    roles = sorted(rows["role"].astype(str).unique())
    return (
        None,
        "",
        f"{clinicians['user_id'].nunique()} clinician confirmation(s) of roles {roles}; "
        f"needs {needed} concordant clinicians or one of {list(rule['trusted_roles'])}",
    )


def label_feedback(
    feedback: pd.DataFrame | None, common_codes: set[str], rule: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(labelled, excluded)``: one row per request of ``feedback``, in one of the two.

    ``label_category`` is ``COMMON`` for a code of ``common_codes`` (the catalogue's
    common diseases) and ``RARE`` otherwise. ``confirmed_by`` lists the users whose
    confirmation counted (JSON); ``model_version`` and ``confirmed_rank`` are those of the
    prediction the feedback refers to.
    """
    if feedback is None or feedback.empty:
        return empty_labels()
    check_feedback(feedback)
    frame = feedback.copy()
    frame["received_at"] = pd.to_datetime(frame["received_at"], utc=True)
    latest = frame.sort_values("received_at").groupby(["request_id", "user_id"]).tail(1)
    counts = frame.groupby("request_id").size()
    labelled, excluded = [], []
    for request_id, rows in latest.groupby("request_id", sort=True):
        code, trust, reason = _judge(rows, rule)
        if code is None:
            excluded.append(
                {
                    "request_id": request_id,
                    "n_confirmations": int(counts[request_id]),
                    "codes": json.dumps(sorted(rows["confirmed_code"].astype(str).unique())),
                    "reason": reason,
                }
            )
            continue
        agreeing = rows[rows["confirmed_code"].astype(str) == code].sort_values("received_at")
        last = agreeing.iloc[-1]
        version = None if pd.isna(last["model_version"]) else str(last["model_version"])
        labelled.append(
            {
                "request_id": request_id,
                "confirmed_code": code,
                "label_category": "COMMON" if code in common_codes else "RARE",
                "trust": trust,
                "n_confirmations": int(counts[request_id]),
                "confirmed_by": json.dumps(sorted(agreeing["user_id"].astype(str).unique())),
                "first_confirmed_at": agreeing["received_at"].iloc[0],
                "confirmed_at": last["received_at"],
                "model_version": version,
                "confirmed_rank": last.get("confirmed_rank"),
            }
        )
    return (
        pd.DataFrame(labelled, columns=list(LABEL_COLUMNS)),
        pd.DataFrame(excluded, columns=list(EXCLUDED_COLUMNS)),
    )


def new_label_counts(labelled: pd.DataFrame, since: pd.Timestamp | None) -> dict[str, int]:
    """Trusted labels confirmed after ``since`` (all of them when None), by category."""
    if labelled.empty:
        return {"COMMON": 0, "RARE": 0}
    recent = labelled
    if since is not None:
        recent = labelled[pd.to_datetime(labelled["confirmed_at"], utc=True) > since]
    counts = recent["label_category"].value_counts()
    return {"COMMON": int(counts.get("COMMON", 0)), "RARE": int(counts.get("RARE", 0))}
