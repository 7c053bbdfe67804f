"""FHIR bundles: validation, normalisation, per-entry quarantine and de-duplication."""

from __future__ import annotations

import pandas as pd
import pytest

from disease_pipeline.knowledge.hpo import load_ontology
from disease_pipeline.pipelines.ingestion.nodes import parse_fhir_bundles

from . import builders as b


def _quarantine(parsed) -> set[tuple]:
    q = parsed.quarantine
    return set(zip(q["line"], q["entry"], q["field"], q["reason"], strict=True))


def test_clean_bundle_becomes_canonical_rows(lines_of, vocab, params):
    parsed = parse_fhir_bundles(lines_of("b.ndjson", b.standard_bundle(1) + "\n"), vocab, params)
    assert parsed.quarantine.empty
    assert set(parsed.ledger["status"]) == {"accepted"} and parsed.read == 8
    patient = parsed.tables["patients"].iloc[0]
    assert (patient["patient_id"], patient["mrn"], patient["given_name"]) == (
        "p1",
        "MRN-p1",
        "Ana María",
    )
    assert patient["birth_date"] == pd.Timestamp("1980-02-03").to_pydatetime()
    encounter = parsed.tables["encounters"].iloc[0]
    assert encounter["start"].isoformat() == "2023-01-05T08:12:00+00:00"  # UTC
    assert encounter["encounter_class"] == "EMER"
    assert pd.isna(encounter["reported_age_years"])  # FHIR ages come from birthDate
    diagnosis = parsed.tables["diagnoses"].iloc[0]
    assert (diagnosis["code"], diagnosis["category"], diagnosis["severity"]) == (
        "J18.9",
        "COMMON",
        "high",
    )
    symptoms = parsed.tables["symptoms"]
    assert symptoms["present"].tolist() == [True, False]
    assert symptoms.iloc[0][["severity", "onset_days"]].tolist() == [2, 3.0]
    vitals = parsed.tables["vitals"].set_index("loinc")
    assert vitals.loc["8310-5", "unit"] == "Cel"
    assert vitals.loc["8310-5", "value"] == pytest.approx((101.3 - 32) * 5 / 9, abs=1e-3)
    assert parsed.tables["notes"]["text"].tolist() == ["Patient p1 has fever."]


def test_snomed_obsolete_hpo_and_rare_codes_are_normalised(lines_of, vocab, params):
    onto = load_ontology()
    snomed, mapped = next(iter(onto.snomed_to_hpo.items()))
    obsolete, replacement = next(iter(onto.replaced_by.items()))
    line = b.bundle(
        b.patient(),
        b.encounter(),
        b.condition(system=b.OMIM, code="OMIM:267500", sev="442452003"),
        b.symptom("s1", snomed, system=b.SNOMED),
        b.symptom("s2", obsolete),
    )
    parsed = parse_fhir_bundles(lines_of("b.ndjson", line), vocab, params)
    assert parsed.quarantine.empty
    symptoms = parsed.tables["symptoms"]
    assert symptoms["hpo_id"].tolist() == [mapped, replacement]
    assert symptoms["original_system"].tolist() == ["SNOMEDCT", "HPO"]
    diagnosis = parsed.tables["diagnoses"].iloc[0]
    assert diagnosis[["code", "system", "category", "severity"]].tolist() == [
        "267500", "OMIM", "RARE", "critical",
    ]  # fmt: skip


def test_bad_entries_are_quarantined_and_the_rest_is_kept(lines_of, vocab, params):
    bad = b.bundle(
        b.patient("p1", birth="2030-01-01"),  # returning patient, born after the encounter
        b.encounter("e3", "p1"),
        b.condition("e3", code="J18.9.."),  # malformed ICD-10
        b.symptom("s1", "HP:00O1945"),  # malformed HPO id
        b.vital("v1", "8867-4", 3000, "/min"),  # impossible heart rate
        b.vital("v2", "8867-4", 80, "kg"),  # unit with no conversion
        b.vital("v3", "8867-4", 80, "/min", when="2023-13-05T09:00:00+01:00"),  # bad date
        b.vital("v4", "8867-4", 81, "/min"),
    )
    text = "\n".join([b.standard_bundle(1), "{not json", bad, b.standard_bundle(2)]) + "\n"
    parsed = parse_fhir_bundles(lines_of("b.ndjson", text), vocab, params)
    found = _quarantine(parsed)
    assert (2, -1, "bundle", "malformed_json") in found
    assert (3, 0, "Patient.birthDate", "implausible_value") in found
    assert (3, 2, "Condition.code.coding[0].code", "unknown_code") in found
    assert (3, 3, "Observation.code.coding[0].code", "unknown_code") in found
    assert (3, 4, "Observation.valueQuantity.value", "implausible_value") in found
    assert (3, 5, "Observation.valueQuantity.code", "unknown_unit") in found
    assert (3, 6, "Observation.effectiveDateTime", "malformed_date") in found
    assert len(found) == 7
    # the rest of line 3 and the bundles around the bad line are kept
    assert parsed.tables["encounters"]["encounter_id"].tolist() == ["e1", "e3", "e2"]
    vitals = parsed.tables["vitals"]
    vitals_e3 = vitals[vitals["encounter_id"] == "e3"]
    assert sorted(vitals_e3["value"]) == [80.0, 81.0]  # v3 keeps its value, the date is dropped
    patients = parsed.tables["patients"].set_index("patient_id")
    assert patients.loc["p1", "birth_date"].year == 1980  # from the patient's clean copy
    assert parsed.read == 8 + 1 + 8 + 8


