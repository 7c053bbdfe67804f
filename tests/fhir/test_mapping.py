"""One FHIR mapping for ingestion and the service: a bundle → a PatientRecord, with
every problem named by resource, element and reason."""

from __future__ import annotations

import json
import sys

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from disease_pipeline.fhir.answers import operation_outcome
from disease_pipeline.fhir.patient import age_at, map_bundle
from disease_pipeline.pipelines.ingestion.fhir_bundles import parse_bundle_line
from disease_pipeline.pipelines.ingestion.ledger import TABLE_COLUMNS
from disease_pipeline.serving.fhir_api import refused_field
from tests.pipelines.ingestion.builders import (
    HPO,
    OMIM,
    SNOMED,
    condition,
    encounter,
    note,
    patient,
    symptom,
    vital,
)


def bundle(*resources: dict) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


def chest_pain_bundle() -> dict:
    """Chest pain (HPO), sweating (SNOMED CT), no fever, a tachycardia in /min, a
    temperature in °F, diabetes (ICD-10) on the problem list, a note."""
    diabetes = condition("e1", code="E11.9")
    diabetes["id"] = "c-diabetes"
    return bundle(
        patient("p1", birth="1966-06-30", gender="male"),
        encounter("e1", "p1", start="2024-03-01T10:00:00+01:00"),
        diabetes,
        symptom("o-chest", "HP:0100749", severity=3, onset=0.1),
        symptom("o-sweat", "415690000", system=SNOMED),
        symptom("o-fever", "HP:0001945", present=False),
        vital("o-hr", "8867-4", 112, "/min"),
        vital("o-temp", "8310-5", 98.6, "[degF]"),
        note("Crushing chest pain since this morning."),
    )


def test_a_bundle_becomes_the_record_the_service_predicts(fhir_vocab):
    mapped = map_bundle(chest_pain_bundle(), fhir_vocab)
    assert mapped.errors == [], mapped.issues
    record = mapped.record
    assert (record.patient_id, record.encounter_id, record.sex) == ("p1", "e1", "male")
    assert record.age == 57  # born 1966-06-30, seen 2024-03-01
    assert record.encounter_date.isoformat() == "2024-03-01T09:00:00+00:00"
    symptoms = {(s.code, s.present, s.severity) for s in record.symptoms}
    assert ("HP:0100749", True, 3) in symptoms
    assert ("HP:0001945", False, None) in symptoms
    sweat = fhir_vocab.snomed_to_hpo.get("415690000")
    assert sweat is not None and (sweat, True, None) in symptoms  # SNOMED CT → HPO
    vitals = {m.loinc: (m.value, m.unit) for m in record.vitals}
    assert vitals["8867-4"] == (112.0, "/min")
    assert vitals["8310-5"][0] == pytest.approx(37.0, abs=0.01)  # UCUM [degF] → Cel
    assert record.comorbidities == ["E11.9"]
    assert "Crushing chest pain" in record.note
    assert mapped.sources["symptoms[0]"] == ("Observation/o-chest", "Observation")
    assert mapped.sources["comorbidities[0]"] == ("Condition/c-diabetes", "Condition")


def test_ingestion_reads_the_same_rows_from_the_same_bundle(fhir_vocab):
    """The pipeline's parser and the service share the mapping: same symptoms and
    measurements, in the same canonical units."""
    source = chest_pain_bundle()
    source["entry"] = [e for e in source["entry"] if e["resource"]["resourceType"] != "Condition"]
    _, error, _, entries = parse_bundle_line(1, json.dumps(source), fhir_vocab)
    assert error is None
    rows = [
        (table, dict(zip(TABLE_COLUMNS[table], values, strict=True)))
        for e in entries
        for table, values in e[4]
    ]
    ingested = {(r["hpo_id"], r["present"]) for t, r in rows if t == "symptoms"}
    ingested_vitals = {(r["loinc"], r["value"], r["unit"]) for t, r in rows if t == "vitals"}
    record = map_bundle(source, fhir_vocab).record
    assert ingested == {(s.code, s.present) for s in record.symptoms}
    assert ingested_vitals == {(m.loinc, m.value, m.unit) for m in record.vitals}


def test_a_bad_resource_is_named_with_its_element_and_problem(fhir_vocab):
    source = bundle(
        patient("p1"),
        encounter("e1"),
        vital("o-hr", "8867-4", 112, "furlongs"),
        symptom("o-x", "HP:9999999"),
    )
    mapped = map_bundle(source, fhir_vocab)
    assert mapped.record is None
    found = {(i.resource, i.element, i.reason) for i in mapped.errors}
    assert ("Observation/o-hr", "Observation.valueQuantity.code", "unknown_unit") in found
    assert ("Observation/o-x", "Observation.code.coding[0].code", "unknown_code") in found
    outcome = operation_outcome(mapped.issues)
    OperationOutcome.model_validate(outcome)
    texts = [i["details"]["text"] for i in outcome["issue"]]
    assert any(t.startswith("Observation/o-hr: Observation.valueQuantity.code:") for t in texts)
    assert {i["severity"] for i in outcome["issue"]} == {"error"}


def test_a_malformed_element_is_refused_not_dropped(fhir_vocab):
    """A birth date that is not a date: the bundle is refused naming it (the service
    never predicts on a silently thinned record)."""
    source = bundle(patient("p1", birth="1980-13-45"), encounter("e1"), symptom("o1", "HP:0100749"))
    mapped = map_bundle(source, fhir_vocab)
    assert mapped.record is None
    assert [(i.resource, i.element) for i in mapped.errors] == [("Patient/p1", "Patient.birthDate")]


