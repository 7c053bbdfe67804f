"""Tiny layer-02 tables with known identifiers, and a throw-away copy of the project conf.

The tables follow docs/data_contracts.md (02_intermediate). Every identifier they
carry is listed in ``IDENTIFIERS`` so tests can prove none reaches layer 03.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from disease_pipeline.pipelines.ingestion.ledger import INT_TABLES

PROJECT_ROOT = Path(__file__).resolve().parents[3]
RAW_FILES = ("fhir/bundles.ndjson", "lis/lab_results.csv", "forms/admission_forms.jsonl")

#: Every personal identifier in the fixture (what the simulator writes to identifiers.csv).
IDENTIFIERS = {
    "name": ["Ana María", "Ruiz-Delgado", "Walter", "Okafor", "Ana María Ruiz-Delgado"],
    "mrn": ["MRN-7741203", "MRN-0098812", "7741203"],
    "phone": ["(217) 555-0143", "603-555-0199", "2175550143"],
    "email": ["ana.ruiz@example.org"],
    "street": ["412 Maple Street", "77 Harbor Rd"],
    "city": ["Springfield", "Portland"],
    "zip": ["62704", "03601"],
    "birth_date": ["1958-03-14", "1925-07-02", "03/14/1958"],
    "record_id": ["ACC-553201", "F-000123", "pt-001", "pt-002", "enc-0001", "enc-0003"],
}


def int_tables() -> dict[str, pd.DataFrame]:
    """Two identified patients (one aged 97), a registry case (aged 95), one orphan encounter."""
    patients = pd.DataFrame(
        {
            "patient_id": ["pt-001", "pt-002", "PMID_1_P1"],
            "source": ["fhir", "fhir", "phenopacket"],
            "mrn": ["MRN-7741203", "MRN-0098812", None],
            "given_name": ["Ana María", "Walter", None],
            "family_name": ["Ruiz-Delgado", "Okafor", None],
            "birth_date": pd.to_datetime(["1958-03-14", "1925-07-02", None]),
            "sex": ["female", "male", "unknown"],
            "address_line": ["412 Maple Street", "77 Harbor Rd", None],
            "city": ["Springfield", "Portland", None],
            "state": ["IL", "NH", None],
            "postal_code": ["62704", "03601", None],
            "phone": ["(217) 555-0143", "603-555-0199", None],
            "email": ["ana.ruiz@example.org", None, None],
        }
    )
    encounters = pd.DataFrame(
        {
            "encounter_id": ["enc-0001", "enc-0002", "enc-0003", "pp-1", "enc-0099"],
            "patient_id": ["pt-001", "pt-001", "pt-002", "PMID_1_P1", "ghost"],
            "source": ["fhir", "fhir", "fhir", "phenopacket", "fhir"],
            "start": pd.to_datetime(
                [
                    "2023-01-05T09:12:00+01:00",
                    "2023-03-01T18:00:00+00:00",
                    "2023-06-15T07:30:00+00:00",
                    None,
                    "2023-02-02T10:00:00+00:00",
                ],
                utc=True,
            ),
            "encounter_class": ["AMB", "EMER", "IMP", None, "AMB"],
            # stated by the registry case only (P95Y6M); FHIR ages come from birth dates
            "reported_age_years": [None, None, None, 95.5, None],
        }
    )
    symptoms = pd.DataFrame(
        {
            "encounter_id": ["enc-0001", "enc-0001", "enc-0003", "pp-1"],
            "hpo_id": ["HP:0001945", "HP:0012735", "HP:0002094", "HP:0001250"],
            "present": [True, False, True, True],
            "severity": pd.array([2, None, 3, None], dtype="Int64"),
            "onset_days": [3.0, None, 1.0, None],
            "source": ["fhir", "fhir", "forms", "phenopacket"],
            "original_system": ["HPO", "SNOMEDCT", "HPO", "HPO"],
            "original_code": ["HP:0001945", "49727002", "HP:0002094", "HP:0001250"],
        }
    )
    vitals = pd.DataFrame(
        {
            "encounter_id": ["enc-0001", "enc-0003"],
            "loinc": ["8310-5", "59408-5"],
            "name": ["Body temperature", "Oxygen saturation"],
            "value": [38.4, 91.0],
            "unit": ["Cel", "%"],
        }
    )
    labs = pd.DataFrame(
        {
            "encounter_id": ["enc-0001", "enc-0002", "enc-0099"],
            "loinc": ["2345-7", "2160-0", "2345-7"],
            "name": ["Glucose", "Creatinine", "Glucose"],
            "value": [99.0, 1.1, 140.0],
            "unit": ["mg/dL", "mg/dL", "mg/dL"],
            "original_value": [5.5, 97.0, 140.0],
            "original_unit": ["mmol/L", "umol/L", "mg/dL"],
            "collected_at": pd.to_datetime(
                [
                    "2023-01-05T10:00:00+00:00",
                    "2023-03-02T08:00:00+00:00",
                    "2023-02-02T11:00:00+00:00",
                ],
                utc=True,
            ),
        }
    )
    diagnoses = pd.DataFrame(
        {
            "encounter_id": ["enc-0001", "enc-0001", "enc-0003", "pp-1"],
            "code": ["J10.1", "E11.9", "I21.9", "209950"],
            "system": ["ICD10", "ICD10", "ICD10", "OMIM"],
            "name": ["Influenza", "Type 2 diabetes", "Myocardial infarction", "Rare thing"],
            "category": ["COMMON", "COMMON", "COMMON", "RARE"],
            "role": ["primary", "comorbidity", "primary", "primary"],
            "severity": ["moderate", None, "critical", None],
        }
    )
    notes = pd.DataFrame(
        {
            "encounter_id": ["enc-0001", "enc-0003", "enc-0099"],
            "text": [
                "Ana María Ruiz-Delgado (MRN-7741203), DOB 03/14/1958, seen on 2023-01-05. "
                "Lives at 412 Maple Street, Springfield 62704. Call (217) 555-0143 or "
                "ana.ruiz@example.org. Mrs. Ruiz-Delgado reports fever for 3 days.",
                "Mr. OKAFOR, 97 y, chest pain since March 3, 2023; phone 603.555.0199. "
                "MRN 0098812.",
                "Walk-in, patient called from 603-555-0199; fever.",
            ],
        }
    )
    quarantine = pd.DataFrame(
        {
            "source": ["fhir", "fhir", "lis", "forms", "fhir"],
            "file": [
                "fhir/bundles.ndjson",
                "fhir/bundles.ndjson",
                "lis/lab_results.csv",
                "forms/admission_forms.jsonl",
                "fhir/bundles.ndjson",
            ],
            "line": [4, 9, 12, 3, 17],
            "entry": [0, 0, -1, -1, -1],
            "record_id": ["pt-001", "pt-002", "ACC-553201", "F-000123", None],
            "field": [
                "Patient.birthDate",
                "Patient.telecom[0].value",
                "value",
                "reported_symptoms[0].code",
                None,
            ],
            "value": [
                "1958-02-30",
                "603-555-0199",
                "12,O",
                "HP:999",
                '{"resourceType": "Patient", "name": [{"family": "Okafor"}]}',
            ],
            "reason": [
                "invalid date '1958-02-30' for patient MRN-7741203",
                "unparseable phone",
                "value is not a number",
                "unknown HPO code",
                "JSON parse error near Okafor",
            ],
        }
    )
    return {
        "patients": patients,
        "encounters": encounters,
        "symptoms": symptoms,
        "vitals": vitals,
        "labs": labs,
        "diagnoses": diagnoses,
        "notes": notes,
        "quarantine": quarantine,
    }


def _defined_datasets(conf: Path) -> set[str]:
    names: set[str] = set()
    for path in conf.rglob("catalog*.yml"):
        names |= set((yaml.safe_load(path.read_text()) or {}).keys())
    return names


def make_project_conf(tmp_path: Path, env: str) -> tuple[Path, Path]:
    """A copy of ``conf/base`` + ``conf/<env>`` whose data root is ``tmp_path/data``.

    MLflow tracking goes to ``tmp_path`` too, and when ingestion's catalog does not
    (yet) declare the ``int_*`` tables, parquet entries for them are added.

    Returns:
        The conf folder and the data root.
    """
    conf, data_root = tmp_path / "conf", tmp_path / "data"
    shutil.copytree(PROJECT_ROOT / "conf" / "base", conf / "base")
    shutil.copytree(PROJECT_ROOT / "conf" / env, conf / env)
    phenopackets = (PROJECT_ROOT / "tests" / "data" / "phenopackets").as_posix()
    for folder in (conf / "base", conf / env):
        globals_file = folder / "globals.yml"
        values = yaml.safe_load(globals_file.read_text()) if globals_file.exists() else {}
        values = values or {}
        values.update(data_root=data_root.as_posix(), phenopackets_dir=phenopackets)
        globals_file.write_text(yaml.safe_dump(values))
        for mlflow_file in folder.glob("mlflow*.yml"):
            settings = yaml.safe_load(mlflow_file.read_text()) or {}
            settings.setdefault("server", {})["mlflow_tracking_uri"] = (
                f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}"
            )
            mlflow_file.write_text(yaml.safe_dump(settings))
    missing = [t for t in INT_TABLES if f"int_{t}" not in _defined_datasets(conf)]
    if missing:
        entries = {
            f"int_{t}": {
                "type": "pandas.ParquetDataset",
                "filepath": f"{data_root.as_posix()}/02_intermediate/int_{t}.parquet",
            }
            for t in missing
        }
        (conf / "base" / "catalog_zz_test_int_tables.yml").write_text(yaml.safe_dump(entries))
    for relative in RAW_FILES:
        raw = data_root / "01_raw" / relative
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(f"fixture content of {relative}\n")
    return conf, data_root


@contextlib.contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every log record emitted inside the block, formatted (message and traceback)."""
    records: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(logging.Formatter().format(record))

    handler, root = _Collect(level=logging.DEBUG), logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def run_anonymization(conf: Path, env: str, tables: dict[str, pd.DataFrame]) -> None:
    """Save ``tables`` as the ``int_*`` inputs, then run the pipeline in a real session."""
    bootstrap_project(PROJECT_ROOT)
    with KedroSession.create(project_path=PROJECT_ROOT, env=env, conf_source=str(conf)) as session:
        catalog = session.load_context().catalog
        for name, frame in tables.items():
            catalog.save(f"int_{name}", frame)
    with KedroSession.create(project_path=PROJECT_ROOT, env=env, conf_source=str(conf)) as session:
        session.run(pipeline_names=["anonymization"])
