"""The files of ``kedro run --pipeline=simulate`` (test env) against docs/data_contracts.md."""

from __future__ import annotations

import base64
import json
import math

import pandas as pd
import pytest
from fhir.resources.R4B.bundle import Bundle

from disease_pipeline.knowledge.catalogue import normalise_icd10
from tests.pipelines.simulate import checks

pytestmark = pytest.mark.slow

SEVERITY_CODES = {"255604002", "6736007", "24484000", "442452003"}
CONDITION_SYSTEMS = {"http://hl7.org/fhir/sid/icd-10", "https://omim.org", "https://www.orpha.net"}


def _within_binomial(k: int, n: int, p: float) -> bool:
    return abs(k - n * p) <= 4 * math.sqrt(n * p * (1 - p)) + 1


def test_every_bundle_is_valid_fhir_r4(bundles):
    for line, bundle in enumerate(bundles, start=1):
        try:
            Bundle.model_validate(bundle)
        except Exception as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"bundle on line {line} is not valid FHIR R4B: {exc}")


def test_bundles_follow_the_contract(bundles, test_params):
    assert len(bundles) == test_params["n_encounters"]
    starts = []
    for bundle in bundles:
        assert bundle["type"] == "collection"
        resources = [e["resource"] for e in bundle["entry"]]
        kinds = [r["resourceType"] for r in resources]
        assert kinds[:3] == ["Patient", "Encounter", "Condition"]
        assert kinds.count("Condition") == 1 and kinds.count("Patient") == 1
        assert set(kinds[3:]) <= {"Observation", "DocumentReference"}
        patient, encounter, condition = resources[:3]
        assert patient["identifier"][0]["type"]["coding"][0]["code"] == "MR"
        assert encounter["class"]["code"] in {"AMB", "EMER", "IMP"}
        assert condition["code"]["coding"][0]["system"] in CONDITION_SYSTEMS
        assert condition["severity"]["coding"][0]["code"] in SEVERITY_CODES
        assert condition["subject"]["reference"] == f"Patient/{patient['id']}"
        assert condition["encounter"]["reference"] == f"Encounter/{encounter['id']}"
        starts.append(pd.Timestamp(encounter["period"]["start"]))
    assert pd.Series(starts).is_monotonic_increasing  # exported in time order
    years = {s.year for s in starts}
    assert years == {2021, 2022, 2023, 2024}


def test_symptom_observations_carry_value_severity_onset_and_both_code_systems(bundles):
    systems, absent, severity, onset = set(), 0, set(), 0
    for bundle in bundles:
        for entry in bundle["entry"]:
            r = entry["resource"]
            if r["resourceType"] == "Observation" and "valueBoolean" in r:
                systems.add(r["code"]["coding"][0]["system"])
                absent += not r["valueBoolean"]
                for c in r.get("component", []):
                    code = c["code"]["coding"][0]["code"]
                    if code == "246112005":
                        severity.add(c["valueInteger"])
                    if code == "405795006":
                        onset += c["valueQuantity"]["unit"] == "d"
    assert systems == {checks.HPO_SYSTEM, checks.SNOMED_SYSTEM}
    assert absent > 0 and onset > 0 and severity == {1, 2, 3}


def _fhir_problems(bundles) -> set[tuple[int, int, str]]:
    found = set()
    for line, bundle in enumerate(bundles, start=1):
        start = bundle["entry"][1]["resource"]["period"]["start"]
        for k, entry in enumerate(bundle["entry"]):
            problem = checks.fhir_entry_problem(entry["resource"], start)
            if problem:
                found.add((line, k, problem))
    return found


def test_ground_truth_lists_exactly_the_wrong_fhir_entries(bundles, injected):
    listed = injected[(injected["source"] == "fhir") & (injected["kind"] == "error")]
    expected = set(zip(listed["line"], listed["entry"], listed["field"], strict=True))
    assert expected and _fhir_problems(bundles) == expected


def test_ground_truth_lists_exactly_the_wrong_lis_rows(lab_results, injected):
    found = {
        (i + 1, problem)
        for i, row in enumerate(lab_results.to_dict("records"))
        if (problem := checks.lis_row_problem(row))
    }
    listed = injected[(injected["source"] == "lis") & (injected["kind"] == "error")]
    assert found == set(zip(listed["line"], listed["field"], strict=True))
    assert set(listed["field"]) == {"value", "unit", "collected_at"}


