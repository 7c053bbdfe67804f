"""One FHIR R4B resource → validated, then flattened into canonical rows.

The one mapping of FHIR resources: the ingestion pipeline uses it for exported
bundles and the service for ``POST /fhir/predict`` and the CDS Hooks prefetch.

Validation uses the ``fhir.resources`` R4B models, one resource at a time. When a
resource fails, the offending elements are quarantined one by one and removed, and
the rest is validated again: a malformed ``birthDate`` loses the birth date, not the
patient. A resource that still fails (a required element missing, …) yields nothing.
"""

from __future__ import annotations

import base64
import binascii
import copy
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from disease_pipeline.fhir.rows import RecordResult, attempt
from disease_pipeline.fhir.vocabulary import ICD10, OMIM, ORPHA, Reject, Vocabulary
from disease_pipeline.knowledge.record_rules import symptom_severity

CODE_SYSTEMS: dict[str, str] = {
    "http://purl.obolibrary.org/obo/hp.owl": "HPO",
    "http://snomed.info/sct": "SNOMEDCT",
    "http://loinc.org": "LOINC",
    "http://hl7.org/fhir/sid/icd-10": ICD10,
    "http://hl7.org/fhir/sid/icd-10-cm": ICD10,
    "https://omim.org": OMIM,
    "http://omim.org": OMIM,
    "https://www.orpha.net": ORPHA,
    "http://www.orpha.net": ORPHA,
}
SEVERITY_COMPONENT = "246112005"
ONSET_COMPONENT = "405795006"
_DATE_FIELDS = {"start", "end", "issued", "birthdate", "recordeddate"}
_NUMBER_ERRORS = {"int_parsing", "float_parsing", "decimal_parsing", "int_from_float"}


@dataclass(frozen=True)
class BundleContext:
    """Ids of the bundle's Patient and Encounter, the default subject of every entry.

    ``condition_role``: what an ICD-10/OMIM/ORPHA ``Condition`` is in this bundle:
    ``primary`` (an export of a finished encounter: the confirmed diagnosis, which must
    be in the catalogue) or ``comorbidity`` (a patient to predict: the problem list).
    """

    patient_id: str | None
    encounter_id: str | None
    condition_role: str = "primary"


def path_of(resource_type: str, loc: tuple) -> str:
    """``('component', 0, 'valueInteger')`` → ``Observation.component[0].valueInteger``."""
    text = resource_type
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _is_missing(error: dict) -> bool:
    return error["type"] == "missing" or error["type"].endswith(".missing")


def _reason(error: dict) -> str:
    last = next((str(p) for p in reversed(error["loc"]) if isinstance(p, str)), "")
    kind = error["type"]
    if _is_missing(error):
        return "missing_field"
    if last.lower() in _DATE_FIELDS or "date" in last.lower() or kind.startswith(("date", "time")):
        return "malformed_date"
    if kind in _NUMBER_ERRORS or "Decimal value" in str(error.get("msg", "")):
        return "malformed_value"
    return "invalid_fhir"


def _strip(data: Any, loc: tuple) -> bool:
    """Remove the element at ``loc``; False when it cannot be reached."""
    for part in loc[:-1]:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return False
    try:
        del data[loc[-1]]
    except (KeyError, IndexError, TypeError):
        return False
    return True


def validate(resource: dict[str, Any]) -> tuple[dict[str, Any] | None, list[Reject]]:
    """Validate ``resource`` with its R4B model.

    Returns the resource (a cleaned copy when invalid elements were removed, None when
    it is unusable) and one :class:`Reject` per invalid element.
    """
    rtype = str(resource.get("resourceType"))
    try:
        model = get_fhir_model_class(rtype)
    except KeyError:
        return None, [Reject("resourceType", rtype, "unsupported_resource", "not an R4B type")]
    try:
        model.model_validate(resource)
        return resource, []
    except ValidationError as exc:
        errors = exc.errors()
    issues = [
        Reject(path_of(rtype, tuple(e["loc"])), e.get("input"), _reason(e), e["msg"])
        for e in errors
    ]
    cleaned = copy.deepcopy(resource)
    # deepest and last elements first so that list indices stay valid
    locs = sorted((tuple(e["loc"]) for e in errors), key=lambda loc: (len(loc), loc), reverse=True)
    strippable = all(e["loc"] and not _is_missing(e) for e in errors)
    if strippable and all(_strip(cleaned, loc) for loc in locs):
        try:
            model.model_validate(cleaned)
            return cleaned, issues
        except ValidationError:
            pass
    return None, issues


@lru_cache(maxsize=65536)
def _validate_repeated(text: bytes) -> tuple[dict[str, Any] | None, tuple[Reject, ...]]:
    """:func:`validate` memoised on the resource's JSON (the result is not mutated)."""
    cleaned, issues = validate(orjson.loads(text))
    return cleaned, tuple(issues)


def reference_id(reference: Any, prefix: str) -> str | None:
    """``{"reference": "Encounter/abc"}`` → ``abc``."""
    if not isinstance(reference, dict):
        return None
    text = str(reference.get("reference") or "")
    return text.split("/", 1)[1] if text.startswith(f"{prefix}/") else None


