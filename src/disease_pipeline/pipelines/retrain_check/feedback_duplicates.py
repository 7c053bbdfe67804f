"""Feedback that repeats an exported encounter (no Kedro, no I/O).

A trusted feedback encounter (``feedback-<request_id>``) whose content key
(``retrain.comparison.content_key``, :func:`..retrain.content.content_keys`: the
findings, measurements, comorbidities, age and sex, rounded) equals an exported
encounter's is that visit sent again through the service:

- **duplicate**: an export with that content has the same diagnosis — the feedback
  encounter is dropped (the export already trains with that label, once);
- **conflict**: every export with that content has another diagnosis —
  ``on_conflict: keep_export`` drops the feedback encounter (the export's coded label
  stays, the conflict is listed for adjudication); ``keep_feedback`` keeps the
  clinician-confirmed label and leaves the export twins out of training (their ids in
  the ``superseded`` table the features pipeline drops);
- **kept**: no export has that content.

Every dropped or superseding row is listed by request id with its reason.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from disease_pipeline.pipelines.retrain.content import content_columns, content_keys

STATUSES = ("kept", "duplicate", "conflict")
ON_CONFLICT = ("keep_export", "keep_feedback")
LISTED_COLUMNS = ["request_id", "status", "action", "confirmed_code", "export_codes", "reason"]


def classify_feedback(
    feedback: pd.DataFrame, exports: pd.DataFrame, content: dict[str, Any]
) -> pd.DataFrame:
    """One row per feedback encounter: ``encounter_id, status, export_codes, export_ids``.

    ``feedback`` and ``exports`` are feature rows (``encounter_id``, ``label_disease``
    and feature columns); ``content``: ``prefixes`` of the compared columns and
    ``decimals``. ``export_codes`` are the diagnoses of the exports with the same
    content (sorted, ``|``-joined); ``export_ids`` the exports a conflict opposes.
    """
    out = pd.DataFrame(
        {
            "encounter_id": feedback["encounter_id"].astype(str).to_numpy(),
            "status": "kept",
            "export_codes": "",
        }
    )
    out["export_ids"] = [[] for _ in range(len(out))]
    columns = content_columns(feedback, exports, list(content["prefixes"]))
    if feedback.empty or exports.empty or not columns:
        return out
    decimals = int(content["decimals"])
    export_keys = pd.DataFrame(
        {
            "key": content_keys(exports, columns, decimals).to_numpy(),
            "encounter_id": exports["encounter_id"].astype(str).to_numpy(),
            "code": exports["label_disease"].astype(str).to_numpy(),
        }
    )
    by_key = export_keys.groupby("key")
    codes = by_key["code"].agg(lambda s: sorted(set(s)))
    keys = content_keys(feedback, columns, decimals).to_numpy()
    labels = feedback["label_disease"].astype(str).to_numpy()
    for i, (key, label) in enumerate(zip(keys, labels, strict=True)):
        if key not in codes.index:
            continue
        twins = export_keys[export_keys["key"] == key]
        out.at[i, "export_codes"] = "|".join(codes[key])
        if label in codes[key]:
            out.at[i, "status"] = "duplicate"
        else:
            out.at[i, "status"] = "conflict"
            out.at[i, "export_ids"] = twins["encounter_id"].tolist()
    return out


def apply_duplicate_policy(
    tables: dict[str, pd.DataFrame], decisions: pd.DataFrame, on_conflict: str
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, dict[str, int]]:
    """``(tables, listed, counts)``: the feedback tables without the dropped encounters
    (with ``superseded``: export ids left out of training), the dropped or superseding
    rows by request id (no other identifier), and the counts."""
    if on_conflict not in ON_CONFLICT:
        raise ValueError(f"retrain.feedback.duplicates.on_conflict: one of {ON_CONFLICT}")
    status = decisions.set_index("encounter_id")["status"]
    conflict = status == "conflict"
    drop_conflicts = on_conflict == "keep_export"
    dropped = set(status.index[(status == "duplicate") | (conflict & drop_conflicts)])
    out = {
        name: frame[~frame["encounter_id"].astype(str).isin(dropped)].reset_index(drop=True)
        for name, frame in tables.items()
        if name != "superseded"
    }
    superseded: list[str] = []
    if on_conflict == "keep_feedback":
        for ids in decisions.loc[decisions["status"] == "conflict", "export_ids"]:
            superseded.extend(ids)
    out["superseded"] = pd.DataFrame({"encounter_id": sorted(set(superseded))}, dtype=object)
    listed = _listed(tables, decisions, on_conflict)
    counts = {
        "feedback_encounters": int(len(status)),
        "duplicates_dropped": int((status == "duplicate").sum()),
        "conflicts": int(conflict.sum()),
        "conflicts_dropped": int(conflict.sum()) if on_conflict == "keep_export" else 0,
        "exports_superseded": len(set(superseded)),
        "kept": int(len(status) - len(dropped)),
    }
    return out, listed, counts


def _listed(
    tables: dict[str, pd.DataFrame], decisions: pd.DataFrame, on_conflict: str
) -> pd.DataFrame:
    """The duplicates and conflicts by request id, with the action taken and why."""
    rows = decisions[decisions["status"] != "kept"]
    if rows.empty:
        return pd.DataFrame(columns=LISTED_COLUMNS)
    request = tables["provenance"].set_index("encounter_id")["request_id"]
    diagnoses = tables["diagnoses"]
    primary = diagnoses[diagnoses["role"] == "primary"].drop_duplicates("encounter_id")
    confirmed = primary.set_index("encounter_id")["code"]
    duplicate = rows["status"] == "duplicate"
    keep_feedback = on_conflict == "keep_feedback"
    action = duplicate.map(
        {True: "dropped", False: "kept, export left out" if keep_feedback else "dropped"}
    )
    reason = duplicate.map(
        {
            True: "repeats an exported encounter with the same diagnosis",
            False: "repeats an exported encounter with another diagnosis (label conflict, "
            f"on_conflict: {on_conflict})",
        }
    )
    return pd.DataFrame(
        {
            "request_id": rows["encounter_id"].map(request).to_numpy(),
            "status": rows["status"].to_numpy(),
            "action": action.to_numpy(),
            "confirmed_code": rows["encounter_id"].map(confirmed).to_numpy(),
            "export_codes": rows["export_codes"].to_numpy(),
            "reason": reason.to_numpy(),
        }
    )
