"""Tiny raw records in the shapes of docs/data_contracts.md, built by hand for tests."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path
from typing import Any

HPO = "http://purl.obolibrary.org/obo/hp.owl"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
OMIM = "https://omim.org"
LIS_COLUMNS = [
    "accession_id", "mrn", "encounter_id", "loinc", "test_name", "value", "unit", "collected_at",
]  # fmt: skip


def patient(pid: str = "p1", birth: str = "1980-02-03", gender: str = "female") -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [
            {
                "type": {"coding": [{"code": "MR"}]},
                "system": "urn:oid:2.16.840.1.113883.19.5",
                "value": f"MRN-{pid}",
            }
        ],
        "name": [{"given": ["Ana", "María"], "family": "Ruiz"}],
        "telecom": [
            {"system": "phone", "value": "555-0100"},
            {"system": "email", "value": "a@x.org"},
        ],
        "address": [
            {"line": ["1 Main St"], "city": "Springfield", "state": "IL", "postalCode": "62701"}
        ],
        "birthDate": birth,
        "gender": gender,
    }


def encounter(eid: str = "e1", pid: str = "p1", start: str = "2023-01-05T09:12:00+01:00") -> dict:
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": start},
    }


def condition(eid: str = "e1", system: str = ICD10, code: str = "J18.9", sev: str = "24484000"):
    return {
        "resourceType": "Condition",
        "id": f"c-{eid}",
        "code": {"coding": [{"system": system, "code": code}]},
        "verificationStatus": {"coding": [{"code": "confirmed"}]},
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "severity": {"coding": [{"system": SNOMED, "code": sev}]},
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": f"Encounter/{eid}"},
        "recordedDate": "2023-01-05T10:00:00+01:00",
    }


def symptom(oid: str, code: str, system: str = HPO, present: bool = True, **extra) -> dict:
    obs = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [{"coding": [{"code": "exam"}]}],
        "code": {"coding": [{"system": system, "code": code}]},
        "effectiveDateTime": "2023-01-05T09:12:00+01:00",
        "valueBoolean": present,
    }
    components = []
    if "severity" in extra:
        components.append(
            {"code": {"coding": [{"system": SNOMED, "code": "246112005"}]},
             "valueInteger": extra["severity"]}
        )  # fmt: skip
    if "onset" in extra:
        components.append(
            {"code": {"coding": [{"system": SNOMED, "code": "405795006"}]},
             "valueQuantity": {"value": extra["onset"], "unit": "d", "code": "d"}}
        )  # fmt: skip
    if components:
        obs["component"] = components
    return obs


def vital(oid: str, loinc: str, value: Any, unit: str, when: str = "2023-01-05T09:20:00+01:00"):
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [{"coding": [{"code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "code": unit},
    }


def note(text: str, oid: str = "d1") -> dict:
    data = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return {
        "resourceType": "DocumentReference",
        "id": oid,
        "status": "current",
        "content": [{"attachment": {"contentType": "text/plain", "data": data}}],
    }


def bundle(*resources: dict) -> str:
    """One NDJSON line: a collection Bundle of ``resources``."""
    entries = [{"resource": r} for r in resources]
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries})


def standard_bundle(n: int) -> str:
    """A clean bundle for encounter ``e{n}`` of patient ``p{n}``."""
    eid, pid = f"e{n}", f"p{n}"
    return bundle(
        patient(pid),
        encounter(eid, pid),
        condition(eid),
        symptom(f"s{n}a", "HP:0001945", severity=2, onset=3),
        symptom(f"s{n}b", "HP:0012735", present=False),
        vital(f"v{n}a", "8867-4", 88, "/min"),
        vital(f"v{n}b", "8310-5", 101.3, "[degF]"),
        note(f"Patient {pid} has fever."),
    )


def lis_csv(rows: list[dict], columns: list[str] = LIS_COLUMNS) -> str:
    """CSV text with ``columns`` as header; missing keys are written empty."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def lab(eid: str, loinc: str, value: str, unit: str, accession: str = "A1") -> dict:
    return {
        "accession_id": accession,
        "mrn": "MRN-p1",
        "encounter_id": eid,
        "loinc": loinc,
        "test_name": "whatever the LIS calls it",
        "value": value,
        "unit": unit,
        "collected_at": "2023-01-05T10:30:00+01:00",
    }


def form(form_id: str, eid: str, symptoms=None, comorbidities=None, **extra) -> str:
    doc = {
        "form_id": form_id,
        "encounter_id": eid,
        "mrn": "MRN-p1",
        "patient_name": "Ana Ruiz",
        "submitted_at": "2023-01-05T09:00:00+01:00",
        "reported_symptoms": symptoms if symptoms is not None else [],
        "comorbidities": comorbidities if comorbidities is not None else [],
        "smoker": False,
        **extra,
    }
    return json.dumps(doc)


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def phenopacket(packet_id: str = "PMID_1_P1", age: str | None = "P45Y") -> dict:
    """A minimal GA4GH Phenopacket v2: one feature, one OMIM disease, the age at last
    encounter as an ISO 8601 duration (omitted when ``age`` is None)."""
    subject: dict[str, Any] = {"id": "proband", "sex": "FEMALE"}
    if age is not None:
        subject["timeAtLastEncounter"] = {"age": {"iso8601duration": age}}
    return {
        "id": packet_id,
        "subject": subject,
        "phenotypicFeatures": [{"type": {"id": "HP:0001250", "label": "Seizure"}}],
        "diseases": [{"term": {"id": "OMIM:154700", "label": "Marfan syndrome"}}],
        "metaData": {"phenopacketSchemaVersion": "2.0"},
    }


def phenopacket_partitions(*packets: dict) -> dict[str, Any]:
    """Phenopackets as the lazy partitions a ``PartitionedDataset`` of text files loads."""
    texts = {p["id"]: json.dumps(p) for p in packets}
    return {packet_id: (lambda text=text: text) for packet_id, text in texts.items()}
