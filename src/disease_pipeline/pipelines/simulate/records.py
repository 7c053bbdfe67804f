"""The LIS lab-results CSV and the admission-form JSONL, with their entry errors and duplicates."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.pipelines.simulate import corrupt
from disease_pipeline.pipelines.simulate.common import (
    format_numbers,
    group_offsets,
    iso_datetimes,
    stream,
)

LIS_COLUMNS = [
    "accession_id",
    "mrn",
    "encounter_id",
    "loinc",
    "test_name",
    "value",
    "unit",
    "collected_at",
]
DUPLICATE_WINDOW = 40  # a re-sent record arrives up to this many records after the original


def _final_lines(
    rng: np.random.Generator, n: int, rate: float, errors: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order of records plus duplicates, and the 1-based line of each original and copy."""
    originals, keys = corrupt.later_positions(rng, n, rate, errors, DUPLICATE_WINDOW)
    order = corrupt.interleave(n, originals, keys)
    line_of = np.empty(len(order), dtype=int)
    line_of[order] = np.arange(1, len(order) + 1)
    return order, line_of, originals


def build_lab_results(
    cfg: dict[str, Any],
    patients: pd.DataFrame,
    encounters: pd.DataFrame,
    labs: pd.DataFrame,
    lab_table: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The LIS export (all columns text, as sent) and its ground-truth rows."""
    rng = stream(cfg["seed"], "lis")
    rows = {r["loinc"]: r for r in lab_table.to_dict("records")}
    enc = labs["encounter"].to_numpy()
    collected_s = encounters["start_s"].to_numpy()[enc] + 60 * labs["minutes"].to_numpy()
    order = np.lexsort((labs["loinc"].to_numpy(), enc, collected_s))
    labs = labs.iloc[order].reset_index(drop=True)
    enc, collected_s = enc[order], collected_s[order]
    accession = rng.choice(900_000_000, size=len(encounters), replace=False) + 100_000_000
    table = pd.DataFrame(
        {
            "accession_id": np.char.add("A", accession.astype(str))[enc],
            "mrn": patients["mrn"].to_numpy()[encounters["patient"].to_numpy()[enc]],
            "encounter_id": encounters["encounter_id"].to_numpy()[enc],
            "loinc": labs["loinc"].to_numpy(),
            "test_name": [rows[code]["name"] for code in labs["loinc"]],
            "value": format_numbers(labs["value"].to_numpy(), labs["decimals"].to_numpy()),
            "unit": labs["unit"].to_numpy(),
            "collected_at": iso_datetimes(collected_s, str(cfg["timezone"])),
        }
    )
    n = len(table)
    error_rows = np.flatnonzero(rng.random(n) < cfg["errors"]["rate"])
    kinds = rng.integers(0, 3, size=len(error_rows))
    truth_rows = [
        (
            r,
            *_corrupt_lis_row(
                rng,
                table,
                r,
                kind,
                decimals=int(labs.at[r, "decimals"]),
                row=rows[table.at[r, "loinc"]],
            ),
        )  # fmt: skip
        for r, kind in zip(error_rows.tolist(), kinds.tolist(), strict=True)
    ]
    is_error = np.zeros(n, dtype=bool)
    is_error[error_rows] = True
    order, line_of, originals = _final_lines(rng, n, cfg["duplicates"]["rate"], is_error)
    source = np.where(order < n, order, originals[np.maximum(order - n, 0)])
    out = table.iloc[source].reset_index(drop=True)
    truth = [("lis", int(line_of[r]), -1, "error", field, desc) for r, field, desc in truth_rows]
    for j, original in enumerate(originals.tolist()):
        truth.append(
            (
                "lis",
                int(line_of[n + j]),
                -1,
                "duplicate",
                "row",
                f"re-sent copy of line {int(line_of[original])}",
            )
        )
    return out[LIS_COLUMNS], corrupt.ground_truth(truth)


def _corrupt_lis_row(
    rng: np.random.Generator, table: pd.DataFrame, r: int, kind: int, *, decimals: int, row: dict
) -> tuple[str, str]:
    """Inject one entry error into LIS row ``r`` in place; returns (column, description)."""
    unit = str(table.at[r, "unit"])
    if kind == 0:
        value, desc = corrupt.impossible_value(rng, row, unit, decimals)
        previous = table.at[r, "value"]
        table.at[r, "value"] = f"{value:.{decimals}f}"
        return "value", f"{desc} (was {previous})"
    if kind == 1:
        table.at[r, "unit"] = bad = corrupt.wrong_unit(rng, row)
        return "unit", f"{row['name']}: unit {bad!r} not convertible (was {unit})"
    previous = str(table.at[r, "collected_at"])
    table.at[r, "collected_at"] = bad = corrupt.malformed_datetime(rng, previous)
    return "collected_at", f"malformed date-time {bad!r} (was {previous})"


def _messy_icd(rng: np.random.Generator, code: str, share: float) -> str:
    if rng.random() >= share:
        return code
    variant = int(rng.integers(3))
    if variant == 0:
        return code.lower()
    if variant == 1:
        return code.replace(".", "")
    return code.replace(".", "").lower()


def build_admission_forms(
    cfg: dict[str, Any],
    patients: pd.DataFrame,
    encounters: pd.DataFrame,
    symptoms: pd.DataFrame,
    comorbidities: pd.DataFrame,
    *,
    names: dict[str, str],
) -> tuple[list[str], pd.DataFrame]:
    """Admission-form JSON lines (one per encounter, by submission time) and ground truth."""
    rng = stream(cfg["seed"], "forms")
    n = len(encounters)
    submitted_s = encounters["start_s"].to_numpy() + rng.integers(-1800, 900, size=n)
    order = np.argsort(submitted_s, kind="stable")
    submitted = iso_datetimes(submitted_s, str(cfg["timezone"]))
    reported = symptoms[symptoms["reported"]]
    s_off = group_offsets(reported["encounter"].to_numpy(), n)
    rep = reported[["hpo_id", "form_system", "form_code", "onset_days"]].to_numpy().tolist()
    c_off = group_offsets(comorbidities["encounter"].to_numpy(), n)
    comorb = comorbidities["code"].tolist()
    patient = encounters["patient"].to_numpy()
    full_name = (patients["given_name"] + " " + patients["family_name"]).to_numpy()
    mrn, smoker = patients["mrn"].to_numpy(), patients["smoker"].to_numpy()
    enc_id = encounters["encounter_id"].to_numpy()
    messy = cfg["comorbidities"]["messy_share"]
    is_error = rng.random(n) < cfg["errors"]["rate"]
    docs: list[str] = []
    truth_rows: list[tuple[int, str, str]] = []
    for line, i in enumerate(order.tolist()):
        symptoms_out = [
            {
                "code": code,
                "system": system,
                "label": names[hpo],
                "duration_days": int(onset) if onset >= 0 else None,
            }
            for hpo, system, code, onset in rep[s_off[i] : s_off[i + 1]]
        ]
        doc = {
            "form_id": f"F-{line + 1:06d}",
            "encounter_id": enc_id[i],
            "mrn": mrn[patient[i]],
            "patient_name": full_name[patient[i]],
            "submitted_at": str(submitted[i]),
            "reported_symptoms": symptoms_out,
            "comorbidities": [_messy_icd(rng, c, messy) for c in comorb[c_off[i] : c_off[i + 1]]],
            "smoker": bool(smoker[patient[i]]),
        }
        if is_error[line]:
            truth_rows.append((line, *_corrupt_form(rng, doc)))
        docs.append(json.dumps(doc, ensure_ascii=False))
    order2, line_of, originals = _final_lines(rng, n, cfg["duplicates"]["rate"], is_error)
    lines = [docs[k] if k < n else docs[originals[k - n]] for k in order2.tolist()]
    truth = [("forms", int(line_of[r]), -1, "error", field, desc) for r, field, desc in truth_rows]
    for j, original in enumerate(originals.tolist()):
        truth.append(
            (
                "forms",
                int(line_of[n + j]),
                -1,
                "duplicate",
                "document",
                f"re-sent copy of line {int(line_of[original])}",
            )
        )
    return lines, corrupt.ground_truth(truth)


def _corrupt_form(rng: np.random.Generator, doc: dict) -> tuple[str, str]:
    """Inject one entry error into ``doc`` in place; returns (field, description)."""
    hpo = [k for k, s in enumerate(doc["reported_symptoms"]) if s["system"] == "HPO"]
    options = (
        ["submitted_at"]
        + (["symptom"] if hpo else [])
        + (["comorbidity"] if doc["comorbidities"] else [])
    )
    choice = options[int(rng.integers(len(options)))]
    if choice == "symptom":
        k = hpo[int(rng.integers(len(hpo)))]
        good = doc["reported_symptoms"][k]["code"]
        doc["reported_symptoms"][k]["code"] = bad = corrupt.malformed_hpo(rng, good)
        return f"reported_symptoms[{k}].code", f"malformed HPO code {bad!r} (was {good})"
    if choice == "comorbidity":
        k = int(rng.integers(len(doc["comorbidities"])))
        good = doc["comorbidities"][k]
        doc["comorbidities"][k] = bad = corrupt.malformed_icd10(rng, good)
        return f"comorbidities[{k}]", f"malformed ICD-10 code {bad!r} (was {good})"
    good = doc["submitted_at"]
    doc["submitted_at"] = bad = corrupt.malformed_datetime(rng, good)
    return "submitted_at", f"malformed date-time {bad!r} (was {good})"
