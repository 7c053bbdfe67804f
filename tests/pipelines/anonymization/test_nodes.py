"""The anonymisation nodes on the fixture tables."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from disease_pipeline.pipelines.anonymization.nodes import (
    ENCOUNTER_COLUMNS,
    PATIENT_COLUMNS,
    QUARANTINE_COLUMNS,
    age_in_years,
    anonymise_encounter_table,
    anonymise_encounters,
    anonymise_patients,
    anonymise_quarantine,
    compute_data_version,
    scrub_notes,
    zip3,
)
from disease_pipeline.pipelines.ingestion.ledger import Collector
from disease_pipeline.pipelines.ingestion.nodes import (
    build_canonical_tables,
    build_vocabulary,
    parse_phenopacket_folder,
)
from tests.pipelines.anonymization.fixtures import IDENTIFIERS, PROJECT_ROOT, int_tables
from tests.pipelines.ingestion import builders
from tests.pipelines.ingestion.conftest import base_parameters

KEY = b"unit-test-key-" * 3
PARAMS = yaml.safe_load(
    (PROJECT_ROOT / "conf" / "base" / "parameters_anonymization.yml").read_text()
)["anonymization"]


@pytest.fixture(scope="module")
def run() -> dict[str, pd.DataFrame]:
    """Every node applied to the fixture tables, as the pipeline chains them."""
    t = int_tables()
    out = {}
    out["patients"], patient_map = anonymise_patients(t["patients"], KEY, PARAMS)
    out["encounters"], encounter_map = anonymise_encounters(
        t["encounters"], patient_map, KEY, PARAMS
    )
    for name in ("symptoms", "vitals", "labs", "diagnoses"):
        out[name] = anonymise_encounter_table(
            t[name], encounter_map, KEY, PARAMS, PARAMS["tables"][name]
        )
    out["notes"] = scrub_notes(t["notes"], t["patients"], encounter_map, KEY, PARAMS)
    out["quarantine"] = anonymise_quarantine(t["quarantine"], t["patients"], KEY, PARAMS)
    return out


def test_tables_have_the_contract_columns(run):
    assert list(run["patients"].columns) == PATIENT_COLUMNS
    assert list(run["encounters"].columns) == ENCOUNTER_COLUMNS
    assert list(run["quarantine"].columns) == QUARANTINE_COLUMNS
    for name in ("symptoms", "vitals", "labs", "diagnoses", "notes"):
        assert list(run[name].columns) == list(int_tables()[name].columns)


def test_no_identifier_survives_in_any_output(run):
    text = "\n".join(frame.astype(str).to_csv() for frame in run.values())
    for kind, values in IDENTIFIERS.items():
        for value in values:
            assert value.lower() not in text.lower(), (kind, value)


def test_ids_are_consistent_pseudonyms_across_tables(run):
    encounters = run["encounters"].set_index("encounter_id")
    assert set(run["symptoms"]["encounter_id"]) <= set(encounters.index)
    assert set(encounters["patient_id"]) - set(run["patients"]["patient_id"]) == {
        encounters["patient_id"].iloc[-1]  # the orphan encounter's unknown patient
    }
    assert run["encounters"]["encounter_id"].str.fullmatch(r"[0-9a-f]{32}").all()


def test_date_shift_keeps_intervals_and_moves_every_date(run):
    raw = int_tables()
    start, raw_start = run["encounters"]["start"], raw["encounters"]["start"]
    assert start[1] - start[0] == raw_start[1] - raw_start[0]  # same patient
    shifts = (start - raw_start).dt.days.dropna()
    bounds = PARAMS["date_shift"]
    assert shifts.abs().between(bounds["min_days"], bounds["max_days"]).all()
    lab_shift = run["labs"]["collected_at"][0] - raw["labs"]["collected_at"][0]
    assert lab_shift == start[0] - raw_start[0]  # the lab moves with its patient


def test_unknown_patient_or_encounter_leaves_dates_empty(run):
    assert pd.isna(run["encounters"]["start"].iloc[-1])
    assert pd.isna(run["labs"]["collected_at"].iloc[-1])


def test_ages_are_exact_then_top_coded_at_90(run):
    enc = run["encounters"]
    assert enc["age_years"][0] == pytest.approx(64.8, abs=0.1)
    assert enc["age_years"][2] == 90.0 and enc["age_90_plus"][2]
    assert not enc["age_90_plus"][0]
    # the registry case's reported 95.5 years, grouped the same way
    assert enc["age_years"][3] == 90.0 and enc["age_90_plus"][3]
    # the orphan encounter has neither a birth date nor a reported age
    assert pd.isna(enc["age_years"][4]) and not enc["age_90_plus"][4]


def test_reported_age_is_used_only_without_birth_date_and_start():
    t = int_tables()
    t["encounters"]["reported_age_years"] = [10.0, None, None, 45.04, 33.3]
    _, patient_map = anonymise_patients(t["patients"], KEY, PARAMS)
    enc, _ = anonymise_encounters(t["encounters"], patient_map, KEY, PARAMS)
    assert enc["age_years"][0] == pytest.approx(64.8, abs=0.1)  # birth date and start win
    assert enc["age_years"][3] == 45.0 and not enc["age_90_plus"][3]  # rounded to 1 decimal
    assert enc["age_years"][4] == 33.3  # unknown patient: no birth date


def test_reported_age_does_not_reach_the_warehouse(run):
    assert "reported_age_years" in int_tables()["encounters"]
    assert "reported_age_years" not in run["encounters"]
    assert not (run["encounters"]["age_years"] > 90).any()


def test_registry_cases_get_their_stated_age_top_coded():
    """Phenopackets (ages, no dates) → ingestion → anonymisation: the age survives."""
    params = base_parameters()
    packets = builders.phenopacket_partitions(
        builders.phenopacket("pp-45", "P45Y"),
        builders.phenopacket("pp-95", "P95Y"),
        builders.phenopacket("pp-none", None),
    )
    parsed = parse_phenopacket_folder(packets, build_vocabulary(params), params)
    empty = {name: Collector(name, name).result() for name in ("fhir", "lis", "forms")}
    tables = build_canonical_tables(**empty, phenopackets=parsed)
    _, patient_map = anonymise_patients(tables["int_patients"], KEY, PARAMS)
    enc, _ = anonymise_encounters(tables["int_encounters"], patient_map, KEY, PARAMS)
    assert list(enc.columns) == ENCOUNTER_COLUMNS
    assert enc["age_years"].tolist()[:2] == [45.0, 90.0]
    assert enc["age_90_plus"].tolist() == [False, True, False]
    assert pd.isna(enc["age_years"][2])


def test_age_in_years_refuses_negative_ages():
    ages = age_in_years(
        pd.Series(pd.to_datetime(["2024-01-01"])), pd.Series(pd.to_datetime(["2023-01-01"])), 90, 1
    )
    assert ages["age_years"].isna().all()


def test_zip3_keeps_three_digits_and_blanks_sparse_areas():
    codes = pd.Series(["62704", "03601-1234", "8230", "K1A 0B1", None])
    assert zip3(codes, PARAMS["restricted_zip3"]).tolist() == ["627", "000", None, None, None]


def test_notes_are_scrubbed_but_keep_clinical_words(run):
    notes = run["notes"]["text"]
    assert "fever for 3 days" in notes[0] and "[NAME]" in notes[0]
    assert "[AGE 90+]" in notes[1]


def test_quarantine_keeps_position_and_reason_but_no_identifier(run):
    q = run["quarantine"]
    raw = int_tables()["quarantine"]
    assert q[["source", "file", "line", "entry", "field"]].equals(
        raw[["source", "file", "line", "entry", "field"]]
    )
    assert q["value"].tolist() == ["[REDACTED]", "[REDACTED]", "12,O", "HP:999", "[REDACTED]"]
    assert q["reason"][0] == "invalid date '[DATE]' for patient [ID]"
    assert q["record_id"][:4].str.fullmatch(r"[0-9a-f]{32}").all() and q["record_id"][4] is None


def test_missing_column_is_named():
    t = int_tables()
    with pytest.raises(
        ValueError, match=r"int_patients lacks required column\(s\) \['postal_code'\]"
    ):
        anonymise_patients(t["patients"].drop(columns="postal_code"), KEY, PARAMS)


def test_data_version_is_content_addressed():
    files = {
        "b.csv": {"sha256": "2" * 64, "size_bytes": 3},
        "a.json": {"sha256": "1" * 64, "size_bytes": 5},
    }
    report, table = compute_data_version(files)
    again, _ = compute_data_version(dict(reversed(list(files.items()))))
    assert report["data_version"] == again["data_version"]
    assert report["n_files"] == 2 and table["path"].tolist() == ["a.json", "b.csv"]
    changed, _ = compute_data_version({**files, "a.json": {"sha256": "3" * 64, "size_bytes": 5}})
    assert changed["data_version"] != report["data_version"]
    with pytest.raises(ValueError, match="raw_snapshot_files is empty"):
        compute_data_version({})


def test_quarantined_codes_are_kept_whole():
    t = int_tables()
    quarantine = t["quarantine"].iloc[[3, 3]].reset_index(drop=True)
    quarantine["value"] = ["HP:00O5143", "80110049"]
    out = anonymise_quarantine(quarantine, t["patients"], KEY, PARAMS)
    assert out["value"].tolist() == ["HP:00O5143", "80110049"]
