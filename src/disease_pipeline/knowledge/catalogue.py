"""The curated tables kept in the repo: common diseases and LOINC labs/vitals.

``data/common_diseases.yaml`` — common conditions with ICD-10 code, prevalence,
age/sex pattern, seasonality, HPO symptom frequencies, vital/lab shifts, severity.
``data/loinc_labs.yaml`` — LOINC codes with canonical UCUM unit, alternative units
and conversion factors, normal and physiologically plausible ranges.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

import pandas as pd
import yaml

#: A disease is RARE when its prevalence is under this many cases per 10,000.
RARE_PREVALENCE_PER_10K = 5.0

ICD10_PATTERN = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")


class UnitConversionError(ValueError):
    """A lab or vital value whose unit cannot be converted to the canonical unit."""


def _read_yaml(name: str) -> list[dict]:
    text = (files("disease_pipeline.knowledge") / "data" / name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


@cache
def load_common_diseases() -> pd.DataFrame:
    """Common-disease catalogue, one row per disease, indexed by nothing (``icd10`` column).

    Adds ``category`` (COMMON/RARE by :data:`RARE_PREVALENCE_PER_10K`).
    Callers must not mutate the returned frame.
    """
    table = pd.DataFrame(_read_yaml("common_diseases.yaml"))
    table["category"] = (table["prevalence_per_10k"] < RARE_PREVALENCE_PER_10K).map(
        {True: "RARE", False: "COMMON"}
    )
    return table


@cache
def load_lab_table() -> pd.DataFrame:
    """LOINC labs and vital signs, one row per LOINC code."""
    table = pd.DataFrame(_read_yaml("loinc_labs.yaml"))
    if "affine" not in table:
        table["affine"] = None
    table["affine"] = table["affine"].map(lambda a: a if isinstance(a, dict) else {})
    return table


@cache
def _lab_index() -> dict[str, dict]:
    return {row["loinc"]: row for row in load_lab_table().to_dict("records")}


def normalise_unit(unit: str) -> str:
    """Spelling variants of UCUM units seen in exports (``mg/dl`` → ``mg/dL``)."""
    cleaned = (unit or "").strip()
    aliases = {
        "mg/dl": "mg/dL",
        "g/dl": "g/dL",
        "mmol/l": "mmol/L",
        "umol/l": "umol/L",
        "µmol/l": "umol/L",
        "µmol/L": "umol/L",
        "g/l": "g/L",
        "mg/l": "mg/L",
        "ng/ml": "ng/mL",
        "ng/l": "ng/L",
        "pg/ml": "pg/mL",
        "meq/l": "meq/L",
        "u/l": "U/L",
        "iu/l": "U/L",
        "°c": "Cel",
        "c": "Cel",
        "°f": "[degF]",
        "f": "[degF]",
        "bpm": "/min",
        "mmhg": "mm[Hg]",
    }
    return aliases.get(cleaned.lower(), cleaned)


def to_canonical(loinc: str, value: float, unit: str) -> float:
    """Convert ``value`` in ``unit`` to the canonical UCUM unit of ``loinc``.

    Raises:
        UnitConversionError: the LOINC code is unknown or the unit has no conversion.
    """
    row = _lab_index().get(loinc)
    if row is None:
        raise UnitConversionError(f"loinc {loinc!r}: not in the LOINC table")
    spelled = normalise_unit(unit)
    if spelled in row["units"]:
        return float(value) * float(row["units"][spelled])
    if spelled in row["affine"]:
        affine = row["affine"][spelled]
        return float(value) * float(affine["scale"]) + float(affine["offset"])
    known = sorted([*row["units"], *row["affine"]])
    raise UnitConversionError(
        f"loinc {loinc!r}: unit {unit!r} is not convertible to {row['canonical_unit']!r} "
        f"(known units: {', '.join(known)})"
    )


def from_canonical(loinc: str, value: float, unit: str) -> float:
    """Inverse of :func:`to_canonical`: express a canonical value in ``unit``."""
    row = _lab_index().get(loinc)
    if row is None:
        raise UnitConversionError(f"loinc {loinc!r}: not in the LOINC table")
    spelled = normalise_unit(unit)
    if spelled in row["units"]:
        return float(value) / float(row["units"][spelled])
    if spelled in row["affine"]:
        affine = row["affine"][spelled]
        return (float(value) - float(affine["offset"])) / float(affine["scale"])
    raise UnitConversionError(f"loinc {loinc!r}: unit {unit!r} is not convertible")


def normalise_icd10(code: str) -> str:
    """Real-world ICD-10 spelling to the canonical form: ``j18`` → ``J18``, ``e119`` → ``E11.9``.

    Raises:
        ValueError: the code is not a well-formed ICD-10 code after normalisation.
    """
    cleaned = re.sub(r"\s+", "", str(code or "")).upper()
    if "." not in cleaned and len(cleaned) > 3:
        cleaned = f"{cleaned[:3]}.{cleaned[3:]}"
    if not ICD10_PATTERN.match(cleaned):
        raise ValueError(f"ICD-10 code {code!r} is malformed")
    return cleaned
