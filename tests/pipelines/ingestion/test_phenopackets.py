"""Phenopackets: one patient and encounter each, features with their excluded flag."""

from __future__ import annotations

import json

from kedro_datasets.partitions import PartitionedDataset

from disease_pipeline.pipelines.ingestion.nodes import parse_phenopacket_folder
from disease_pipeline.pipelines.ingestion.phenopackets import iso_age_days

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


def test_no_folder_means_an_empty_source(vocab, params):
    parsed = parse_phenopacket_folder(None, vocab, params)
    assert parsed.read == 0 and parsed.ledger.empty and not parsed.tables


def test_iso_ages():
    assert iso_age_days("P1Y6M") == 365.25 + 6 * 30.4375
    assert iso_age_days("P2W3D") == 17
    assert iso_age_days("12 years") is None
