"""The whole ingestion pipeline on bad raw input, through the project's catalog file.

The catalog is conf/base/catalog_ingestion.yml with its paths pointed at tmp_path, so
these tests exercise the real datasets and nodes without touching data/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from disease_pipeline.pipelines.ingestion import create_pipeline
from disease_pipeline.pipelines.ingestion.nodes import build_vocabulary
from disease_pipeline.pipelines.ingestion.pipeline import TABLES

from . import builders as b
from .conftest import PROJECT_ROOT, SAMPLE_PHENOPACKETS, base_parameters


def make_catalog(root: Path, phenopackets: Path) -> DataCatalog:
    """The ingestion catalog with ``data_root`` = ``root``, plus the two simulate entries."""
    text = (PROJECT_ROOT / "conf" / "base" / "catalog_ingestion.yml").read_text()
    text = text.replace("${globals:data_root}", str(root))
    text = text.replace("${globals:phenopackets_dir}", str(phenopackets))
    config = {k: v for k, v in yaml.safe_load(text).items() if not k.startswith("_")}
    for name, path in (("raw_fhir_bundles", "fhir/bundles.ndjson"),
                       ("raw_admission_forms", "forms/admission_forms.jsonl")):  # fmt: skip
        config[name] = {
            "type": "disease_pipeline.datasets.TextLinesDataset",
            "filepath": str(root / "01_raw" / path),
        }
    catalog = DataCatalog.from_config(config)
    params = base_parameters()
    params["phenopackets"]["folder"] = str(phenopackets)
    catalog["params:ingestion"] = params
    return catalog


def run(root: Path, phenopackets: Path) -> DataCatalog:
    catalog = make_catalog(root, phenopackets)
    SequentialRunner().run(create_pipeline(), catalog)
    return catalog


@pytest.fixture
def bad_export(tmp_path) -> tuple[Path, Path]:
    """Bundles with a malformed line, a LIS CSV without ``unit``, no forms file at all."""
    raw = tmp_path / "01_raw"
    lines = [b.standard_bundle(1), '{"resourceType": "Bundle", "entry": [', b.standard_bundle(2)]
    b.write(raw / "fhir" / "bundles.ndjson", "\n".join(lines) + "\n")
    columns = [c for c in b.LIS_COLUMNS if c != "unit"]
    b.write(raw / "lis" / "lab_results.csv", b.lis_csv([b.lab("e1", "2345-7", "90", "")], columns))
    packets = tmp_path / "phenopackets" / "nested"
    packets.mkdir(parents=True)
    for path in sorted(SAMPLE_PHENOPACKETS.rglob("*.json"))[:3]:
        shutil.copy(path, packets / path.name)
    return tmp_path, packets.parent


def test_bad_parts_are_quarantined_and_reported_while_the_rest_is_ingested(bad_export):
    root, packets = bad_export
    catalog = run(root, packets)
    encounters = catalog.load("int_encounters")
    assert encounters["encounter_id"].tolist()[:2] == ["e1", "e2"]  # around the bad line
    assert (encounters["source"] == "phenopacket").sum() == 3
    assert encounters["reported_age_years"].dtype == "float64"
    assert encounters.loc[encounters["source"] == "fhir", "reported_age_years"].isna().all()
    quarantine = catalog.load("int_quarantine")
    hospital = quarantine[quarantine["source"] != "phenopacket"]
    assert hospital.groupby(["source", "line", "reason"]).size().to_dict() == {
        ("fhir", 2, "malformed_json"): 1,
        ("lis", 1, "missing_column"): 1,
        ("forms", 0, "unreadable_file"): 1,
    }
    report = json.loads((root / "08_reporting" / "ingestion_quality.json").read_text())
    assert report["conservation"]["holds"]
    assert report["unreadable_files"][0]["source"] == "forms"
    assert report["missing_columns"] == ["lis: unit"]
    assert report["scoring"]["available"] is False  # no ground truth for this export
    markdown = (root / "08_reporting" / "ingestion_quality.md").read_text()
    assert "malformed_json" in markdown and "admission_forms.jsonl" in markdown
    for name in TABLES:
        assert (root / "02_intermediate" / f"{name.removeprefix('int_')}.parquet").exists()


def test_rerunning_on_the_same_input_gives_identical_tables(bad_export):
    root, packets = bad_export
    first = run(root, packets)
    tables = {name: first.load(name) for name in [*TABLES, "int_ingestion_ledger"]}
    second = run(root, packets)
    for name, table in tables.items():
        pd.testing.assert_frame_equal(second.load(name), table, check_like=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["fhir"].pop("chunk_size"), r"ingestion\.fhir: missing key\(s\) chunk_size"),
        (lambda p: p["fhir"].update(n_workers=0), r"ingestion\.fhir\.n_workers"),
        (lambda p: p["scoring"].update(min_recall=2), r"ingestion\.scoring\.min_recall"),
        (lambda p: p.update(min_date="01/01/1900"), r"ingestion\.min_date"),
        (lambda p: p["severity_codes"].update({"1": "mild"}), r"ingestion\.severity_codes"),
    ],
)
def test_bad_parameters_are_named(change, message):
    params = base_parameters()
    change(params)
    with pytest.raises(ValueError, match=message):
        build_vocabulary(params)
