"""Phenopackets: one patient and encounter each, features with their excluded flag."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from kedro_datasets.partitions import PartitionedDataset

from disease_pipeline.pipelines.ingestion.ledger import Collector
from disease_pipeline.pipelines.ingestion.nodes import (
    build_canonical_tables,
    parse_phenopacket_folder,
)
from disease_pipeline.pipelines.ingestion.phenopackets import iso_age_days

from . import builders as b
from .conftest import SAMPLE_PHENOPACKETS


def _partitions(path) -> dict:
    return PartitionedDataset(
        path=str(path), dataset="text.TextDataset", filename_suffix=".json"
    ).load()


def test_sample_phenopackets_become_rare_encounters(vocab, params):
    files = sorted(SAMPLE_PHENOPACKETS.rglob("*.json"))
    parsed = parse_phenopacket_folder(_partitions(SAMPLE_PHENOPACKETS), vocab, params)
    assert parsed.read == len(files)
    encounters = parsed.tables["encounters"]
    assert len(encounters) == len(parsed.tables["patients"]) == len(files)
    assert set(encounters["source"]) == {"phenopacket"}
    diagnoses = parsed.tables["diagnoses"]
    assert set(diagnoses["category"]) == {"RARE"} and set(diagnoses["system"]) <= {"OMIM", "ORPHA"}
    assert set(diagnoses["encounter_id"]) == set(encounters["encounter_id"])
    # the excluded flag of every feature is kept
    packet = json.loads(files[0].read_text())
    symptoms = parsed.tables["symptoms"]
    symptoms = symptoms[symptoms["encounter_id"] == packet["id"]]
    excluded = [bool(f.get("excluded", False)) for f in packet["phenotypicFeatures"]]
    assert (~symptoms["present"]).sum() == sum(excluded)
    # the stated age at the last encounter is kept, in years
    ages = encounters.set_index("encounter_id")["reported_age_years"]
    for path in files:
        stated = json.loads(path.read_text())["subject"].get("timeAtLastEncounter")
        age = ages[json.loads(path.read_text())["id"]]
        if stated is None:
            assert pd.isna(age)
        else:
            assert age == iso_age_days(stated["age"]["iso8601duration"]) / 365.25
    assert ages.notna().sum() == 49


def test_bad_and_repeated_files_are_quarantined_or_counted(tmp_path, vocab, params):
    good = json.loads(next(SAMPLE_PHENOPACKETS.rglob("*.json")).read_text())
    good["subject"]["timeAtLastEncounter"] = {"age": {"iso8601duration": "P10Y"}}
    good["phenotypicFeatures"] = [
        {"type": {"id": "HP:0001250"}, "onset": {"age": {"iso8601duration": "P4Y"}}},
        {"type": {"id": "HP:9999999"}},  # not an HPO term
    ]
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.json").write_text(json.dumps(good))
    (tmp_path / "a" / "two.json").write_text(json.dumps(good))  # same id again
    (tmp_path / "broken.json").write_text("{")
    parsed = parse_phenopacket_folder(_partitions(tmp_path), vocab, params)
    statuses = dict(
        zip(
            parsed.ledger["file"].str.rsplit("/", n=1).str[-1], parsed.ledger["status"], strict=True
        )
    )
    assert statuses == {
        "one.json": "quarantined",
        "two.json": "duplicate",
        "broken.json": "quarantined",
    }
    reasons = set(zip(parsed.quarantine["field"], parsed.quarantine["reason"], strict=True))
    assert reasons == {
        ("phenotypicFeatures[1].type.id", "unknown_code"),
        ("file", "malformed_json"),
    }
    symptom = parsed.tables["symptoms"].iloc[0]
    assert symptom["onset_days"] == iso_age_days("P6Y")


def test_malformed_elements_are_quarantined_by_name_and_the_rest_kept(tmp_path, vocab, params):
    """An element of the wrong JSON type is quarantined naming its field; the file's
    good parts and the other files are read (it used to stop the whole folder)."""
    good = json.loads(next(SAMPLE_PHENOPACKETS.rglob("*.json")).read_text())
    bad = json.loads(json.dumps(good)) | {"id": "bad-one"}
    bad["subject"]["timeAtLastEncounter"] = "P10Y"
    bad["phenotypicFeatures"] = [
        None,
        {"type": "HP:0001250"},
        {"type": {"id": "HP:0001250"}, "onset": {"age": "P4Y"}},
    ]
    bad["interpretations"] = [{"diagnosis": "OMIM:1"}]
    bad["diseases"] = [{"term": {"id": "OMIM:154700", "label": "Marfan syndrome"}}]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    (tmp_path / "good.json").write_text(json.dumps(good))
    parsed = parse_phenopacket_folder(_partitions(tmp_path), vocab, params)
    assert parsed.read == 2
    named = set(zip(parsed.quarantine["field"], parsed.quarantine["reason"], strict=True))
    assert {
        ("subject.timeAtLastEncounter", "malformed_value"),
        ("phenotypicFeatures[0]", "malformed_value"),
        ("phenotypicFeatures[1].type", "malformed_value"),
        ("phenotypicFeatures[2].onset.age", "malformed_value"),
        ("interpretations[0].diagnosis", "malformed_value"),
    } <= named
    symptoms = parsed.tables["symptoms"]
    kept = symptoms[symptoms["encounter_id"] == "bad-one"]
    assert list(kept["hpo_id"]) == ["HP:0001250"] and kept["onset_days"].isna().all()
    assert set(parsed.tables["encounters"]["encounter_id"]) == {"bad-one", good["id"]}


def test_a_present_newer_hpo_term_is_stored_as_its_ancestor(tmp_path, vocab, params):
    """HP:0025836 (HPO 2025-11-24, newer than the pinned release) is read as its nearest
    ancestor HP:0031393 when present, with the recorded term kept as original_code; an
    excluded one is quarantined (its absence says nothing of the parent)."""
    packet = json.loads(next(SAMPLE_PHENOPACKETS.rglob("*.json")).read_text())
    packet["phenotypicFeatures"] = [
        {"type": {"id": "HP:0001250"}},
        {"type": {"id": "HP:0025836"}},
        {"type": {"id": "HP:0025836"}, "excluded": True},
    ]
    (tmp_path / "one.json").write_text(json.dumps(packet))
    parsed = parse_phenopacket_folder(_partitions(tmp_path), vocab, params)
    symptoms = parsed.tables["symptoms"]
    stored = list(
        zip(symptoms["hpo_id"], symptoms["original_code"], symptoms["present"], strict=True)
    )
    assert stored == [("HP:0001250", "HP:0001250", True), ("HP:0031393", "HP:0025836", True)]
    reasons = set(zip(parsed.quarantine["field"], parsed.quarantine["reason"], strict=True))
    assert reasons == {("phenotypicFeatures[2].type.id", "unknown_code")}


def test_no_folder_means_an_empty_source(vocab, params):
    parsed = parse_phenopacket_folder(None, vocab, params)
    assert parsed.read == 0 and parsed.ledger.empty and not parsed.tables


def test_iso_ages():
    assert iso_age_days("P1Y6M") == 365.25 + 6 * 30.4375
    assert iso_age_days("P2W3D") == 17
    assert iso_age_days("12 years") is None


def _empty(source: str):
    return Collector(source, source).result()


def test_reported_age_is_the_age_at_last_encounter_in_years(vocab, params):
    partitions = b.phenopacket_partitions(
        b.phenopacket("pp-45", "P45Y"),
        b.phenopacket("pp-child", "P3Y6M"),
        b.phenopacket("pp-none", None),
        b.phenopacket("pp-bad", "45 years"),  # not an ISO 8601 age: unknown, as for onsets
        b.phenopacket("pp-old", "P130Y"),
    )
    parsed = parse_phenopacket_folder(partitions, vocab, params)
    tables = build_canonical_tables(_empty("fhir"), _empty("lis"), _empty("forms"), parsed)
    encounters = tables["int_encounters"]  # validated by the schema
    assert encounters["reported_age_years"].dtype == "float64"
    ages = encounters.set_index("encounter_id")["reported_age_years"]
    assert ages["pp-45"] == 45.0
    assert ages["pp-child"] == pytest.approx(3.5, abs=1e-9)
    assert ages[["pp-none", "pp-bad", "pp-old"]].isna().all()
    quarantine = parsed.quarantine
    assert quarantine[["record_id", "field", "reason"]].values.tolist() == [
        ["pp-old", "subject.timeAtLastEncounter.age.iso8601duration", "implausible_value"]
    ]