def test_repeated_observation_is_a_duplicate_and_returning_patient_is_not(lines_of, vocab, params):
    heart = b.vital("v1", "8867-4", 88, "/min")
    copy = {**heart, "id": "v1-copy"}
    first = b.bundle(b.patient(), b.encounter("e1"), heart, copy)
    second = b.bundle(b.patient(), b.encounter("e2", start="2023-02-01T10:00:00+01:00"))
    parsed = parse_fhir_bundles(lines_of("b.ndjson", f"{first}\n{second}\n"), vocab, params)
    ledger = parsed.ledger.set_index(["line", "entry"])["status"]
    assert ledger[(1, 3)] == "duplicate"
    assert (ledger.drop((1, 3)) == "accepted").all()
    assert len(parsed.tables["patients"]) == 1 and len(parsed.tables["vitals"]) == 1


def test_a_resent_bundle_is_a_duplicate(lines_of, vocab, params):
    line = b.standard_bundle(1)
    parsed = parse_fhir_bundles(lines_of("b.ndjson", f"{line}\n{line}\n"), vocab, params)
    statuses = parsed.ledger.groupby("line")["status"].agg(set)
    assert statuses.to_dict() == {1: {"accepted"}, 2: {"duplicate"}}
    assert len(parsed.tables["encounters"]) == 1


def test_unreadable_file_is_one_quarantined_record(tmp_path, vocab, params):
    from disease_pipeline.datasets import TextLinesDataset

    raw = TextLinesDataset(filepath=str(tmp_path / "missing.ndjson")).load()
    parsed = parse_fhir_bundles(raw, vocab, params)
    assert parsed.read == 1
    assert parsed.quarantine[["line", "reason"]].values.tolist() == [[0, "unreadable_file"]]


def test_worker_processes_give_the_same_result(lines_of, vocab, params):
    text = "\n".join([b.standard_bundle(n) for n in range(6)] + ["[1, 2"]) + "\n"
    raw = lines_of("b.ndjson", text)
    serial = parse_fhir_bundles(raw, vocab, params)
    params["fhir"].update(n_workers=2, chunk_size=2, parallel_min_lines=1)
    parallel = parse_fhir_bundles(raw, vocab, params)
    for name, table in serial.tables.items():
        pd.testing.assert_frame_equal(table, parallel.tables[name])
    pd.testing.assert_frame_equal(serial.ledger, parallel.ledger)
    pd.testing.assert_frame_equal(serial.quarantine, parallel.quarantine)


def test_a_flawed_first_copy_of_a_patient_gives_way_to_a_clean_one(lines_of, vocab, params):
    flawed = b.bundle(b.patient("p1", birth="2024-06-01"), b.encounter("e1", "p1"))
    clean = b.bundle(b.patient("p1"), b.encounter("e2", "p1", start="2024-07-01T10:00:00Z"))
    parsed = parse_fhir_bundles(lines_of("b.ndjson", f"{flawed}\n{clean}\n"), vocab, params)
    assert parsed.ledger["status"].tolist() == ["quarantined", "accepted", "accepted", "accepted"]
    patients = parsed.tables["patients"]
    assert len(patients) == 1 and patients["birth_date"].iloc[0].year == 1980


def test_invalid_elements_are_stripped_but_a_missing_required_one_drops_the_resource(
    lines_of, vocab, params
):
    no_status = b.vital("v1", "8867-4", 70, "/min")
    del no_status["status"]  # required by FHIR
    line = b.bundle(b.patient(birth="03/02/1980"), b.encounter(), no_status)
    parsed = parse_fhir_bundles(lines_of("b.ndjson", line), vocab, params)
    found = {(e, f, r) for _, e, f, r in _quarantine(parsed)}
    assert found == {
        (0, "Patient.birthDate", "malformed_date"),
        (2, "Observation.status", "missing_field"),
    }
    patient = parsed.tables["patients"].iloc[0]
    assert patient["birth_date"] is None and patient["family_name"] == "Ruiz"
    assert "vitals" not in parsed.tables
