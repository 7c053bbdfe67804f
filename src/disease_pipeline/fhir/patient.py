"""A FHIR R4 ``Bundle`` (or a CDS Hooks prefetch) → the service's :class:`PatientRecord`.

The resources go through the same mapping as the ingestion pipeline's exports
(:mod:`disease_pipeline.fhir.resources`), with ``Condition`` read as the patient's
problem list (``comorbidity``). Every problem is kept with the resource and the element
it concerns (:class:`BundleIssue`): a resource type the service does not use is a
warning (listed in the answer), anything else an error (the bundle is refused with an
``OperationOutcome``). :class:`MappedBundle` remembers which resource each field of the
record came from, so later errors and the ``RiskAssessment.basis`` can name them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from disease_pipeline.fhir.bundle import bundle_context, entry_resources, map_resources
from disease_pipeline.fhir.rows import TABLE_COLUMNS, RecordResult
from disease_pipeline.fhir.vocabulary import ICD10, REASONS, Vocabulary
from disease_pipeline.knowledge.record_rules import AGE_RANGE
from disease_pipeline.records import SITE_PATTERN, Measurement, PatientRecord, Symptom

#: Quarantine reasons that only mean "not used" (the rest of the bundle is predicted).
WARNING_REASONS = frozenset({"unsupported_resource"})
#: Element of the source resource behind each field of a record item.
ELEMENTS: dict[tuple[str, str], str] = {
    ("Observation", "code"): "Observation.code.coding[0].code",
    ("Observation", "present"): "Observation.valueBoolean",
    ("Observation", "loinc"): "Observation.code.coding[0].code",
    ("Observation", "value"): "Observation.valueQuantity.value",
    ("Observation", "unit"): "Observation.valueQuantity.code",
    ("Condition", "code"): "Condition.code.coding[0].code",
    ("Patient", "age"): "Patient.birthDate",
    ("Patient", "sex"): "Patient.gender",
    ("Encounter", "encounter_date"): "Encounter.period.start",
}


@dataclass(frozen=True)
class BundleIssue:
    """One problem of a bundle: the resource (``Observation/obs-1``, or the entry when it
    has no id), the element (``Observation.valueQuantity.code``), the quarantine reason,
    the message and ``error`` (refused) or ``warning`` (not used)."""

    resource: str
    element: str
    reason: str
    message: str
    severity: str = "error"


@dataclass
class MappedBundle:
    """The record of a bundle, its issues, and where each record field came from."""

    record: PatientRecord | None
    issues: list[BundleIssue] = field(default_factory=list)
    #: record field prefix (``symptoms[0]``, ``age``) → (resource reference, resource type)
    sources: dict[str, tuple[str, str]] = field(default_factory=dict)
    patient_ref: str | None = None
    encounter_ref: str | None = None

    @property
    def errors(self) -> list[BundleIssue]:
        return [i for i in self.issues if i.severity == "error"]

    def locate(self, field_path: str) -> tuple[str, str]:
        """(resource reference, element) of a record field such as ``labs[0].unit``;
        the bundle itself when no resource is known."""
        head, _, attribute = field_path.partition(".")
        source = self.sources.get(head)
        if source is None:
            return "Bundle", f"Bundle ({field_path})"
        reference, rtype = source
        leaf = attribute or head
        return reference, ELEMENTS.get((rtype, leaf), f"{rtype} ({field_path})")


def reference_of(resource: Any, index: int) -> str:
    """``Type/id`` of a resource, else ``Bundle.entry[index]``."""
    if isinstance(resource, dict) and resource.get("resourceType") and resource.get("id"):
        return f"{resource['resourceType']}/{resource['id']}"
    return f"Bundle.entry[{index}]"


def _issues(reference: str, result: RecordResult) -> list[BundleIssue]:
    found = []
    for reject in result.issues:
        detail = reject.detail or REASONS.get(reject.reason, reject.reason)
        value = "" if reject.value is None else f" {str(reject.value)[:80]!r}:"
        severity = "warning" if reject.reason in WARNING_REASONS else "error"
        found.append(
            BundleIssue(
                reference, reject.field, reject.reason, f"{value} {detail}".strip(), severity
            )
        )
    return found


def _rows(result: RecordResult, table: str) -> list[dict[str, Any]]:
    columns = TABLE_COLUMNS[table]
    return [
        dict(zip(columns, values, strict=True)) for name, values in result.rows if name == table
    ]


def service_provider(encounter: dict[str, Any]) -> str | None:
    """The care site of an Encounter: its ``serviceProvider``'s identifier value, else the
    id of its Organization reference; None when absent or not a plain site code."""
    provider = encounter.get("serviceProvider")
    if not isinstance(provider, dict):
        return None
    identifier = provider.get("identifier")
    value = identifier.get("value") if isinstance(identifier, dict) else None
    if not value:
        value = str(provider.get("reference") or "").rpartition("/")[2]
    return value if isinstance(value, str) and re.fullmatch(SITE_PATTERN, value) else None


def age_at(birth: datetime | None, moment: datetime) -> float | None:
    """Completed years between ``birth`` and ``moment`` (None without a birth date)."""
    if birth is None:
        return None
    day = moment.date()
    years = day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))
    return float(years)


def map_bundle(
    bundle: Any,
    vocab: Vocabulary,
    *,
    encounter_id: str | None = None,
    now: datetime | None = None,
) -> MappedBundle:
    """Map ``bundle`` to a record; ``encounter_id``: the encounter of a bundle without an
    Encounter resource (CDS Hooks context); ``now``: the date of such an encounter."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        kind = bundle.get("resourceType") if isinstance(bundle, dict) else type(bundle).__name__
        message = f"expected a FHIR Bundle, got {kind!r}"
        return MappedBundle(
            None, [BundleIssue("Bundle", "Bundle.resourceType", "invalid_fhir", message)]
        )
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        message = "the bundle has no entries (send Patient, Encounter, Condition, Observation)"
        return MappedBundle(None, [BundleIssue("Bundle", "Bundle.entry", "missing_field", message)])
    resources = entry_resources(bundle)
    ctx = bundle_context(
        resources, condition_role="comorbidity", encounter_id=encounter_id or "current"
    )
    results = map_resources(resources, ctx, vocab)
    mapped = MappedBundle(None)
    symptoms: list[Symptom] = []
    vitals: list[Measurement] = []
    labs: list[Measurement] = []
    comorbidities: list[str] = []
    notes: list[str] = []
    birth, sex, start, site = None, "unknown", None, None
    for index, (resource, result) in enumerate(zip(resources, results, strict=True)):
        reference = reference_of(resource, index)
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        mapped.issues += _issues(reference, result)
        for row in _rows(result, "patients"):
            if mapped.patient_ref is None:
                birth, sex = row["birth_date"], row["sex"] or "unknown"
                mapped.patient_ref = reference
                mapped.sources["age"] = mapped.sources["sex"] = (reference, "Patient")
        for row in _rows(result, "encounters"):
            if mapped.encounter_ref is None:
                start = row["start"]
                site = service_provider(resource)
                mapped.encounter_ref = reference
                mapped.sources["encounter_date"] = (reference, "Encounter")
        for row in _rows(result, "symptoms"):
            mapped.sources[f"symptoms[{len(symptoms)}]"] = (reference, str(rtype))
            symptoms.append(
                Symptom(
                    code=row["hpo_id"],
                    present=bool(row["present"]),
                    severity=row["severity"],
                    onset_days=row["onset_days"],
                )
            )
        for table, items in (("vitals", vitals), ("labs", labs)):
            for row in _rows(result, table):
                mapped.sources[f"{table}[{len(items)}]"] = (reference, "Observation")
                items.append(Measurement(loinc=row["loinc"], value=row["value"], unit=row["unit"]))
        for row in _rows(result, "diagnoses"):
            if row["system"] != ICD10:
                mapped.issues.append(
                    BundleIssue(
                        reference,
                        "Condition.code.coding[0].code",
                        "unsupported_resource",
                        f"{row['system']}:{row['code']} not used: the model reads ICD-10 "
                        "comorbidities (rare diseases are candidates, not inputs)",
                        "warning",
                    )
                )
                continue
            mapped.sources[f"comorbidities[{len(comorbidities)}]"] = (reference, "Condition")
            comorbidities.append(str(row["code"]))
        notes += [str(row["text"]) for row in _rows(result, "notes")]
    if mapped.patient_ref is None:
        mapped.issues.append(
            BundleIssue(
                "Bundle",
                "Bundle.entry",
                "missing_field",
                "no Patient: age and sex unknown",
                "warning",
            )
        )
    moment = start or now or datetime.now(UTC)
    age = age_at(birth, moment)
    if age is not None and not AGE_RANGE[0] <= age <= AGE_RANGE[1]:
        reference = mapped.patient_ref or "Patient"
        mapped.issues.append(
            BundleIssue(
                reference,
                "Patient.birthDate",
                "implausible_value",
                f"age {age:g} years at the encounter",
            )
        )
        age = None
    if mapped.errors:
        return mapped
    patient_id = (
        mapped.patient_ref.split("/", 1)[1]
        if mapped.patient_ref and "/" in mapped.patient_ref
        else None
    )
    encounter = (
        mapped.encounter_ref.split("/", 1)[1]
        if mapped.encounter_ref and "/" in mapped.encounter_ref
        else encounter_id
    )
    mapped.record = PatientRecord(
        patient_id=patient_id,
        encounter_id=encounter,
        age=age,
        sex=sex,
        encounter_date=start,
        symptoms=symptoms,
        vitals=vitals,
        labs=labs,
        comorbidities=comorbidities,
        note="\n\n".join(notes) or None,
        site=site,
    )
    return mapped
