"""The anonymization pipeline run for real through Kedro, and the PHI-leak tests.

Two runs: one on the fixture tables in a throw-away copy of the ``test`` conf (always
available), one on the simulator's records after simulate → ingestion (the data the
rest of the suite uses). Every identifier must be absent from layers 03–08, from the
warehouse and from the run's logs.
"""

from __future__ import annotations

import json
import os
import stat
from importlib.util import find_spec

import duckdb
import pandas as pd
import pytest
from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project

from disease_pipeline.pipelines.anonymization.nodes import (
    ENCOUNTER_COLUMNS,
    PATIENT_COLUMNS,
    QUARANTINE_COLUMNS,
)
from disease_pipeline.pipelines.anonymization.pseudonyms import KEY_ENV_VAR, LOCAL_KEY_FILE
from tests.conftest import PROJECT_ROOT, TEST_DATA_ROOT, load_catalog, run_pipeline
from tests.pipelines.anonymization.fixtures import (
    IDENTIFIERS,
    INT_TABLES,
    captured_logs,
    int_tables,
    make_project_conf,
    run_anonymization,
)
from tests.pipelines.anonymization.leaks import LeakFinder, warehouse_tables

CONTRACT_TABLES = {"metadata", *INT_TABLES}


@pytest.fixture(scope="module", autouse=True)
def _project() -> None:
    """Configure the project so ``pipelines`` is the project's registry."""
    bootstrap_project(PROJECT_ROOT)


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory):
    """The pipeline on the fixture tables in the test environment (local key file)."""
    if os.environ.get(KEY_ENV_VAR):
        pytest.skip(f"{KEY_ENV_VAR} is set: this run checks the local-key-file path")
    conf, data_root = make_project_conf(tmp_path_factory.mktemp("anonymization"), "test")
    with captured_logs() as logs:
        run_anonymization(conf, "test", int_tables())
    return data_root, "\n".join(logs)


@pytest.mark.slow
def test_warehouse_holds_the_contract_tables(fixture_run):
    data_root, _ = fixture_run
    tables = warehouse_tables(data_root / "03_primary" / "warehouse.duckdb")
    assert set(tables) == CONTRACT_TABLES
    assert list(tables["patients"].columns) == PATIENT_COLUMNS
    assert list(tables["encounters"].columns) == ENCOUNTER_COLUMNS
    assert list(tables["quarantine"].columns) == QUARANTINE_COLUMNS
    assert len(tables["encounters"]) == len(int_tables()["encounters"])
    report = json.loads((data_root / "08_reporting" / "data_version.json").read_text())
    assert set(tables["metadata"]["data_version"]) == {report["data_version"]}
    assert report["n_files"] == 3 + 60  # three raw exports and the phenopacket sample


@pytest.mark.slow
def test_no_public_key_in_the_test_environment(fixture_run):
    """Without a configured key the run uses this machine's random key file (0600)."""
    _, logs = fixture_run
    assert "PUBLIC" not in logs
    assert stat.S_IMODE(LOCAL_KEY_FILE.stat().st_mode) == 0o600


@pytest.mark.slow
def test_no_fixture_identifier_in_outputs_or_logs(fixture_run):
    data_root, logs = fixture_run
    identifiers = pd.DataFrame(
        [(kind, value) for kind, values in IDENTIFIERS.items() for value in values],
        columns=["kind", "value"],
    )
    finder = LeakFinder(identifiers)
    assert finder.in_layers(data_root) == []
    assert finder.in_text("logs", logs) == []


def test_pipeline_is_registered_and_reads_the_key_dataset():
    pipeline = pipelines["anonymization"]
    assert "anonymization_key" in pipeline.inputs()
    assert {f"prm_{t}" for t in CONTRACT_TABLES} <= pipeline.outputs()
    assert {"int_patient_key_map", "int_encounter_key_map"}.isdisjoint(pipeline.outputs())


@pytest.mark.slow
def test_no_simulated_identifier_leaks_after_simulate_ingestion_anonymization(
    pipeline_runner,
):
    """The simulator's identifiers.csv against layers 03–08, the warehouse and the logs."""
    if not all(find_spec(f"disease_pipeline.pipelines.{p}") for p in ("simulate", "ingestion")):
        pytest.skip("simulate and ingestion pipelines are not available")
    pipeline_runner("simulate")
    pipeline_runner("ingestion")
    info_log = PROJECT_ROOT / "info.log"
    offset = info_log.stat().st_size if info_log.exists() else 0
    with captured_logs() as logs:
        run_pipeline("anonymization")
    new_file_logs = ""
    if info_log.exists() and info_log.stat().st_size >= offset:
        with info_log.open(errors="replace") as handle:
            handle.seek(offset)
            new_file_logs = handle.read()
    identifiers = load_catalog().load("raw_ground_truth_identifiers")
    assert len(identifiers) > 100 and {"full_name", "mrn", "phone"} <= set(identifiers["kind"])
    finder = LeakFinder(identifiers)
    raw = {t: load_catalog().load(t) for t in ("int_patients", "int_notes")}
    assert {"int_patients.mrn: mrn", "int_notes.text: family_name"} <= set(finder.in_frames(raw))
    assert finder.in_layers(TEST_DATA_ROOT) == []
    assert finder.in_text("captured logs", "\n".join(logs)) == []
    assert finder.in_text("info.log", new_file_logs) == []
    with duckdb.connect(str(TEST_DATA_ROOT / "03_primary" / "warehouse.duckdb"), True) as con:
        encounters = con.execute("SELECT count(*) FROM encounters").fetchone()[0]
    assert encounters == len(load_catalog().load("int_encounters"))
