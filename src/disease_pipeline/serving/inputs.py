"""Check and normalise a clinician's ``PatientRecord`` before it reaches the predictor.

The predictor reads live HPO ids, canonical LOINC units and canonical ICD-10 codes
(the same vocabulary ingestion produces). Here every input is checked against the
knowledge base and every problem is reported with the field it concerns; nothing is
guessed. Deterministic mappings (an obsolete HPO id to its replacement, a SNOMED CT
concept to its HPO term, a unit to the canonical unit) are applied and listed as notes.

Two gaps of real phenotype lists are tolerated, with a note: a well-formed HPO id that
the model's HPO release does not know (a newer term) is ignored and counted
(``on_unknown_term``, the service's ``/metrics``), and an unknown age (``null``) is
predicted without age.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from disease_pipeline.knowledge.catalogue import (
    UnitConversionError,
    load_lab_table,
    normalise_icd10,
    to_canonical,
)
from disease_pipeline.knowledge.hpo import Ontology, load_ontology
from disease_pipeline.records import (
    Measurement,
    PatientRecord,
    Symptom,
    encounter_date_problem,
)

_DISEASE_CODE = re.compile(r"^(OMIM:\d{6}|ORPHA:\d{1,7})$")
_HPO_ID = re.compile(r"^HP:\d{7}$")


@dataclass(frozen=True)
class FieldError:
    """One bad input field: its JSON path (``patient.labs[0].unit``) and the problem."""

    field: str
    message: str


class InputError(ValueError):
    """Input the service refuses, listing every bad field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))

    def as_response(self) -> dict:
        """The body of the 422 response, shaped like BentoML's 400 for schema errors."""
        return {
            "error": f"{len(self.errors)} invalid field(s): "
            + ", ".join(e.field for e in self.errors),
            "detail": [
                {"loc": field_location(e.field), "field": e.field, "msg": e.message}
                for e in self.errors
            ],
        }


def field_location(field: str) -> list[str | int]:
    """Pydantic-style location of a dotted path: ``a.b[0].c`` → ``["a", "b", 0, "c"]``."""
    parts: list[str | int] = []
    for piece in re.findall(r"[^.\[\]]+", field):
        parts.append(int(piece) if piece.isdigit() else piece)
    return parts


@dataclass(frozen=True)
class _Loinc:
    name: str
    kind: str
    unit: str
    low: float
    high: float


