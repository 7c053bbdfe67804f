"""The patient record's one rule set: each bad record reports the same problems in the
three modes (collect for the API, first for the pyfunc, quarantine for ingestion), and
the callers' adapters (RecordNormaliser, normalise_records, Vocabulary) agree."""

from __future__ import annotations

import math
import pickle

import pytest

from disease_pipeline.fhir.vocabulary import Reject as VocabularyReject
from disease_pipeline.fhir.vocabulary import Vocabulary, read_parameters
from disease_pipeline.knowledge.record_rules import (
    REASONS,
    FieldProblem,
    FieldRules,
    NewerTerm,
    RecordProblems,
    RecordRules,
    Reject,
)
from disease_pipeline.predictor.records_check import normalise_records
from disease_pipeline.records import Measurement, PatientRecord, Symptom
from disease_pipeline.serving.inputs import InputError, RecordNormaliser
from tests.conftest import PROJECT_ROOT

FEVER = {"code": "HP:0001945"}


def record(**fields) -> PatientRecord:
    fields.setdefault("symptoms", [FEVER])
    return PatientRecord(age=40, sex="female", **fields)


def constructed(**fields) -> PatientRecord:
    """A record that skipped pydantic's checks (``model_construct``): the rules still hold."""
    return record().model_copy(update=fields)


#: bad record → the (field, reason) of each of its problems, in the order reported
BAD_RECORDS = {
    "malformed HPO id": (
        record(symptoms=[{"code": "fever"}]),
        [("symptoms[0].code", "unknown_code")],
    ),
    "SNOMED CT code without HPO term": (
        record(symptoms=[FEVER, {"code": "1", "system": "SNOMEDCT"}]),
        [("symptoms[1].code", "unknown_code")],
    ),
    "empty symptom list": (record(symptoms=[]), [("symptoms", "missing_field")]),
    "unconvertible unit": (
        record(vitals=[{"loinc": "8310-5", "value": 37, "unit": "kg"}]),
        [("vitals[0].unit", "unknown_unit")],
    ),
    "implausible vital": (
        record(vitals=[{"loinc": "8867-4", "value": 900, "unit": "/min"}]),
        [("vitals[0].value", "implausible_value")],
    ),
    "implausible after conversion": (
        record(vitals=[{"loinc": "8310-5", "value": 200, "unit": "[degF]"}]),
        [("vitals[0].value", "implausible_value")],
    ),
    "vital sent as a lab": (
        record(labs=[{"loinc": "8867-4", "value": 80, "unit": "/min"}]),
        [("labs[0].loinc", "misplaced_code")],
    ),
    "lab sent as a vital": (
        record(vitals=[{"loinc": "2345-7", "value": 90, "unit": "mg/dL"}]),
        [("vitals[0].loinc", "misplaced_code")],
    ),
    "unknown LOINC code": (
        record(labs=[{"loinc": "0000-0", "value": 1, "unit": "x"}]),
        [("labs[0].loinc", "unknown_code")],
    ),
    "NaN lab value": (
        record(labs=[{"loinc": "2345-7", "value": math.nan, "unit": "mg/dL"}]),
        [("labs[0].value", "malformed_value")],
    ),
    "infinite vital": (
        record(vitals=[{"loinc": "8867-4", "value": math.inf, "unit": "/min"}]),
        [("vitals[0].value", "malformed_value")],
    ),
    "malformed comorbidity": (
        record(comorbidities=["I10", "hypertension"]),
        [("comorbidities[1]", "unknown_code")],
    ),
    "implausible encounter date": (
        record(encounter_date="0001-01-01T00:00:00"),
        [("encounter_date", "implausible_value")],
    ),
    "implausible age (unchecked record)": (constructed(age=300.0), [("age", "implausible_value")]),
    "severity out of range (unchecked record)": (
        constructed(
            symptoms=[Symptom.model_construct(code="HP:0001945", system="HPO", severity=7)]
        ),
        [("symptoms[0].severity", "implausible_value")],
    ),
    "several problems": (
        record(
            symptoms=[{"code": "HP:99999"}, FEVER],
            vitals=[
                {"loinc": "8310-5", "value": 37, "unit": "kg"},
                {"loinc": "8867-4", "value": 80, "unit": "/min"},
            ],
            labs=[{"loinc": "2345-7", "value": -1, "unit": "mg/dL"}],
            comorbidities=["nope"],
        ),
        [
            ("symptoms[0].code", "unknown_code"),
            ("vitals[0].unit", "unknown_unit"),
            ("labs[0].value", "implausible_value"),
            ("comorbidities[0]", "unknown_code"),
        ],
    ),
}


