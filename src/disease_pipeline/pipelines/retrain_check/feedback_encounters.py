"""Trusted feedback labels joined to their logged predictions → labelled encounters in
the warehouse's shape, an extra source of the ``train`` pipeline (no Kedro, no I/O).

The service's prediction log (``serving/prediction_log.py``, table ``prediction_log``)
keeps, per ``request_id``, the checked record the model saw (without patient id,
encounter id or note), the pseudonymised patient and the time. A trusted label
(``feedback_labels.py``) and its logged record become one encounter:

- ``encounters``: ``encounter_id = feedback-<request_id>``, ``patient_id`` = the
  service's pseudonym (or the encounter id when the request had none), ``source =
  feedback``, ``start`` = when it was predicted, age and sex as sent;
- ``symptoms``, ``vitals``, ``labs``, comorbidities: from the record
  (``records.records_to_tables``, the service's own conversion);
- ``diagnoses``: the confirmed code as the primary diagnosis, with its category and no
  severity (feedback confirms a diagnosis, not a severity: the severity model skips
  those rows);
- ``provenance``: who confirmed it, when, under which trust rule, and which model version
  had answered.

A trusted label whose prediction is not in the log (retention, logging off) is
returned in the ``unmatched`` table with that reason.
"""

from __future__ import annotations

import pandas as pd

from disease_pipeline.core.columns import FEEDBACK_ENCOUNTER_PREFIX
from disease_pipeline.records import PatientRecord, records_to_tables

TABLES = ("encounters", "symptoms", "vitals", "labs", "diagnoses")
PROVENANCE_COLUMNS = (
    "encounter_id",
    "request_id",
    "trust",
    "confirmed_by",
    "confirmed_at",
    "model_version",
    "predicted_at",
)
#: source of the encounters built from feedback (``prm_encounters.source``)
SOURCE = "feedback"
_RARE_PREFIXES = {"ORPHA": "ORPHA", "OMIM": "OMIM"}


def code_system(code: str) -> str:
    """``ORPHA:558`` → ``ORPHA``, ``OMIM:219700`` → ``OMIM``, anything else → ``ICD10``."""
    prefix = code.split(":", 1)[0].upper() if ":" in code else ""
    return _RARE_PREFIXES.get(prefix, "ICD10")


def _empty() -> dict[str, pd.DataFrame]:
    tables = {name: frame.iloc[:0] for name, frame in records_to_tables([]).items()}
    tables["encounters"] = pd.DataFrame(
        columns=["encounter_id", "patient_id", "source", "start", "age_years", "sex"]
    )
    tables["diagnoses"] = pd.DataFrame(
        columns=["encounter_id", "code", "system", "role", "category", "severity"]
    )
    tables["provenance"] = pd.DataFrame(columns=list(PROVENANCE_COLUMNS))
    return tables


def feedback_encounters(
    labelled: pd.DataFrame, prediction_log: pd.DataFrame | None
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """``(tables, unmatched)``: the warehouse-shaped tables of the labelled encounters
    (plus ``provenance``) and the trusted labels without a logged prediction."""
    unmatched_columns = ["request_id", "reason"]
    if labelled.empty:
        return _empty(), pd.DataFrame(columns=unmatched_columns)
    if prediction_log is None or prediction_log.empty:
        reason = "no prediction log yet (serving.prediction_log)"
        return _empty(), pd.DataFrame({"request_id": labelled["request_id"], "reason": reason})
    log = prediction_log.dropna(subset=["request_id"]).drop_duplicates("request_id", keep="last")
    joined = labelled.merge(
        log[["request_id", "logged_at", "patient", "record"]], on="request_id", how="left"
    )
    missing = joined["record"].isna()
    unmatched = pd.DataFrame(
        {
            "request_id": joined.loc[missing, "request_id"],
            "reason": "prediction not in the prediction log (retention or logging off)",
        }
    )
    joined = joined.loc[~missing].reset_index(drop=True)
    if joined.empty:
        return _empty(), unmatched.reset_index(drop=True)
    ids = FEEDBACK_ENCOUNTER_PREFIX + joined["request_id"].astype(str)
    records = [
        PatientRecord.model_validate_json(text).model_copy(
            update={
                "encounter_id": encounter_id,
                "patient_id": patient if isinstance(patient, str) and patient else encounter_id,
                "encounter_date": pd.Timestamp(when).to_pydatetime(),
            }
        )
        for text, encounter_id, patient, when in zip(
            joined["record"], ids, joined["patient"], joined["logged_at"], strict=True
        )
    ]
    tables = records_to_tables(records)
    tables["encounters"] = tables["encounters"].assign(source=SOURCE)
    codes = joined["confirmed_code"].astype(str)
    primary = pd.DataFrame(
        {
            "encounter_id": ids,
            "code": codes,
            "system": codes.map(code_system),
            "role": "primary",
            "category": joined["label_category"].to_numpy(),
            "severity": None,
        }
    )
    tables["diagnoses"] = pd.concat([tables["diagnoses"], primary], ignore_index=True)
    tables["provenance"] = pd.DataFrame(
        {
            "encounter_id": ids,
            "request_id": joined["request_id"],
            "trust": joined["trust"],
            "confirmed_by": joined["confirmed_by"],
            "confirmed_at": joined["confirmed_at"],
            "model_version": joined["model_version"],
            "predicted_at": joined["logged_at"],
        }
    )
    return tables, unmatched.reset_index(drop=True)
