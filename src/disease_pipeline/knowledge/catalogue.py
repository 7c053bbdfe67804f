"""The curated tables kept in the repo: common diseases and LOINC labs/vitals.

``data/common_diseases.yaml`` — common conditions with ICD-10 code, prevalence,
age/sex pattern, seasonality, HPO symptom frequencies, vital/lab shifts, severity and,
for chronic or subacute conditions, the time from symptom onset to presentation
(``onset_days``, validated on load).
``data/loinc_labs.yaml`` — LOINC codes with canonical UCUM unit, alternative units
and conversion factors, normal and physiologically plausible ranges.
Names of other ICD-10 codes (comorbidities) come from the ICD-10-CM tabular list
bundled with ``simple_icd_10_cm`` (CMS data, public domain; MIT package).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Any

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


#: Keys of a disease's optional ``onset_days`` block (log-normal days since onset).
ONSET_KEYS = ("median", "sigma")


def _positive_or_zero(value: Any, *, strict: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return value > 0 if strict else value >= 0


def _onset_block(icd10: str, block: Any) -> dict[str, float] | None:
    """The validated ``onset_days`` block of one disease (None when the disease has none).

    Raises:
        ValueError: naming the disease and the field (``median`` > 0, ``sigma`` >= 0).
    """
    if block is None:
        return None
    where = f"common disease {icd10}: onset_days"
    if not isinstance(block, Mapping):
        raise ValueError(f"{where} must be a mapping {{median, sigma}}, got {block!r}")
    unknown = sorted(set(block) - set(ONSET_KEYS))
    missing = [key for key in ONSET_KEYS if key not in block]
    if unknown or missing:
        raise ValueError(
            f"{where}: unknown key(s) {unknown or '-'}, missing key(s) {missing or '-'}"
        )
    if not _positive_or_zero(block["median"], strict=True):
        raise ValueError(
            f"{where}.median must be a positive number of days, got {block['median']!r}"
        )
    if not _positive_or_zero(block["sigma"], strict=False):
        raise ValueError(f"{where}.sigma must be a number >= 0, got {block['sigma']!r}")
    return {"median": float(block["median"]), "sigma": float(block["sigma"])}


def common_diseases_table(records: list[dict]) -> pd.DataFrame:
    """Catalogue records (as in ``common_diseases.yaml``) → :func:`load_common_diseases`'s table.

    ``onset_days`` is a ``{median, sigma}`` dict or None (use the simulator's acute default).

    Raises:
        ValueError: a disease's ``onset_days`` block is malformed (disease and field named).
    """
    rows = [
        {**record, "onset_days": _onset_block(str(record.get("icd10")), record.get("onset_days"))}
        for record in records
    ]
    table = pd.DataFrame(rows)
    table["category"] = (table["prevalence_per_10k"] < RARE_PREVALENCE_PER_10K).map(
        {True: "RARE", False: "COMMON"}
    )
    return table


@cache
def load_common_diseases() -> pd.DataFrame:
    """Common-disease catalogue, one row per disease, indexed by nothing (``icd10`` column).

    Adds ``category`` (COMMON/RARE by :data:`RARE_PREVALENCE_PER_10K`); ``onset_days`` is a
    validated ``{median, sigma}`` dict or None (see :func:`common_diseases_table`).
    Callers must not mutate the returned frame.
    """
    return common_diseases_table(_read_yaml("common_diseases.yaml"))


@cache
def load_related_findings() -> dict[str, tuple[str, ...]]:
    """HPO id → the other members of its ``data/related_findings.yaml`` groups (findings
    recorded interchangeably at a visit that the ontology files in different branches).

    Raises:
        ValueError: a member is not a live HPO phenotype of the name given.
    """
    from disease_pipeline.knowledge.hpo import load_ontology

    onto = load_ontology()
    related: dict[str, list[str]] = {}
    for i, group in enumerate(_read_yaml("related_findings.yaml")):
        members = []
        for member in group["members"]:
            try:
                members.append(onto.named_phenotype(str(member["hpo"]), member["name"]))
            except ValueError as error:
                where = f"related_findings.yaml group {i} ({group.get('reason')}): member"
                raise ValueError(f"{where} {error}") from None
        for term in members:
            others = related.setdefault(term, [])
            others.extend(m for m in members if m != term and m not in others)
    return {term: tuple(others) for term, others in related.items()}


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


#: Spelling variants of UCUM units seen in exports (lower-cased) → the UCUM unit.
UNIT_ALIASES: dict[str, str] = {
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


def normalise_unit(unit: str) -> str:
    """Spelling variants of UCUM units seen in exports (``mg/dl`` → ``mg/dL``)."""
    cleaned = (unit or "").strip()
    return UNIT_ALIASES.get(cleaned.lower(), cleaned)


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


@cache
def icd10_name(code: str) -> str | None:
    """The ICD-10-CM name of a canonical ICD-10 code or category (``I10`` → "Essential
    (primary) hypertension", ``Z72.0`` → "Tobacco use"); None when ICD-10-CM lacks it
    (WHO-only or malformed codes). For codes outside the common-disease catalogue."""
    import simple_icd_10_cm as icd10cm  # ~1 s to load its tables: only when asked

    text = str(code or "").strip().upper()
    return icd10cm.get_description(text) if icd10cm.is_valid_item(text) else None