class RecordNormaliser:
    """Validates records against the HPO ontology and the LOINC table."""

    def __init__(
        self,
        ontology: Ontology | None = None,
        on_unknown_term: Callable[[str], None] | None = None,
    ) -> None:
        self.ontology = ontology or load_ontology()
        self.on_unknown_term = on_unknown_term
        self.loinc = {
            str(row["loinc"]): _Loinc(
                str(row["name"]),
                str(row["kind"]),
                str(row["canonical_unit"]),
                float(row["plausible"]["min"]),
                float(row["plausible"]["max"]),
            )
            for row in load_lab_table().to_dict("records")
        }

    def normalise(
        self, record: PatientRecord, where: str = "patient"
    ) -> tuple[PatientRecord, list[str]]:
        """The record in the predictor's vocabulary and the notes on what was mapped.

        Raises:
            InputError: every field that is unknown, unconvertible or implausible.
        """
        errors: list[FieldError] = []
        notes: list[str] = []
        if not record.symptoms:
            errors.append(
                FieldError(f"{where}.symptoms", "empty symptom list: give at least one symptom")
            )
        symptoms = [
            self._symptom(symptom, f"{where}.symptoms[{i}]", errors, notes)
            for i, symptom in enumerate(record.symptoms)
        ]
        symptoms = [s for s in symptoms if s is not None]
        if record.age is None:
            notes.append(f"{where}.age: unknown, predicted without age")
        vitals = [
            self._measurement(m, f"{where}.vitals[{i}]", "vital", errors, notes)
            for i, m in enumerate(record.vitals)
        ]
        labs = [
            self._measurement(m, f"{where}.labs[{i}]", "lab", errors, notes)
            for i, m in enumerate(record.labs)
        ]
        date_problem = encounter_date_problem(record.encounter_date)
        if date_problem:
            errors.append(FieldError(f"{where}.encounter_date", date_problem))
        comorbidities = []
        for i, code in enumerate(record.comorbidities):
            try:
                comorbidities.append(normalise_icd10(code))
            except ValueError:
                errors.append(
                    FieldError(f"{where}.comorbidities[{i}]", f"{code!r} is not an ICD-10 code")
                )
        if errors:
            raise InputError(errors)
        clean = record.model_copy(
            update={
                "symptoms": symptoms,
                "vitals": vitals,
                "labs": labs,
                "comorbidities": comorbidities,
            }
        )
        return clean, notes

    def _symptom(
        self, symptom: Symptom, where: str, errors: list[FieldError], notes: list[str]
    ) -> Symptom | None:
        code = symptom.code.strip()
        if symptom.system == "SNOMEDCT":
            plain = code.removeprefix("SNOMEDCT:").removeprefix("SCTID:").strip()
            hpo = self.ontology.snomed_to_hpo.get(plain)
            if hpo is None:
                errors.append(
                    FieldError(f"{where}.code", f"SNOMED CT concept {code!r} has no HPO mapping")
                )
                return None
            notes.append(f"{where}: SNOMED CT {plain} mapped to {hpo} ({self.ontology.names[hpo]})")
            return symptom.model_copy(update={"code": hpo, "system": "HPO"})
        live = self.ontology.resolve(code.upper())
        if live is None and _HPO_ID.match(code.upper()):
            notes.append(
                f"{where}: {code} is not in the HPO release of this model "
                f"({self.ontology.version}): ignored"
            )
            if self.on_unknown_term is not None:
                self.on_unknown_term(code.upper())
            return None
        if live is None:
            errors.append(
                FieldError(f"{where}.code", f"{code!r} is not an HPO term id (HP:nnnnnnn)")
            )
            return None
        if live == symptom.code:
            return symptom
        if live != code:
            notes.append(f"{where}: {code} replaced by {live} ({self.ontology.names[live]})")
        return symptom.model_copy(update={"code": live})

    def _measurement(
        self,
        measurement: Measurement,
        where: str,
        kind: str,
        errors: list[FieldError],
        notes: list[str],
    ) -> Measurement | None:
        info = self.loinc.get(measurement.loinc.strip())
        if info is None:
            errors.append(FieldError(f"{where}.loinc", f"unknown LOINC code {measurement.loinc!r}"))
            return None
        if info.kind != kind:
            other = "vitals" if info.kind == "vital" else "labs"
            errors.append(
                FieldError(
                    f"{where}.loinc",
                    f"{measurement.loinc} ({info.name}) is a {info.kind}: send it under {other}",
                )
            )
            return None
        if measurement.unit == info.unit:
            value = float(measurement.value)
        else:
            try:
                value = to_canonical(measurement.loinc.strip(), measurement.value, measurement.unit)
            except UnitConversionError as error:
                errors.append(FieldError(f"{where}.unit", str(error)))
                return None
        if not info.low <= value <= info.high:
            errors.append(
                FieldError(
                    f"{where}.value",
                    f"{measurement.value:g} {measurement.unit} ({value:g} {info.unit}) is outside "
                    f"the plausible range {info.low:g}-{info.high:g} {info.unit} of {info.name}",
                )
            )
            return None
        if measurement.unit != info.unit:
            notes.append(
                f"{where}: {measurement.value:g} {measurement.unit} converted to "
                f"{value:.4g} {info.unit}"
            )
        loinc = measurement.loinc.strip()
        canonical = measurement.unit == info.unit and loinc == measurement.loinc
        if canonical and isinstance(measurement.value, float):
            return measurement  # already canonical: no copy
        return Measurement.model_construct(loinc=loinc, value=value, unit=info.unit)


def check_disease_code(code: str, where: str) -> str:
    """A confirmed diagnosis code in its canonical spelling: ICD-10 (``J18.9``),
    ``OMIM:nnnnnn`` or ``ORPHA:nnnn``.

    Raises:
        InputError: the code has none of these forms.
    """
    text = str(code or "").strip()
    upper = text.upper()
    if _DISEASE_CODE.match(upper):
        return upper
    try:
        return normalise_icd10(text)
    except ValueError:
        raise InputError(
            [FieldError(where, f"{code!r} is not an ICD-10, OMIM:nnnnnn or ORPHA:n code")]
        ) from None