def first_coding(concept: Any) -> dict[str, Any]:
    """The first coding of a CodeableConcept (empty dict when there is none)."""
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return codings[0] if codings else {}


def encounter_of(reference: Any, ctx: BundleContext, field: str) -> str:
    """Encounter id from a reference, else the bundle's Encounter; Reject when neither."""
    encounter_id = reference_id(reference, "Encounter") or ctx.encounter_id
    if not encounter_id:
        raise Reject(field, None, "missing_field", "no encounter reference in the bundle")
    return encounter_id


def patient_rows(res: dict, ctx: BundleContext, vocab: Vocabulary, out: RecordResult) -> None:
    """Patient → one ``patients`` row (identifiers kept at this layer)."""
    identifiers = res.get("identifier") or []
    mrn = next(
        (
            i.get("value")
            for i in identifiers
            if first_coding(i.get("type")).get("code") == "MR" and i.get("value")
        ),
        identifiers[0].get("value") if identifiers else None,
    )
    name = (res.get("name") or [{}])[0]
    telecom = res.get("telecom") or []
    address = (res.get("address") or [{}])[0]
    birth = res.get("birthDate")
    gender = res.get("gender")
    out.add(
        "patients",
        {
            "patient_id": res["id"],
            "source": "fhir",
            "mrn": mrn,
            "given_name": " ".join(name.get("given") or []) or None,
            "family_name": name.get("family"),
            "birth_date": attempt(out, vocab.date, "Patient.birthDate", birth) if birth else None,
            "sex": attempt(out, vocab.sex, "Patient.gender", gender, default="unknown")
            if gender
            else "unknown",
            "address_line": ", ".join(address.get("line") or []) or None,
            "city": address.get("city"),
            "state": address.get("state"),
            "postal_code": address.get("postalCode"),
            "phone": next((t.get("value") for t in telecom if t.get("system") == "phone"), None),
            "email": next((t.get("value") for t in telecom if t.get("system") == "email"), None),
        },
    )


def encounter_rows(res: dict, ctx: BundleContext, vocab: Vocabulary, out: RecordResult) -> None:
    """Encounter → one ``encounters`` row; a bad start or class is nulled and quarantined."""
    start = (res.get("period") or {}).get("start")
    if start is None:
        out.issues.append(Reject("Encounter.period.start", None, "missing_field"))
    klass = (res.get("class") or {}).get("code")
    if klass not in vocab.encounter_classes:
        out.issues.append(Reject("Encounter.class.code", klass, "unknown_code"))
        klass = None
    out.add(
        "encounters",
        {
            "encounter_id": res["id"],
            "patient_id": reference_id(res.get("subject"), "Patient") or ctx.patient_id,
            "source": "fhir",
            "start": attempt(out, vocab.datetime, "Encounter.period.start", start)
            if start
            else None,
            "encounter_class": klass,
            "reported_age_years": None,  # FHIR ages come from birthDate and the start
        },
    )


def condition_rows(res: dict, ctx: BundleContext, vocab: Vocabulary, out: RecordResult) -> None:
    """Condition → a ``diagnoses`` row (ICD-10, OMIM, ORPHA; role from ``ctx``) or, coded
    in HPO or SNOMED CT, a ``symptoms`` row (a refuted phenotype is an absent one)."""
    status = first_coding(res.get("verificationStatus")).get("code")
    coding = first_coding(res.get("code"))
    system = CODE_SYSTEMS.get(str(coding.get("system")))
    field = "Condition.code.coding[0].code"
    if system in ("HPO", "SNOMEDCT"):
        if status not in (None, "confirmed", "refuted"):
            raise Reject("Condition.verificationStatus", status, "unsupported_resource")
        hpo, original = vocab.symptom(field, system, coding.get("code"))
        out.add(
            "symptoms",
            {
                "encounter_id": encounter_of(res.get("encounter"), ctx, "Condition.encounter"),
                "hpo_id": hpo,
                "present": status != "refuted",
                "severity": None,
                "onset_days": None,
                "source": "fhir",
                "original_system": original,
                "original_code": str(coding.get("code")),
            },
        )
        return
    if status not in (None, "confirmed"):
        raise Reject("Condition.verificationStatus", status, "unsupported_resource")
    if system not in (ICD10, OMIM, ORPHA):
        raise Reject("Condition.code.coding[0].system", coding.get("system"), "unknown_code")
    primary = ctx.condition_role == "primary"
    diagnosis = vocab.diagnosis(field, system, coding.get("code"), primary)
    severity = first_coding(res.get("severity")).get("code")
    out.add(
        "diagnoses",
        {
            "encounter_id": encounter_of(res.get("encounter"), ctx, "Condition.encounter"),
            **diagnosis,
            "role": ctx.condition_role,
            "severity": attempt(out, vocab.severity, "Condition.severity", severity)
            if severity
            else None,
        },
    )