@pytest.fixture(scope="module")
def rules() -> RecordRules:
    return RecordRules()


@pytest.fixture(scope="module")
def fhir_vocab() -> Vocabulary:
    parameters = PROJECT_ROOT / "conf" / "base" / "parameters_ingestion.yml"
    return Vocabulary.from_knowledge(read_parameters(parameters))


def fields_and_reasons(problems, where: str) -> list[tuple[str, str]]:
    return [(p.field.removeprefix(f"{where}."), p.reason) for p in problems]


@pytest.mark.parametrize("name", list(BAD_RECORDS))
def test_the_three_modes_report_the_same_problems(rules, name):
    bad, expected = BAD_RECORDS[name]
    with pytest.raises(RecordProblems) as collected:
        rules.collect(bad, "patient")
    problems = collected.value.problems
    assert fields_and_reasons(problems, "patient") == expected
    assert all(p.reason in REASONS and p.message for p in problems)

    with pytest.raises(FieldProblem) as first:
        rules.first(bad, "patient")
    assert first.value.problem == problems[0]
    assert isinstance(first.value, ValueError)
    assert str(first.value) == f"{problems[0].field}: {problems[0].message}"

    checked, rejects = rules.quarantine(bad, "patient")
    assert [(r.field, r.value, r.reason, r.detail) for r in rejects] == [
        (p.field, p.value, p.reason, p.message) for p in problems
    ]
    assert all(isinstance(r, VocabularyReject) for r in rejects)  # ingestion's Reject
    # the quarantined record keeps what is good and drops (or nulls) what is not
    kept = checked.record
    assert len(kept.symptoms) + len(kept.vitals) + len(kept.labs) + len(kept.comorbidities) == (
        len(bad.symptoms)
        + len(bad.vitals)
        + len(bad.labs)
        + len(bad.comorbidities)
        - sum(1 for field, _ in expected if "[" in field)
    )
    for field, _ in expected:
        if field in ("age", "encounter_date"):
            assert getattr(kept, field) is None


@pytest.mark.parametrize("name", list(BAD_RECORDS))
def test_the_callers_adapters_report_them_too(name):
    bad, expected = BAD_RECORDS[name]
    with pytest.raises(InputError) as api:
        RecordNormaliser().normalise(bad, "patients[3]")
    errors = api.value.errors
    assert [(e.field.removeprefix("patients[3]."), e.reason) for e in errors] == expected
    if expected == [("symptoms", "missing_field")]:
        # the pyfunc predicts a record without symptoms (the service refuses the request)
        assert len(normalise_records([bad])) == 1
        return
    with pytest.raises(ValueError) as pyfunc:
        normalise_records([record(encounter_id="ok"), bad])
    assert isinstance(pyfunc.value, FieldProblem)
    field, reason = expected[0]
    assert (pyfunc.value.problem.field, pyfunc.value.problem.reason) == (
        f"records[1].{field}",
        reason,
    )
    assert str(pyfunc.value).startswith(f"records[1].{field}: ")
    assert pyfunc.value.problem.message == errors[0].message


def test_the_pyfunc_gains_the_services_rules(rules):
    plain = record(symptoms=[{"code": "49727002", "system": "SNOMEDCT"}])
    prefixed = record(symptoms=[{"code": "SNOMEDCT:49727002", "system": "SNOMEDCT"}])
    assert normalise_records([plain]) == normalise_records([prefixed])
    with pytest.raises(ValueError, match=r"records\[0\]\.labs\[0\]\.value: .*plausible range"):
        normalise_records([record(labs=[{"loinc": "2345-7", "value": 5000, "unit": "mg/dL"}])])
    with pytest.raises(ValueError, match=r"records\[0\]\.labs\[0\]\.loinc: .*send it under vitals"):
        normalise_records([record(labs=[{"loinc": "8867-4", "value": 80, "unit": "/min"}])])


def test_a_newer_hpo_id_is_ignored_by_the_record_modes_and_quarantined_by_ingestion(rules):
    newer = "HP:9999998"
    assert rules.ontology.resolve(newer) is None
    checked = rules.collect(record(symptoms=[{"code": newer}, FEVER]), "patient")
    assert [s.code for s in checked.record.symptoms] == ["HP:0001945"]
    assert checked.ignored == [("patient.symptoms[0].code", newer)]
    assert any(newer in note and "ignored" in note for note in checked.notes)
    fields = FieldRules.from_ontology(rules.ontology)
    with pytest.raises(NewerTerm) as caught:
        fields.hpo("Observation.code.coding[0].code", newer)
    assert isinstance(caught.value, Reject) and caught.value.reason == "unknown_code"


