"""FHIR R4 resources as plain dicts, in the shape of docs/data_contracts.md.

Building dicts and serialising them with :mod:`json` is much faster than going through
the ``fhir.resources`` models; the models validate the result (tests, ``validate_sample``).
"""

from __future__ import annotations

import base64
import json

MRN_SYSTEM = "urn:oid:2.16.840.1.113883.19.5"
HPO_SYSTEM = "http://purl.obolibrary.org/obo/hp.owl"
SNOMED_SYSTEM = "http://snomed.info/sct"
LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
CONDITION_SYSTEMS = {
    "ICD10": "http://hl7.org/fhir/sid/icd-10",
    "OMIM": "https://omim.org",
    "ORPHA": "https://www.orpha.net",
}
#: Human-readable ``valueQuantity.unit`` of UCUM codes whose code is not what people write.
UNIT_DISPLAY = {"Cel": "°C", "[degF]": "°F", "mm[Hg]": "mmHg"}
_TERMINOLOGY = "http://terminology.hl7.org/CodeSystem"
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def entry_json(resource: dict) -> str:
    """One bundle entry (``{"resource": …}``) as compact JSON."""
    return '{"resource":' + _ENCODER.encode(resource) + "}"


def bundle_json(bundle_id: str, entries: list[str]) -> str:
    """A ``collection`` Bundle around already-serialised entries (one NDJSON line)."""
    head = f'{{"resourceType":"Bundle","id":"{bundle_id}","type":"collection","entry":['
    return head + ",".join(entries) + "]}"


def _coded(system: str, code: str, display: str | None = None) -> dict:
    coding = {"system": system, "code": code}
    if display is not None:
        coding["display"] = display
    return {"coding": [coding]}


def patient_resource(p: dict) -> dict:
    """A ``Patient`` from one row of the simulated patients."""
    telecom = [{"system": "phone", "value": p["phone"], "use": "home"}]
    if p["email"]:
        telecom.append({"system": "email", "value": p["email"]})
    address = {
        "use": "home",
        "line": [p["address_line"]],
        "city": p["city"],
        "state": p["state"],
        "postalCode": p["postal_code"],
    }
    identifier = {
        "use": "usual",
        "type": _coded(f"{_TERMINOLOGY}/v2-0203", "MR"),
        "system": MRN_SYSTEM,
        "value": p["mrn"],
    }
    return {
        "resourceType": "Patient",
        "id": p["patient_id"],
        "identifier": [identifier],
        "name": [{"use": "official", "family": p["family_name"], "given": [p["given_name"]]}],
        "telecom": telecom,
        "gender": p["sex"],
        "birthDate": p["birth_date"],
        "address": [address],
    }


def encounter_resource(eid: str, refs: dict, klass: str, start: str) -> dict:
    """A finished ``Encounter`` of class AMB, EMER or IMP."""
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": {"system": f"{_TERMINOLOGY}/v3-ActCode", "code": klass},
        "subject": refs["subject"],
        "period": {"start": start},
    }


def condition_resource(oid: str, refs: dict, diagnosis: dict, recorded: str) -> dict:
    """The confirmed diagnosis; ``diagnosis`` has system, code, name, severity code/name."""
    code = _coded(CONDITION_SYSTEMS[diagnosis["system"]], diagnosis["code"], diagnosis["name"])
    return {
        "resourceType": "Condition",
        "id": oid,
        "clinicalStatus": _coded(f"{_TERMINOLOGY}/condition-clinical", "active"),
        "verificationStatus": _coded(f"{_TERMINOLOGY}/condition-ver-status", "confirmed"),
        "category": [_coded(f"{_TERMINOLOGY}/condition-category", "encounter-diagnosis")],
        "severity": _coded(SNOMED_SYSTEM, diagnosis["severity_code"], diagnosis["severity_name"]),
        "code": code | {"text": diagnosis["name"]},
        **refs,
        "recordedDate": recorded,
    }


def symptom_observation(oid: str, refs: dict, when: str, finding: dict) -> dict:
    """A symptom ``Observation``: HPO or SNOMED CT coded, present or explicitly absent.

    ``finding`` has system (``HPO``/``SNOMEDCT``), code, name, present, severity (0 =
    none) and onset_days (-1 = none).
    """
    if finding["system"] == "SNOMEDCT":
        code = _coded(SNOMED_SYSTEM, finding["code"])
    else:
        code = _coded(HPO_SYSTEM, finding["code"], finding["name"])
    obs = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [_coded(f"{_TERMINOLOGY}/observation-category", "exam")],
        "code": code | {"text": finding["name"]},
        **refs,
        "effectiveDateTime": when,
        "valueBoolean": finding["present"],
    }
    components = []
    if finding["severity"] > 0:
        components.append(
            {"code": _coded(SNOMED_SYSTEM, "246112005"), "valueInteger": finding["severity"]}
        )
    if finding["onset_days"] >= 0:
        onset = {"value": finding["onset_days"], "unit": "d", "system": UCUM_SYSTEM, "code": "d"}
        components.append({"code": _coded(SNOMED_SYSTEM, "405795006"), "valueQuantity": onset})
    if components:
        obs["component"] = components
    return obs


def vital_observation(oid: str, refs: dict, when: str, vital: dict) -> dict:
    """A vital-sign ``Observation``; ``vital`` has loinc, name, value, unit (UCUM code)."""
    unit = vital["unit"]
    quantity = {
        "value": vital["value"],
        "unit": UNIT_DISPLAY.get(unit, unit),
        "system": UCUM_SYSTEM,
        "code": unit,
    }
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [_coded(f"{_TERMINOLOGY}/observation-category", "vital-signs")],
        "code": _coded(LOINC_SYSTEM, vital["loinc"], vital["name"]) | {"text": vital["name"]},
        **refs,
        "effectiveDateTime": when,
        "valueQuantity": quantity,
    }


def document_reference(oid: str, refs: dict, when: str, klass: str, text: str) -> dict:
    """The encounter's free-text note as a base64 ``text/plain`` attachment."""
    if klass == "EMER":
        note_type = _coded(LOINC_SYSTEM, "34111-5", "Emergency department note")
    else:
        note_type = _coded(LOINC_SYSTEM, "11506-3", "Progress note")
    attachment = {
        "contentType": "text/plain",
        "language": "en",
        "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
    }
    return {
        "resourceType": "DocumentReference",
        "id": oid,
        "status": "current",
        "type": note_type,
        "subject": refs["subject"],
        "date": when,
        "content": [{"attachment": attachment}],
        "context": {"encounter": [refs["encounter"]]},
    }
