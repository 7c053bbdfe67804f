"""The service's answers in FHIR R4: a ``RiskAssessment`` of a prediction and an
``OperationOutcome`` of a refused bundle, both checked against the ``fhir.resources``
R4B models before they leave the service.

``RiskAssessment``: one ``prediction`` per differential entry (the disease as a coding
with its system, ``probabilityDecimal``, the ``rule_out`` advice as ``rationale``),
the patient's severity as ``qualitativeRisk`` of the top entry (SNOMED CT severity
codes, the ones ingestion reads), ``basis`` referencing the resources the explanation
named, and the model name and version as ``method``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.riskassessment import RiskAssessment

from disease_pipeline.fhir.patient import BundleIssue, MappedBundle

#: Coding systems of the differential's diseases.
DISEASE_SYSTEMS = {
    "COMMON": "http://hl7.org/fhir/sid/icd-10",
    "OMIM": "https://omim.org",
    "ORPHA": "https://www.orpha.net",
}
SNOMED = "http://snomed.info/sct"
#: Severity level → SNOMED CT severity (the inverse of ingestion's ``severity_codes``).
SEVERITY_CODES = {
    "low": ("255604002", "Mild"),
    "moderate": ("6736007", "Moderate"),
    "high": ("24484000", "Severe"),
    "critical": ("442452003", "Life threatening severity"),
}
#: ``method`` coding system: the model registry's name and version.
MODEL_SYSTEM = "urn:disease-pipeline:model"
_HPO = re.compile(r"HP[:_](\d{7})")
_LOINC = re.compile(r"(?<![\d.])(\d{1,7}-\d)(?![\d])")
#: OperationOutcome issue code of each quarantine reason.
ISSUE_CODES = {
    "missing_field": "required",
    "unknown_code": "code-invalid",
    "unknown_unit": "code-invalid",
    "misplaced_code": "code-invalid",
    "unsupported_resource": "not-supported",
    "malformed_value": "value",
    "malformed_date": "value",
    "implausible_value": "value",
    "malformed_json": "structure",
    "invalid_fhir": "structure",
}


def disease_coding(entry: dict[str, Any]) -> dict[str, Any]:
    """The coding of a differential entry: ICD-10 for COMMON, OMIM/ORPHA for RARE."""
    code = str(entry.get("code") or "")
    prefix, _, number = code.partition(":")
    if entry.get("category") == "RARE" and prefix in DISEASE_SYSTEMS and number:
        return {"system": DISEASE_SYSTEMS[prefix], "code": number, "display": entry.get("name")}
    return {"system": DISEASE_SYSTEMS["COMMON"], "code": code, "display": entry.get("name")}


def explained_codes(prediction: dict[str, Any]) -> set[str]:
    """HPO ids and LOINC codes named by the explanation and the rare candidates' matched
    phenotypes (what drove the answer)."""
    explanation = prediction.get("explanation") or {}
    items: list[Any] = list(explanation.get("features") or [])
    items += list(explanation.get("findings") or [])
    for entry in prediction.get("differential") or []:
        items += list((entry.get("phenotypes") or {}).get("matched") or [])
    codes: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("hpo_id"):
            codes.add(str(item["hpo_id"]))
        if item.get("loinc"):
            codes.add(str(item["loinc"]))
        name = str(item.get("feature") or "")
        codes |= {f"HP:{m}" for m in _HPO.findall(name)}
        codes |= set(_LOINC.findall(name))
    return codes


def basis_references(mapped: MappedBundle, prediction: dict[str, Any]) -> list[str]:
    """References of the resources behind the codes the explanation named, in bundle
    order, each once."""
    record = mapped.record
    if record is None:
        return []
    codes = explained_codes(prediction)
    fields: list[str] = []
    fields += [f"symptoms[{i}]" for i, s in enumerate(record.symptoms) if s.code in codes]
    fields += [f"vitals[{i}]" for i, m in enumerate(record.vitals) if m.loinc in codes]
    fields += [f"labs[{i}]" for i, m in enumerate(record.labs) if m.loinc in codes]
    references = [mapped.sources[f][0] for f in fields if f in mapped.sources]
    return list(dict.fromkeys(r for r in references if "/" in r and not r.startswith("Bundle")))


def risk_assessment(mapped: MappedBundle, prediction: dict[str, Any]) -> dict[str, Any]:
    """The ``RiskAssessment`` of ``prediction`` (the service's JSON answer), validated."""
    model = prediction.get("model") or {}
    severity = (prediction.get("severity") or {}).get("level")
    predictions = []
    for entry in prediction.get("differential") or []:
        item: dict[str, Any] = {
            "outcome": {"coding": [disease_coding(entry)], "text": entry.get("name")},
            "probabilityDecimal": round(float(entry.get("probability") or 0.0), 6),
        }
        if entry.get("rule_out"):
            item["rationale"] = f"must not miss: {entry['rule_out']}"
        if entry.get("rank") == 1 and severity in SEVERITY_CODES:
            code, display = SEVERITY_CODES[severity]
            item["qualitativeRisk"] = {
                "coding": [{"system": SNOMED, "code": code, "display": display}],
                "text": f"severity {severity}",
            }
        predictions.append(item)
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "id": prediction.get("request_id"),
        "status": "final",
        "subject": {"reference": mapped.patient_ref or "Patient/unknown"},
        "occurrenceDateTime": prediction.get("timestamp"),
        "method": {
            "coding": [
                {
                    "system": MODEL_SYSTEM,
                    "code": str(model.get("name")),
                    "version": str(model.get("version")),
                    "display": f"{model.get('name')} version {model.get('version')}",
                }
            ],
            "text": f"{model.get('name')} version {model.get('version')}",
        },
        "prediction": predictions,
    }
    if mapped.patient_ref is None:
        resource["subject"] = {"display": "patient of the request (no Patient resource)"}
    if mapped.encounter_ref and "/" in mapped.encounter_ref:
        resource["encounter"] = {"reference": mapped.encounter_ref}
    basis = basis_references(mapped, prediction)
    if basis:
        resource["basis"] = [{"reference": r} for r in basis]
    notes = list(prediction.get("input_notes") or [])
    note = (prediction.get("severity") or {}).get("note")
    notes += [note] if note else []
    if notes:
        resource["note"] = [{"text": text} for text in notes]
    RiskAssessment.model_validate(resource)
    return resource


def operation_outcome(issues: Iterable[BundleIssue]) -> dict[str, Any]:
    """An ``OperationOutcome`` naming, per issue, the resource, the element and the
    problem (``diagnostics``), validated."""
    items = [
        {
            "severity": issue.severity,
            "code": ISSUE_CODES.get(issue.reason, "invalid"),
            "details": {"text": f"{issue.resource}: {issue.element}: {issue.message}"},
            "diagnostics": f"{issue.reason}: {issue.message}",
            "expression": [issue.element],
            "location": [issue.resource],
        }
        for issue in issues
    ]
    if not items:
        items = [{"severity": "information", "code": "informational", "diagnostics": "no issue"}]
    resource = {"resourceType": "OperationOutcome", "issue": items}
    OperationOutcome.model_validate(resource)
    return resource