@pytest.mark.parametrize("period", ["2024-03-01", ["2024-03-01"], 7])
def test_a_malformed_encounter_period_is_refused_naming_it(fhir_vocab, period):
    """A period that is not an object is the Encounter's named error, in the service
    and in ingestion alike (it used to raise out of the birth-date check)."""
    source = bundle(patient("p1", birth="1980-01-01"), encounter("e1"), symptom("o1", "HP:0100749"))
    source["entry"][1]["resource"]["period"] = period
    mapped = map_bundle(source, fhir_vocab)
    assert mapped.record is None
    assert {(i.resource, tuple(i.element.split(".")[:2])) for i in mapped.errors} == {
        ("Encounter/e1", ("Encounter", "period"))
    }
    _, error, _, entries = parse_bundle_line(1, json.dumps(source), fhir_vocab)
    assert error is None and len(entries) == len(source["entry"])


def test_unused_resources_are_warnings_and_the_rest_is_predicted(fhir_vocab):
    medication = {"resourceType": "MedicationStatement", "id": "m1", "status": "active"}
    rare = condition("e1", system=OMIM, code="OMIM:254090")
    source = bundle(patient("p1"), encounter("e1"), symptom("o1", "HP:0100749"), medication, rare)
    mapped = map_bundle(source, fhir_vocab)
    assert mapped.errors == []
    assert mapped.record is not None and mapped.record.comorbidities == []
    warned = {(i.resource, i.severity) for i in mapped.issues}
    assert ("MedicationStatement/m1", "warning") in warned
    assert ("Condition/c-e1", "warning") in warned  # OMIM: a candidate, not an input


def test_phenotypes_recorded_as_conditions_are_symptoms(fhir_vocab):
    present = condition("e1", system=HPO, code="HP:0002315")
    present["id"] = "c-headache"
    absent = condition("e1", system=HPO, code="HP:0001945")
    absent["id"] = "c-fever"
    absent["verificationStatus"] = {"coding": [{"code": "refuted"}]}
    mapped = map_bundle(bundle(patient("p1"), encounter("e1"), present, absent), fhir_vocab)
    assert {(s.code, s.present) for s in mapped.record.symptoms} == {
        ("HP:0002315", True),
        ("HP:0001945", False),
    }


@pytest.mark.parametrize(
    ("body", "element"),
    [
        ({"resourceType": "Patient", "id": "p1"}, "Bundle.resourceType"),
        ([1, 2], "Bundle.resourceType"),
        ({"resourceType": "Bundle", "entry": []}, "Bundle.entry"),
    ],
)
def test_what_is_not_a_bundle_is_refused(fhir_vocab, body, element):
    mapped = map_bundle(body, fhir_vocab)
    assert mapped.record is None and [i.element for i in mapped.errors] == [element]


def test_prefetch_without_encounter_uses_the_hook_context(fhir_vocab):
    obs = vital("o-hr", "8867-4", 70, "/min")
    mapped = map_bundle(bundle(patient("p1"), obs), fhir_vocab, encounter_id="enc-9")
    assert mapped.errors == [] and mapped.record.encounter_id == "enc-9"


def test_fields_refused_later_point_back_to_their_resource(fhir_vocab):
    mapped = map_bundle(chest_pain_bundle(), fhir_vocab)
    issue = refused_field(mapped, "record.vitals[0].value", "implausible")
    assert (issue.resource, issue.element) == (
        "Observation/o-hr",
        "Observation.valueQuantity.value",
    )
    issue = refused_field(mapped, "record.age", "too old")
    assert (issue.resource, issue.element) == ("Patient/p1", "Patient.birthDate")


def test_age_in_completed_years():
    from datetime import datetime

    assert age_at(datetime(2000, 3, 2), datetime(2024, 3, 1)) == 23
    assert age_at(datetime(2000, 3, 1), datetime(2024, 3, 1)) == 24
    assert age_at(None, datetime(2024, 3, 1)) is None


def test_comorbidities_need_no_icd10_cm_tables(fhir_vocab, monkeypatch):
    """The Bento leaves out the ICD-10-CM tables (names of codes outside the catalogue):
    a comorbidity outside the catalogue is still read."""
    monkeypatch.setitem(sys.modules, "simple_icd_10_cm", None)  # import raises ImportError
    insulin = condition("e1", code="Z79.4")
    assert "Z79.4" not in fhir_vocab.common
    mapped = map_bundle(bundle(patient("p1"), encounter("e1"), insulin), fhir_vocab)
    assert mapped.errors == [] and mapped.record.comorbidities == ["Z79.4"]


def test_the_encounters_service_provider_is_the_records_care_site(fhir_vocab):
    source = chest_pain_bundle()
    source["entry"][1]["resource"]["serviceProvider"] = {
        "reference": "Organization/north-hospital",
        "identifier": {"system": "urn:example:sites", "value": "north-ED"},
    }
    assert map_bundle(source, fhir_vocab).record.site == "north-ED"
    del source["entry"][1]["resource"]["serviceProvider"]["identifier"]
    assert map_bundle(source, fhir_vocab).record.site == "north-hospital"
    source["entry"][1]["resource"]["serviceProvider"] = {"display": "North <script>"}
    assert map_bundle(source, fhir_vocab).record.site is None  # no code: no site
    assert map_bundle(chest_pain_bundle(), fhir_vocab).record.site is None
