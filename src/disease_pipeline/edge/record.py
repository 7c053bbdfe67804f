"""The patient record of ``patient.json``, checked and normalised as the full predictor
does (``records.PatientRecord`` then ``knowledge.record_rules`` in ``first`` mode):
SNOMED CT → HPO, obsolete HPO ids replaced, units converted to the canonical unit and
checked against the plausible range, ICD-10 spelled canonically. A problem raises
:class:`EdgeInputError` naming the field (``patient.labs[1].unit: …``); a well-formed
HPO id newer than the package's release is, in a present finding, read as its nearest
ancestor when the newer release's table has it (as the service), else ignored; noted.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from disease_pipeline.edge.ontology import Hpo

SEXES = ("female", "male", "other", "unknown")
FIELDS = {
    "patient_id", "encounter_id", "age", "sex", "encounter_date", "symptoms", "vitals",
    "labs", "comorbidities", "note", "site",
}  # fmt: skip
SYMPTOM_FIELDS = {"code", "system", "present", "severity", "onset_days"}
MEASUREMENT_FIELDS = {"loinc", "value", "unit"}


class EdgeInputError(ValueError):
    """A field of the patient record that cannot be used: ``field`` is its path."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass
class Symptom:
    hpo_id: str
    present: bool
    severity: float
    onset_days: float


@dataclass
class Patient:
    """A checked, normalised record (canonical codes and units)."""

    age: float  # NaN when unknown
    sex: str
    start: datetime  # naive, UTC
    symptoms: list[Symptom]
    vitals: list[tuple[str, float]]
    labs: list[tuple[str, float]]
    comorbidities: list[str]
    notes: list[str] = field(default_factory=list)


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EdgeInputError(where, f"{value!r} is not a number")
    if not math.isfinite(value):
        raise EdgeInputError(where, f"{value!r} is not a finite number")
    return float(value)


