"""Independent checks of raw records, used to verify the simulator's ground truth.

They re-implement "is this record wrong?" from the knowledge tables, without the
simulator's code, so a ground-truth row can be confirmed and an unlisted error found.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime

from disease_pipeline.knowledge.catalogue import (
    UnitConversionError,
    load_lab_table,
    normalise_icd10,
    to_canonical,
)
from disease_pipeline.knowledge.hpo import load_ontology

HPO_ID = re.compile(r"^HP:\d{7}$")
HPO_SYSTEM = "http://purl.obolibrary.org/obo/hp.owl"
SNOMED_SYSTEM = "http://snomed.info/sct"


def _plausible(loinc: str, value: float, unit: str) -> str | None:
    try:
        canonical = to_canonical(loinc, value, unit)
    except UnitConversionError:
        return "unit"
    bounds = load_lab_table().set_index("loinc").at[loinc, "plausible"]
    return None if bounds["min"] <= canonical <= bounds["max"] else "value"


def _icd10(code: str) -> bool:
    try:
        normalise_icd10(code)
    except ValueError:
        return False
    return True


def _iso(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def symptom_code_ok(system: str, code: str) -> bool:
    """A symptom coding that resolves to a live HPO term."""
    onto = load_ontology()
    if system in (HPO_SYSTEM, "HPO"):
        return bool(HPO_ID.match(code)) and onto.resolve(code) is not None
    return code in onto.snomed_to_hpo


def fhir_entry_problem(resource: dict, encounter_start: str) -> str | None:
    """The field of a bundle entry that is wrong, or None."""
    kind = resource["resourceType"]
    if kind == "Patient":
        start = datetime.fromisoformat(encounter_start).date()
        return "birthDate" if date.fromisoformat(resource["birthDate"]) > start else None
    if kind == "Condition":
        coding = resource["code"]["coding"][0]
        if coding["system"] == "http://hl7.org/fhir/sid/icd-10":
            return None if _icd10(coding["code"]) else "code.coding[0].code"
        return None if coding["code"].isdigit() else "code.coding[0].code"
    if kind == "Observation" and "valueBoolean" in resource:
        coding = resource["code"]["coding"][0]
        return None if symptom_code_ok(coding["system"], coding["code"]) else "code.coding[0].code"
    if kind == "Observation":
        quantity = resource["valueQuantity"]
        problem = _plausible(
            resource["code"]["coding"][0]["code"], quantity["value"], quantity["code"]
        )
        return {"unit": "valueQuantity.unit", "value": "valueQuantity.value"}.get(problem or "")
    return None


def lis_row_problem(row: dict) -> str | None:
    """The column of an LIS row that is wrong, or None."""
    if not _iso(row["collected_at"]):
        return "collected_at"
    return _plausible(row["loinc"], float(row["value"]), row["unit"])


def form_problem(line: str) -> str | None:
    """The field of an admission-form line that is wrong, or None."""
    doc = json.loads(line)
    if not _iso(doc["submitted_at"]):
        return "submitted_at"
    for k, item in enumerate(doc["reported_symptoms"]):
        if not symptom_code_ok(item["system"], item["code"]):
            return f"reported_symptoms[{k}].code"
    for k, code in enumerate(doc["comorbidities"]):
        if not _icd10(code):
            return f"comorbidities[{k}]"
    return None


def without_id(resource: dict) -> str:
    """A resource's content without its id, for spotting repeated entries."""
    return json.dumps({k: v for k, v in resource.items() if k != "id"}, sort_keys=True)