def observation_rows(res: dict, ctx: BundleContext, vocab: Vocabulary, out: RecordResult) -> None:
    """Observation → a ``symptoms`` (HPO/SNOMED), ``vitals`` or ``labs`` (LOINC) row."""
    encounter_id = encounter_of(res.get("encounter"), ctx, "Observation.encounter")
    coding = first_coding(res.get("code"))
    system = CODE_SYSTEMS.get(str(coding.get("system")))
    effective = res.get("effectiveDateTime")
    when = (
        attempt(out, vocab.datetime, "Observation.effectiveDateTime", effective)
        if effective
        else None
    )
    if system in ("HPO", "SNOMEDCT"):
        hpo, original = vocab.symptom("Observation.code.coding[0].code", system, coding.get("code"))
        present = res.get("valueBoolean")
        if not isinstance(present, bool):
            raise Reject("Observation.valueBoolean", present, "missing_field")
        severity = onset = None
        for i, component in enumerate(res.get("component") or []):
            code = first_coding(component.get("code")).get("code")
            field = f"Observation.component[{i}]"
            if code == SEVERITY_COMPONENT and "valueInteger" in component:
                severity = attempt(out, _symptom_severity, field, component["valueInteger"])
            elif code == ONSET_COMPONENT and "valueQuantity" in component:
                quantity = component["valueQuantity"]
                unit = quantity.get("code") or quantity.get("unit") or "d"
                onset = attempt(out, vocab.onset_days, field, quantity.get("value"), unit)
        out.add(
            "symptoms",
            {
                "encounter_id": encounter_id,
                "hpo_id": hpo,
                "present": present,
                "severity": severity,
                "onset_days": onset,
                "source": "fhir",
                "original_system": original,
                "original_code": str(coding.get("code")),
            },
        )
        return
    if system != "LOINC":
        raise Reject("Observation.code.coding[0].system", coding.get("system"), "unknown_code")
    quantity = res.get("valueQuantity")
    if not isinstance(quantity, dict) or quantity.get("value") is None:
        raise Reject("Observation.valueQuantity", quantity, "missing_field")
    unit = quantity.get("code") or quantity.get("unit")
    fields = (
        "Observation.code.coding[0].code",
        "Observation.valueQuantity.value",
        "Observation.valueQuantity.code",
    )
    info, value = vocab.measurement(fields, coding.get("code"), quantity["value"], unit)
    row = {"encounter_id": encounter_id, "loinc": str(coding["code"]), "name": info.name}
    if info.kind == "vital":
        out.add("vitals", {**row, "value": value, "unit": info.unit})
    else:
        original = {"original_value": float(quantity["value"]), "original_unit": unit}
        out.add(
            "labs", {**row, "value": value, "unit": info.unit, **original, "collected_at": when}
        )


def _symptom_severity(field: str, value: Any) -> int:
    return symptom_severity(f"{field}.valueInteger", value)


def note_rows(res: dict, ctx: BundleContext, vocab: Vocabulary, out: RecordResult) -> None:
    """DocumentReference with a base64 text/plain attachment → one ``notes`` row."""
    attachment = ((res.get("content") or [{}])[0]).get("attachment") or {}
    kind = str(attachment.get("contentType") or "")
    if not kind.startswith("text/plain"):
        raise Reject(
            "DocumentReference.content[0].attachment.contentType",
            kind or None,
            "unsupported_resource",
        )
    try:
        text = base64.b64decode(attachment.get("data") or "", validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Reject(
            "DocumentReference.content[0].attachment.data",
            attachment.get("data"),
            "malformed_value",
            "not base64 UTF-8 text",
        ) from None
    context = res.get("context") or {}
    reference = (context.get("encounter") or [None])[0]
    encounter_id = encounter_of(reference, ctx, "DocumentReference.context.encounter")
    out.add("notes", {"encounter_id": encounter_id, "text": text})


EXTRACTORS = {
    "Patient": patient_rows,
    "Encounter": encounter_rows,
    "Condition": condition_rows,
    "Observation": observation_rows,
    "DocumentReference": note_rows,
}


def resource_result(resource: Any, ctx: BundleContext, vocab: Vocabulary) -> RecordResult:
    """Validate one bundle entry's resource and turn it into canonical rows."""
    out = RecordResult()
    if not isinstance(resource, dict):
        out.issues.append(Reject("entry.resource", resource, "missing_field"))
        return out
    rtype = resource.get("resourceType")
    extractor = EXTRACTORS.get(str(rtype))
    if extractor is None:
        out.issues.append(Reject("resourceType", rtype, "unsupported_resource"))
        return out
    if rtype == "Patient":  # returning patients repeat the same resource in many bundles
        cleaned, issues = _validate_repeated(orjson.dumps(resource))
        out.issues = list(issues)
    else:
        cleaned, out.issues = validate(resource)
    if cleaned is None:
        return out
    if not cleaned.get("id") and rtype in ("Patient", "Encounter"):
        out.issues.append(Reject(f"{rtype}.id", None, "missing_field"))
        return out
    try:
        extractor(cleaned, ctx, vocab, out)
    except Reject as exc:
        out.issues.append(exc)
    return out