def _text(where: str, value: Any, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise EdgeInputError(where, f"expected a string, got {value!r}")
    return value


def _object(where: str, value: Any, allowed: set[str], required: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise EdgeInputError(where, f"expected an object, got {type(value).__name__}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise EdgeInputError(f"{where}.{unknown[0]}", "unknown field")
    for key in required:
        if key not in value:
            raise EdgeInputError(f"{where}.{key}", "field required")
    return value


def _list(where: str, value: Any) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise EdgeInputError(where, f"expected a list, got {type(value).__name__}")
    return value


class RecordRules:
    """The record rules of a package (``config["record"]``) over its HPO release."""

    def __init__(self, config: dict[str, Any], hpo: Hpo) -> None:
        self.labs = config["labs"]
        self.aliases = config["unit_aliases"]
        self.icd10 = re.compile(config["icd10_pattern"])
        self.hpo_id = re.compile(config["hpo_pattern"])
        self.site = re.compile(config["site_pattern"])
        self.snomed_prefixes = tuple(config["snomed_prefixes"])
        self.age_range = tuple(config["age_range"])
        self.max_onset = float(config["max_onset_days"])
        self.earliest = datetime.fromisoformat(config["earliest_encounter"])
        self.hpo = hpo

    # ---- fields ---------------------------------------------------------------------
    def symptom(self, where: str, raw: Any, notes: list[str]) -> Symptom | None:
        item = _object(where, raw, SYMPTOM_FIELDS, ("code",))
        code = _text(f"{where}.code", item["code"])
        system = item.get("system", "HPO")
        present = item.get("present", True)
        if not isinstance(present, bool):
            raise EdgeInputError(f"{where}.present", f"expected true or false, got {present!r}")
        severity, onset = item.get("severity"), item.get("onset_days")
        if system == "SNOMEDCT":
            text = code.strip()
            for prefix in self.snomed_prefixes:
                text = text.removeprefix(prefix)
            hpo = self.hpo.snomed.get(text.strip())
            if hpo is None:
                raise EdgeInputError(
                    f"{where}.code", f"SNOMED CT concept {code!r} has no HPO mapping"
                )
        elif system == "HPO":
            text = code.strip().upper()
            hpo = self.hpo.resolve(text)
            if hpo is None and present and text in self.hpo.newer:
                hpo = self.hpo.newer[text]
                notes.append(
                    f"{where}: {code.strip()} is not in the HPO release: read as its nearest "
                    f"ancestor {hpo}"
                )
            if hpo is None:
                if self.hpo_id.match(text):
                    notes.append(f"{where}: {code.strip()} is not in the HPO release: ignored")
                    return None
                raise EdgeInputError(
                    f"{where}.code", f"{code!r} is not an HPO term id (HP:nnnnnnn)"
                )
        else:
            raise EdgeInputError(f"{where}.system", "symptom code system must be HPO or SNOMEDCT")
        if severity is not None and (
            isinstance(severity, bool) or not isinstance(severity, int) or not 1 <= severity <= 3
        ):
            raise EdgeInputError(f"{where}.severity", "severity must be 1-3")
        if onset is not None:
            days = _number(f"{where}.onset_days", onset)
            if not 0 <= days <= self.max_onset:
                raise EdgeInputError(f"{where}.onset_days", f"must be 0-{self.max_onset:g} days")
        return Symptom(
            hpo,
            present,
            float("nan") if severity is None or not present else float(severity),
            float("nan") if onset is None or not present else float(onset),
        )

    def measurement(self, where: str, raw: Any, kind: str) -> tuple[str, float]:
        item = _object(where, raw, MEASUREMENT_FIELDS, ("loinc", "value", "unit"))
        loinc = _text(f"{where}.loinc", item["loinc"])
        unit = _text(f"{where}.unit", item["unit"])
        given = _number(f"{where}.value", item["value"])
        code = loinc.strip()
        info = self.labs.get(code)
        if info is None:
            raise EdgeInputError(f"{where}.loinc", f"unknown LOINC code {loinc!r}")
        if info["kind"] != kind:
            other = "vitals" if info["kind"] == "vital" else "labs"
            raise EdgeInputError(
                f"{where}.loinc",
                f"{code} ({info['name']}) is a {info['kind']}: send it under {other}",
            )
        spelled = unit.strip()
        spelled = self.aliases.get(spelled.lower(), spelled)
        if unit == info["unit"]:
            value = given
        elif spelled in info["units"]:
            value = given * info["units"][spelled]
        elif spelled in info["affine"]:
            value = given * info["affine"][spelled]["scale"] + info["affine"][spelled]["offset"]
        else:
            known = ", ".join(sorted([*info["units"], *info["affine"]]))
            raise EdgeInputError(
                f"{where}.unit", f"{unit!r} is not convertible to {info['unit']!r} (known: {known})"
            )
        if not info["low"] <= value <= info["high"]:
            raise EdgeInputError(
                f"{where}.value",
                f"{given:g} {unit} is outside the plausible range {info['low']:g}-"
                f"{info['high']:g} {info['unit']} of {info['name']}",
            )
        return code, value

    def comorbidity(self, where: str, raw: Any) -> str:
        code = _text(where, raw)
        cleaned = re.sub(r"\s+", "", code).upper()
        if "." not in cleaned and len(cleaned) > 3:
            cleaned = f"{cleaned[:3]}.{cleaned[3:]}"
        if not self.icd10.match(cleaned):
            raise EdgeInputError(where, f"ICD-10 code {code!r} is malformed")
        return cleaned

    def encounter_date(self, where: str, raw: Any) -> datetime:
        if raw is None:
            return datetime.now()
        text = _text(where, raw)
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise EdgeInputError(where, f"{text!r} is not an ISO 8601 date-time") from None
        latest = datetime.now() + timedelta(days=1)
        if not self.earliest <= moment.replace(tzinfo=None) <= latest:
            raise EdgeInputError(where, f"{text} is not a plausible encounter date")
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        return moment

    # ---- the record -----------------------------------------------------------------
    def patient(self, raw: Any, where: str = "patient") -> Patient:
        """The checked, normalised :class:`Patient` of a JSON object (see module docstring)."""
        record = _object(where, raw, FIELDS, ())
        for key in ("patient_id", "encounter_id", "note"):
            _text(f"{where}.{key}", record.get(key), optional=True)
        site = _text(f"{where}.site", record.get("site"), optional=True)
        if site is not None and not self.site.match(site):
            raise EdgeInputError(f"{where}.site", f"{site!r} is not a care-site code")
        sex = record.get("sex", "unknown")
        if sex not in SEXES:
            raise EdgeInputError(f"{where}.sex", f"{sex!r}: expected one of {', '.join(SEXES)}")
        age = record.get("age")
        if age is not None:
            age = _number(f"{where}.age", age)
            if not self.age_range[0] <= age <= self.age_range[1]:
                raise EdgeInputError(f"{where}.age", f"age {age:g} outside 0-120")
        symptoms_raw = _list(f"{where}.symptoms", record.get("symptoms"))
        lists = {
            k: _list(f"{where}.{k}", record.get(k)) for k in ("vitals", "labs", "comorbidities")
        }
        notes: list[str] = []
        symptoms = [
            self.symptom(f"{where}.symptoms[{i}]", s, notes) for i, s in enumerate(symptoms_raw)
        ]
        vitals = [
            self.measurement(f"{where}.vitals[{i}]", m, "vital")
            for i, m in enumerate(lists["vitals"])
        ]
        labs = [
            self.measurement(f"{where}.labs[{i}]", m, "lab") for i, m in enumerate(lists["labs"])
        ]
        start = self.encounter_date(f"{where}.encounter_date", record.get("encounter_date"))
        comorbidities = [
            self.comorbidity(f"{where}.comorbidities[{i}]", c)
            for i, c in enumerate(lists["comorbidities"])
        ]
        return Patient(
            age=float("nan") if age is None else age,
            sex=str(sex).lower(),
            start=start,
            symptoms=[s for s in symptoms if s is not None],
            vitals=vitals,
            labs=labs,
            comorbidities=comorbidities,
            notes=notes,
        )
