"""Ingestion of the simulator's test export, through ``kedro run --pipeline=ingestion``."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from disease_pipeline.pipelines.ingestion.pipeline import TABLES
from disease_pipeline.schemas import TABLE_SCHEMAS
from tests.conftest import TEST_DATA_ROOT, run_pipeline

pytestmark = pytest.mark.slow
RAW = TEST_DATA_ROOT / "01_raw"


@pytest.fixture(scope="module")
def catalog(pipeline_runner, test_catalog):
    pipeline_runner("simulate")
    pipeline_runner("ingestion")
    return test_catalog


@pytest.fixture(scope="module")
def report(catalog) -> dict:
    return catalog.load("reporting_ingestion_quality")


def test_every_table_follows_its_schema(catalog):
    for name, schema in TABLE_SCHEMAS.items():
        schema.validate(catalog.load(name))


def test_records_read_are_counted_from_the_raw_files(report):
    lines = (RAW / "fhir" / "bundles.ndjson").read_text(encoding="utf-8").splitlines()
    entries = sum(len(json.loads(line)["entry"]) for line in lines)
    lis_rows = len((RAW / "lis" / "lab_results.csv").read_text().splitlines()) - 1
    forms = len((RAW / "forms" / "admission_forms.jsonl").read_text().splitlines())
    sources = report["conservation"]["sources"]
    assert report["conservation"]["holds"]
    assert (sources["fhir"]["read"], sources["lis"]["read"], sources["forms"]["read"]) == (
        entries,
        lis_rows,
        forms,
    )


def test_injected_errors_and_duplicates_are_found_without_false_alarms(report, catalog):
    scoring = report["scoring"]
    assert scoring["available"], "the simulator's ground truth should be scored"
    assert scoring["errors_injected"] > 0 and scoring["duplicates_injected"] > 0
    assert scoring["error_recall"] >= 0.99, scoring["missed_examples"]
    assert scoring["duplicate_recall"] >= 0.99, scoring["missed_examples"]
    assert scoring["false_quarantine_share"] <= 0.001, scoring["false_quarantine_examples"]
    assert (RAW.parent / "08_reporting" / "ingestion_quality.md").exists()


def test_each_encounter_has_at_most_one_primary_diagnosis_with_its_category(catalog):
    diagnoses = catalog.load("int_diagnoses")
    primary = diagnoses[diagnoses["role"] == "primary"]
    assert not primary["encounter_id"].duplicated().any()
    rare = primary["system"].isin(["OMIM", "ORPHA"])
    assert (primary.loc[rare, "category"] == "RARE").all()
    assert rare.any() and (~rare).any()
    fhir = catalog.load("int_encounters").query("source == 'fhir'", engine="python")
    assert primary["encounter_id"].isin(fhir["encounter_id"]).sum() >= 0.98 * len(fhir)


def test_rerunning_gives_identical_tables(catalog):
    before = {name: catalog.load(name) for name in [*TABLES, "int_ingestion_ledger"]}
    run_pipeline("ingestion")
    for name, table in before.items():
        pd.testing.assert_frame_equal(catalog.load(name), table, obj=name)