def test_ground_truth_lists_exactly_the_wrong_forms(form_lines, injected):
    found = {(i + 1, p) for i, line in enumerate(form_lines) if (p := checks.form_problem(line))}
    listed = injected[(injected["source"] == "forms") & (injected["kind"] == "error")]
    assert found and found == set(zip(listed["line"], listed["field"], strict=True))


def test_ground_truth_lists_exactly_the_duplicates(bundles, lab_results, form_lines, injected):
    dup = injected[injected["kind"] == "duplicate"]
    seen: set = set()
    lis_copies = set()
    for i, row in enumerate(lab_results.itertuples(index=False), start=1):
        if row in seen:
            lis_copies.add(i)
        seen.add(row)
    assert lis_copies == set(dup.loc[dup["source"] == "lis", "line"])
    seen_lines: set = set()
    form_copies = set()
    for i, line in enumerate(form_lines, start=1):
        if line in seen_lines:
            form_copies.add(i)
        seen_lines.add(line)
    assert form_copies == set(dup.loc[dup["source"] == "forms", "line"])
    fhir_copies = set()
    for line, bundle in enumerate(bundles, start=1):
        contents = [checks.without_id(e["resource"]) for e in bundle["entry"]]
        ids = [e["resource"]["id"] for e in bundle["entry"]]
        assert len(set(ids)) == len(ids)  # the copy has a new resource id
        fhir_copies |= {(line, k) for k, c in enumerate(contents) if c in contents[:k]}
    listed = dup[dup["source"] == "fhir"]
    assert fhir_copies and fhir_copies == set(zip(listed["line"], listed["entry"], strict=True))


def test_error_and_duplicate_rates_match_the_parameters(
    injected, bundles, lab_results, form_lines, test_params
):
    rate_e, rate_d = test_params["errors"]["rate"], test_params["duplicates"]["rate"]
    n_records = {"fhir": len(bundles), "lis": len(lab_results), "forms": len(form_lines)}
    for source, n in n_records.items():
        rows = injected[injected["source"] == source]
        assert _within_binomial(int((rows["kind"] == "error").sum()), n, rate_e), source
        assert _within_binomial(int((rows["kind"] == "duplicate").sum()), n, rate_d), source


def test_lis_uses_unit_variants_and_links_to_encounters(lab_results, bundles):
    units = lab_results.groupby("loinc")["unit"].nunique()
    assert units.get("2345-7", 0) >= 2 and units.get("2160-0", 0) >= 2
    encounter_ids = {b["entry"][1]["resource"]["id"] for b in bundles}
    assert set(lab_results["encounter_id"]) <= encounter_ids
    assert list(lab_results.columns) == [
        "accession_id",
        "mrn",
        "encounter_id",
        "loinc",
        "test_name",
        "value",
        "unit",
        "collected_at",
    ]


def test_forms_have_messy_but_valid_comorbidity_spelling(form_lines):
    codes = [c for line in form_lines for c in json.loads(line)["comorbidities"]]
    messy = [c for c in codes if c != c.upper() or ("." not in c and len(c) > 3)]
    assert messy and len(messy) < len(codes)
    valid = 0
    for code in codes:
        try:
            normalise_icd10(code)
            valid += 1
        except ValueError:
            pass
    assert valid >= 0.9 * len(codes)
    first = json.loads(form_lines[0])
    assert list(first) == [
        "form_id",
        "encounter_id",
        "mrn",
        "patient_name",
        "submitted_at",
        "reported_symptoms",
        "comorbidities",
        "smoker",
    ]


def test_identifiers_cover_every_patient_and_notes_sometimes_name_them(simulated, bundles):
    ids = pd.read_csv(
        simulated / "ground_truth" / "identifiers.csv", dtype=str, keep_default_na=False
    )
    known = set(zip(ids["kind"], ids["value"], strict=True))
    named = 0
    emails = 0
    for bundle in bundles:
        patient = bundle["entry"][0]["resource"]
        name = patient["name"][0]
        assert ("mrn", patient["identifier"][0]["value"]) in known
        assert ("family_name", name["family"]) in known
        assert ("birth_date", patient["birthDate"]) in known
        assert ("postal_code", patient["address"][0]["postalCode"]) in known
        assert ("address_line", patient["address"][0]["line"][0]) in known
        for telecom in patient["telecom"]:
            assert (telecom["system"], telecom["value"]) in known
            emails += telecom["system"] == "email"
        for entry in bundle["entry"]:
            if entry["resource"]["resourceType"] == "DocumentReference":
                text = base64.b64decode(
                    entry["resource"]["content"][0]["attachment"]["data"]
                ).decode()
                named += name["family"] in text
    assert emails > 0
    assert 0 < named < len(bundles) / 2
