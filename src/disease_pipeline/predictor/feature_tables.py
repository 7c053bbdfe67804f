"""Validation of the ``tables`` dict and its conversion to numpy arrays for feature building.

Every child row points at its encounter by position (``codes``), so each feature block
is a handful of ``np.bincount``-style reductions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from disease_pipeline.knowledge.hpo import load_ontology
from disease_pipeline.predictor.feature_dfs import Children

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "encounters": ("encounter_id", "start", "age_years", "sex"),
    "symptoms": ("encounter_id", "hpo_id", "present", "severity", "onset_days"),
    "vitals": ("encounter_id", "loinc", "value"),
    "labs": ("encounter_id", "loinc", "value"),
    "diagnoses": ("encounter_id", "code", "role"),
}


@dataclass
class Prepared:
    """Validated tables as numpy arrays; children rows point at encounters by position."""

    encounter_ids: pd.Index
    age: np.ndarray
    sex: np.ndarray
    start: pd.DatetimeIndex
    children: Children

    @property
    def n(self) -> int:
        return len(self.encounter_ids)


def _numeric(frame: pd.DataFrame, table: str, column: str) -> np.ndarray:
    """``table.column`` as a float array (null → NaN); error naming the first bad value."""
    series = frame[column]
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=float, na_value=np.nan)
    try:
        return np.asarray(series.to_numpy(), dtype=float)
    except (TypeError, ValueError):
        values = pd.to_numeric(series, errors="coerce")
        bad = values.isna() & series.notna()
        if bad.any():
            raise ValueError(
                f"{table}.{column}: non-numeric value {series[bad].iloc[0]!r} "
                f"({int(bad.sum())} rows)"
            ) from None
        return values.to_numpy(dtype=float, na_value=np.nan)


def _strings(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy().astype(str).astype(object)


def _utc(values: pd.Series) -> pd.DatetimeIndex:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return pd.DatetimeIndex(values).tz_convert("UTC")
    try:
        return pd.DatetimeIndex(pd.to_datetime(values, utc=True, format="mixed"))
    except (ValueError, TypeError) as error:
        raise ValueError(f"encounters.start: not a date-time ({error})") from error


def prepare_tables(tables: dict[str, pd.DataFrame]) -> Prepared:
    """Check the columns of ``tables`` and turn them into :class:`Prepared` arrays.

    Excluded symptoms keep no severity or onset. Child rows of unknown encounters are
    ignored. Obsolete HPO ids are replaced by their current id.

    Raises:
        ValueError: a table or column is missing, an id is duplicated or a value is invalid.
    """
    for table, columns in REQUIRED_COLUMNS.items():
        if table not in tables:
            raise ValueError(f"tables: missing table {table!r}")
        missing = [c for c in columns if c not in tables[table].columns]
        if missing:
            raise ValueError(f"{table}: missing columns {missing}")
    enc = tables["encounters"]
    ids = pd.Index(_strings(enc, "encounter_id"), name="encounter_id")
    if ids.has_duplicates:
        raise ValueError(f"encounters.encounter_id: duplicated id {ids[ids.duplicated()][0]!r}")
    sex = np.char.lower(enc["sex"].fillna("unknown").to_numpy().astype(str)).astype(object)

    position = {eid: i for i, eid in enumerate(ids)}

    def positions(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        keys = _strings(frame, "encounter_id")
        codes = np.fromiter((position.get(k, -1) for k in keys), dtype=int, count=len(keys))
        return codes, codes >= 0

    children: Children = {}
    sym = tables["symptoms"]
    codes, keep = positions(sym)
    present_raw = sym["present"].to_numpy()
    if pd.isna(present_raw).any():
        raise ValueError("symptoms.present: null values (expected True/False)")
    present = present_raw.astype(bool)[keep]
    onto = load_ontology()
    terms = _strings(sym, "hpo_id")[keep]
    resolved = {t: onto.resolve(t) or t for t in set(terms)}
    severity = _numeric(sym, "symptoms", "severity")[keep]
    onset = _numeric(sym, "symptoms", "onset_days")[keep]
    children["symptoms"] = {
        "codes": codes[keep],
        "hpo_id": np.array([resolved[t] for t in terms], dtype=object),
        "present": present.astype(float),
        "excluded": (~present).astype(float),
        "severity": np.where(present, severity, np.nan),
        "onset_days": np.where(present, onset, np.nan),
    }
    for table in ("vitals", "labs"):
        frame = tables[table]
        codes, keep = positions(frame)
        children[table] = {
            "codes": codes[keep],
            "loinc": _strings(frame, "loinc")[keep],
            "value": _numeric(frame, table, "value")[keep],
        }
    dx = tables["diagnoses"]
    dx = dx[dx["role"].to_numpy() == "comorbidity"]
    codes, keep = positions(dx)
    category = [c.upper().replace(".", "")[:3] for c in _strings(dx, "code")[keep]]
    children["comorbidities"] = {"codes": codes[keep], "code": np.array(category, dtype=object)}
    age = _numeric(enc, "encounters", "age_years")
    return Prepared(ids, age, sex, _utc(enc["start"]), children)


def pair_matrix(codes, terms, n, width, lookup, *, binary=True) -> np.ndarray:
    """(n, width) matrix: for each row (encounter ``code``, ``term``), mark ``lookup(term)``."""
    out = np.zeros((n, width))
    if len(codes) == 0 or width == 0:
        return out
    unique, inverse = np.unique(terms.astype(str), return_inverse=True)
    targets = [lookup(term) for term in unique]
    sizes = np.array([len(t) for t in targets])[inverse]
    rows = np.repeat(codes, sizes)
    cols = np.concatenate([targets[i] for i in inverse]).astype(int)
    if binary:
        out[rows, cols] = 1.0
    else:
        np.add.at(out, (rows, cols), 1.0)
    return out
