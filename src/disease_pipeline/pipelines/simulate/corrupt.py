"""Entry errors and duplicates of the kind hospital exports contain.

Every corrupted value is *really* wrong by the project's own rules (the checks of
:mod:`disease_pipeline.knowledge.catalogue`): impossible values fall outside the LOINC
table's plausible range, wrong units have no conversion, malformed codes and dates
do not parse. The functions here only produce the bad values; the writers decide
where they go and record them in the ground truth.
"""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np
import pandas as pd

from disease_pipeline.knowledge.catalogue import (
    UnitConversionError,
    normalise_icd10,
    normalise_unit,
)
from disease_pipeline.pipelines.simulate.measurements import unit_options

HPO_PATTERN = re.compile(r"^HP:\d{7}$")
GROUND_TRUTH_COLUMNS = ["source", "line", "entry", "kind", "field", "description"]

#: Units that belong to no LOINC row of the table, or to a different kind of quantity.
FOREIGN_UNITS = (
    "mg",
    "kg",
    "mL",
    "cm",
    "g/mol",
    "IU",
    "mmol",
    "mg/kg",
    "s",
    "mm",
    "%",
    "kPa",
    "g/dL",
)


def wrong_unit(rng: np.random.Generator, row: dict) -> str:
    """A unit that cannot be converted to ``row``'s canonical unit."""
    known = {*row["units"], *row["affine"]}
    candidates = [u for u in FOREIGN_UNITS if normalise_unit(u) not in known]
    return str(candidates[int(rng.integers(len(candidates)))])


def impossible_canonical(rng: np.random.Generator, row: dict) -> float:
    """A value outside the plausible range of ``row``, in the canonical unit."""
    low, high = float(row["plausible"]["min"]), float(row["plausible"]["max"])
    if rng.random() < 0.5 or low <= 0:
        return high * float(rng.choice([3.0, 10.0, 100.0])) + 1.0
    return -abs(float(row["normal"]["mean"])) if rng.random() < 0.5 else 0.0


def impossible_value(
    rng: np.random.Generator, row: dict, unit: str, decimals: int
) -> tuple[float, str]:
    """An impossible value of ``row`` expressed in ``unit``, and its description."""
    options = {u: (scale, offset) for u, scale, offset in unit_options(row)}
    scale, offset = options[normalise_unit(unit)]
    value = round((impossible_canonical(rng, row) - offset) / scale, decimals)
    bounds = f"{row['plausible']['min']}-{row['plausible']['max']} {row['canonical_unit']}"
    return value, f"{row['name']} {value:.{decimals}f} {unit} outside plausible range {bounds}"


def malformed_hpo(rng: np.random.Generator, code: str) -> str:
    """A mistyped HPO id (``HP0001945``, ``HP:00O1945``, ``HP:000194``, …)."""
    digits = code.split(":", 1)[-1]
    variants = [
        f"HP{digits}",
        f"HP:{digits[:2]}O{digits[3:]}",
        f"HP:{digits[:-1]}",
        f"HP:{digits}{digits[-1]}",
        f"HP_{digits}",
    ]
    return variants[int(rng.integers(len(variants)))]


def malformed_icd10(rng: np.random.Generator, code: str) -> str:
    """A mistyped ICD-10 code that no spelling normalisation can repair."""
    letter, rest = code[0], code[1:]
    variants = [
        f"{letter}{rest}..",
        f"{rest.replace('.', '')}",
        f"{letter}{letter}{rest}",
        f"{code}.",
        f"{letter}{rest[:1]}",
    ]
    for start in range(len(variants)):
        candidate = variants[(int(rng.integers(len(variants))) + start) % len(variants)]
        if not is_valid_icd10(candidate):
            return candidate
    return f"{code}??"


def malformed_datetime(rng: np.random.Generator, iso: str) -> str:
    """A date-time no ISO parser accepts (day 32, month 13, ``05/01/2023 09:12``, …)."""
    year, month, day, clock = iso[:4], iso[5:7], iso[8:10], iso[11:16]
    variants = [
        f"{year}-{month}-32T{iso[11:]}",
        f"{year}-13-{day}T{iso[11:]}",
        f"{day}/{month}/{year} {clock}",
        f"{int(day)} {_MONTHS[int(month) - 1]} {year} {clock}",
    ]
    return variants[int(rng.integers(len(variants)))]


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def is_valid_icd10(code: str) -> bool:
    """True when ``code`` normalises to a well-formed ICD-10 code."""
    try:
        normalise_icd10(code)
    except ValueError:
        return False
    return True


def is_valid_datetime(text: str) -> bool:
    """True when ``text`` is an ISO 8601 date-time."""
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def is_convertible(to_canonical, loinc: str, value: float, unit: str) -> bool:
    """True when ``to_canonical(loinc, value, unit)`` succeeds."""
    try:
        to_canonical(loinc, value, unit)
    except UnitConversionError:
        return False
    return True


def later_positions(
    rng: np.random.Generator, n: int, rate: float, exclude: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Records to duplicate and where their copies go.

    Returns:
        ``originals`` (indices, not in ``exclude``) and ``keys``: sort keys placing each
        copy 1..``window`` records after its original (originals have key = index).
    """
    chosen = (rng.random(n) < rate) & ~exclude
    originals = np.flatnonzero(chosen)
    keys = originals + rng.integers(1, window + 1, size=len(originals)) - 0.5
    return originals, np.minimum(keys, n - 0.5)


def interleave(n: int, originals: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Final order of ``n`` records plus copies: values < n are originals, >= n copies of
    ``originals[value - n]``."""
    all_keys = np.concatenate([np.arange(n, dtype=float), keys])
    return np.argsort(all_keys, kind="stable")


def ground_truth(rows: list[tuple]) -> pd.DataFrame:
    """Ground-truth rows as a frame with :data:`GROUND_TRUTH_COLUMNS`."""
    return pd.DataFrame(rows, columns=GROUND_TRUTH_COLUMNS).astype({"line": int, "entry": int})