#: a phenotype term of the newer HPO release (2025-11-24) that the pinned one lacks, and
#: its nearest ancestor there (knowledge/data/hpo_newer_terms.tsv)
NEWER, NEWER_PARENT = "HP:0025836", "HP:0031393"


def test_a_present_finding_with_a_newer_term_is_read_as_its_nearest_ancestor(rules):
    counted: list[str] = []
    counting = RecordRules(rules.ontology, on_unknown_term=counted.append)
    absent = {"code": NEWER, "present": False}
    checked = counting.collect(record(symptoms=[{"code": NEWER}, absent, FEVER]), "patient")
    codes = [(s.code, s.present) for s in checked.record.symptoms]
    assert codes == [(NEWER_PARENT, True), ("HP:0001945", True)]
    # the absent one is dropped: a specific finding's absence says nothing of its parent
    assert checked.ignored == [("patient.symptoms[1].code", NEWER)]
    read, ignored = checked.notes[0], checked.notes[1]
    assert "patient.symptoms[0]" in read and "nearest ancestor" in read and NEWER_PARENT in read
    assert "Increased CD8+ T cell proportion" in read
    assert "patient.symptoms[1]" in ignored and "not generalised" in ignored
    assert counted == [NEWER, NEWER]  # both are terms the release lacks
    fields = FieldRules.from_ontology(rules.ontology)
    assert fields.finding("f", NEWER, present=True) == NEWER_PARENT
    assert fields.finding("f", " hp:0025836 ", present=True) == NEWER_PARENT
    with pytest.raises(NewerTerm):
        fields.finding("f", NEWER, present=False)
    with pytest.raises(NewerTerm):
        fields.finding("f", "HP:9999998", present=True)


def test_the_newer_terms_are_phenotypes_unknown_here_with_a_live_ancestor(rules):
    onto = rules.ontology
    assert onto.newer_version == "2025-11-24"
    assert len(onto.newer) > 300
    for term, (name, ancestor) in onto.newer.items():
        assert onto.resolve(term) is None, term
        assert onto.is_phenotype(ancestor), (term, ancestor)
        assert name
    assert onto.newer_ancestor(NEWER) == NEWER_PARENT
    assert onto.newer_ancestor("HP:0001945") is None  # a live term is not "newer"


def test_field_rules_are_the_vocabularys(fhir_vocab):
    """Ingestion's Vocabulary is the rule set's FieldRules: same canonical values, same
    problems (vital-vs-lab is the record's: ingestion files a LOINC code by its kind)."""
    fields = ("code", "value", "unit")
    info, value = fhir_vocab.measurement(fields, "8310-5", 102.2, "[degF]")
    assert info.unit == "Cel" and value == pytest.approx(39.0, abs=0.01)
    for loinc, given, unit, field, reason in [
        ("8310-5", 37, "kg", "unit", "unknown_unit"),
        ("8310-5", math.nan, "Cel", "value", "malformed_value"),
        ("8310-5", 60, "Cel", "value", "implausible_value"),
        ("0000-0", 1, "x", "code", "unknown_code"),
    ]:
        with pytest.raises(VocabularyReject) as caught:
            fhir_vocab.measurement(fields, loinc, given, unit)
        assert (caught.value.field, caught.value.reason) == (field, reason)
    assert fhir_vocab.symptom("f", "SNOMEDCT", "SNOMEDCT:49727002") == ("HP:0012735", "SNOMEDCT")
    rejected = pickle.loads(pickle.dumps(NewerTerm("f", "HP:9999998")))
    assert type(rejected) is NewerTerm and rejected.reason == "unknown_code"


def test_valid_records_pass_every_mode_unchanged(rules):
    good = record(
        symptoms=[FEVER, {"code": "HP:0002315", "present": False}],
        vitals=[Measurement(loinc="8867-4", value=80.0, unit="/min")],
        labs=[Measurement(loinc="2345-7", value=95.0, unit="mg/dL")],
        comorbidities=["I10"],
    )
    collected = rules.collect(good, "patient").record
    assert rules.first(good, "patient").record == collected == good
    checked, rejects = rules.quarantine(good, "patient")
    assert rejects == [] and checked.record == good
