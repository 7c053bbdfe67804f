"""Parity between evaluation and serving: the warehouse rows of an encounter turned back
into the API record a clinician would send, and the comparison of the scored table's row
with the predictor's answer to that record (``predict_records``, what the service calls).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.core.levels import SEVERITY_LEVELS

from .scoring import split_tables

_SEXES = ("female", "male", "other", "unknown")


def _optional(value: Any, cast: type) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return None
    return cast(value)


def _stamp(value: Any) -> str:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.isoformat()


def records_from_tables(
    tables: dict[str, pd.DataFrame], encounter_ids: list[str]
) -> list[dict[str, Any]]:
    """One PatientRecord-shaped dict per encounter, from its warehouse rows: age, sex,
    date, symptoms (HPO, present/absent, severity, onset), vitals, labs, comorbidities."""
    part = split_tables(tables, encounter_ids)
    by = {
        name: dict(tuple(part[name].groupby(part[name]["encounter_id"].astype(str))))
        for name in ("symptoms", "vitals", "labs", "diagnoses")
        if name in part
    }
    empty = pd.DataFrame()
    records = []
    for enc in part["encounters"].to_dict("records"):
        eid = str(enc["encounter_id"])
        symptoms = by.get("symptoms", {}).get(eid, empty)
        diagnoses = by.get("diagnoses", {}).get(eid, empty)
        if len(diagnoses):
            diagnoses = diagnoses[diagnoses["role"] == "comorbidity"]
        records.append(
            {
                "patient_id": str(enc["patient_id"]),
                "encounter_id": eid,
                "age": None if pd.isna(enc["age_years"]) else float(enc["age_years"]),
                "sex": enc["sex"] if enc.get("sex") in _SEXES else "unknown",
                "encounter_date": _stamp(enc["start"]),
                "symptoms": [
                    {
                        "code": str(row["hpo_id"]),
                        "system": "HPO",
                        "present": bool(row["present"]),
                        "severity": _optional(row.get("severity"), int),
                        "onset_days": _optional(row.get("onset_days"), float),
                    }
                    for row in symptoms.to_dict("records")
                ],
                **{
                    kind: [
                        {
                            "loinc": str(r["loinc"]),
                            "value": float(r["value"]),
                            "unit": str(r["unit"]),
                        }
                        for r in by.get(kind, {}).get(eid, empty).to_dict("records")
                    ]
                    for kind in ("vitals", "labs")
                },
                "comorbidities": [str(c) for c in diagnoses.get("code", [])],
            }
        )
    return records


def output_mismatches(
    scored: pd.DataFrame, outputs: list[dict[str, Any]], top_k: int, tolerance: float = 1e-9
) -> list[str]:
    """What differs between the scored table's rows (``model_output_*_predictions``) and
    the record path's outputs for the same encounters, in the same order: the ranked
    codes (first ``top_k``), their probabilities, P(rare) and the severity probabilities.
    Empty when they agree."""
    problems = []
    for row, out in zip(scored.to_dict("records"), outputs, strict=True):
        eid = row["encounter_id"]
        codes = [str(d["code"]) for d in out["differential"]][:top_k]
        probs = np.array([float(d["probability"]) for d in out["differential"]][:top_k])
        if list(row["ranked_codes"])[:top_k] != codes:
            problems.append(f"{eid}: ranking {list(row['ranked_codes'])[:top_k]} != {codes}")
        elif not np.allclose(
            np.asarray(row["ranked_probabilities"])[:top_k], probs, atol=tolerance
        ):
            problems.append(f"{eid}: differential probabilities differ")
        if abs(float(row["p_rare"]) - float(out["p_rare"])) > tolerance:
            problems.append(f"{eid}: p_rare {row['p_rare']} != {out['p_rare']}")
        severity = out["severity"]["probabilities"]
        for level in SEVERITY_LEVELS:
            if abs(float(row[f"p_severity__{level}"]) - float(severity[level])) > tolerance:
                problems.append(f"{eid}: P(severity {level}) differs")
    return problems
