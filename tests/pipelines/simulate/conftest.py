"""Fixtures of the simulator tests: the test-environment run and a mid-size in-memory cohort."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest

from disease_pipeline.pipelines.simulate import nodes
from tests.conftest import TEST_DATA_ROOT

RAW = TEST_DATA_ROOT / "01_raw"
OUTPUT_FILES = [
    RAW / "fhir" / "bundles.ndjson",
    RAW / "lis" / "lab_results.csv",
    RAW / "forms" / "admission_forms.jsonl",
    RAW / "ground_truth" / "injected.csv",
    RAW / "ground_truth" / "identifiers.csv",
]


@pytest.fixture(scope="session")
def test_params(test_catalog) -> dict:
    """``simulate:`` parameters of the test environment (a fresh copy per use)."""
    return copy.deepcopy(test_catalog.load("params:simulate"))


@pytest.fixture(scope="session")
def simulated(pipeline_runner) -> Path:
    """Runs ``kedro run --pipeline=simulate --env=test`` once; returns the 01_raw folder."""
    pipeline_runner("simulate")
    return RAW


@pytest.fixture(scope="session")
def bundles(simulated) -> list[dict]:
    """Every FHIR bundle of the test run, parsed."""
    text = (simulated / "fhir" / "bundles.ndjson").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="session")
def lab_results(simulated) -> pd.DataFrame:
    """The LIS CSV of the test run, every column as text."""
    return pd.read_csv(simulated / "lis" / "lab_results.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="session")
def form_lines(simulated) -> list[str]:
    """The admission-form JSON lines of the test run."""
    return (simulated / "forms" / "admission_forms.jsonl").read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="session")
def injected(simulated) -> pd.DataFrame:
    """The simulator's ground truth of injected errors and duplicates."""
    return pd.read_csv(simulated / "ground_truth" / "injected.csv", keep_default_na=False)


@pytest.fixture(scope="session")
def cohort(test_params) -> dict:
    """A 6,000-encounter cohort built by the real nodes in memory (no files, no FHIR).

    Big enough for the statistical checks, which the 600-encounter test run is not.
    """
    params = copy.deepcopy(test_params)
    params["n_encounters"] = 6000
    params["rare"].update(n_diseases=30, share=0.03, cases_min=3, cases_max=20)
    cfg = nodes.validate_parameters(params)
    rare, terms = nodes.select_rare_diseases(cfg)
    patients, visits = nodes.simulate_population(cfg)
    encounters, comorbidities = nodes.assign_diagnoses(cfg, patients, visits, rare)
    symptoms, vitals, labs = nodes.simulate_findings(cfg, encounters, comorbidities, rare, terms)
    return {
        "cfg": cfg,
        "rare": rare,
        "terms": terms,
        "patients": patients,
        "encounters": encounters,
        "comorbidities": comorbidities,
        "symptoms": symptoms,
        "vitals": vitals,
        "labs": labs,
    }
