"""The screen pipeline end to end with the project's catalog files: warehouse tables in
a real DuckDB file (or a fakesnow Snowflake server), the trained test predictor, alerts
POSTed to a real local HTTP receiver; a second run raises no alert twice."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from disease_pipeline.datasets.warehouse import WarehouseTableDataset
from disease_pipeline.pipelines.screen import create_pipeline
from tests.conftest import PROJECT_ROOT
from tests.pipelines.common_model.synthetic import param_entries

from .conftest import screen_params

PRM = ("patients", "encounters", "symptoms", "vitals", "labs", "diagnoses")


def catalog_config(data_root: Path, webhook: str, env: str | None = None) -> dict:
    """conf/base/catalog_screen.yml (+ conf/<env>/catalog_screen.yml) with the data root
    and the webhook URL filled in."""
    config = {}
    for folder in ("base", env):
        if folder:
            text = (PROJECT_ROOT / "conf" / folder / "catalog_screen.yml").read_text()
            text = text.replace("${globals:data_root}", str(data_root))
            text = text.replace('${runtime_params:screen_webhook_url,""}', webhook)
            config |= yaml.safe_load(text)
    return {k: v for k, v in config.items() if not k.startswith("_")}


def warehouse(data_root: Path, credentials: dict | None):
    """A function giving the warehouse dataset of a table (DuckDB file or Snowflake)."""
    if credentials is None:
        path = str(data_root / "03_primary" / "warehouse.duckdb")
        return lambda table: WarehouseTableDataset(table=table, filepath=path)
    return lambda table: WarehouseTableDataset(
        table=table, backend="snowflake", credentials=credentials
    )


def run_screen(data_root, webhook, prm, predictor_file, *, credentials=None, env=None) -> dict:
    """One ``screen`` run; returns the loaded alerts, screenings and summary."""
    table = warehouse(data_root, credentials)
    config = catalog_config(data_root, webhook, env)
    catalog = DataCatalog.from_config(config, credentials={"snowflake": credentials or {}})
    for name in PRM:
        catalog[f"prm_{name}"] = table(name)
    catalog["prm_metadata"] = table("metadata")
    catalog["model_predictor"] = MemoryDataset(
        pd.read_pickle(predictor_file), copy_mode="assign"
    )  # the pickle of the calibration pipeline's `model_predictor`
    config_fp = config["model_predictor_fingerprint"] | {"paths": [str(predictor_file)]}
    catalog["model_predictor_fingerprint"] = DataCatalog.from_config({"fp": config_fp})["fp"]
    for key, value in param_entries("screen", screen_params()).items():
        catalog[key] = MemoryDataset(value)
    catalog["params:screen_engine"] = MemoryDataset({"name": "pandas"})
    SequentialRunner().run(create_pipeline(), catalog)
    summary = json.loads((data_root / "08_reporting" / "screen_summary.json").read_text())
    by_date = data_root / "07_model_output" / "screenings_by_date"
    return {
        "alerts": table("alerts").load(),
        "screenings": table("screenings").load(),
        "summary": summary,
        "by_date": pd.read_parquet(by_date),
        "dates": sorted(p.name for p in by_date.iterdir()),
    }


def fill_warehouse(data_root: Path, prm: dict, credentials: dict | None) -> None:
    table = warehouse(data_root, credentials)
    for name in PRM:
        table(name).save(prm[name])
    table("metadata").save(pd.DataFrame({"data_version": ["dv-test"], "path": ["x"]}))


def check_two_runs(data_root, receiver, prm, predictor_file, *, credentials=None, env=None):
    fill_warehouse(data_root, prm, credentials)
    first = run_screen(
        data_root, receiver.url, prm, predictor_file, credentials=credentials, env=env
    )
    alerts, screenings = first["alerts"], first["screenings"]
    assert len(screenings) == len(prm["encounters"]) and screenings["error"].isna().all()
    assert (screenings["data_version"] == "dv-test").all()
    assert screenings["model_version"].str.fullmatch(r"sha256:[0-9a-f]{12}").all()
    assert len(alerts) > 0 and (alerts["state"] == "new").all()
    assert first["summary"]["new_alerts"] == len(alerts)
    assert sorted(a["alert_id"] for a in receiver.alerts) == sorted(alerts["alert_id"])
    assert not alerts.duplicated(["patient_id", "rule", "encounter_id"]).any()
    second = run_screen(
        data_root, receiver.url, prm, predictor_file, credentials=credentials, env=env
    )
    assert second["summary"]["new_alerts"] == 0
    assert len(second["alerts"]) == len(alerts) and len(receiver.alerts) == len(alerts)
    assert len(second["screenings"]) == len(screenings)  # re-scored rows replaced
    # the run's rows as Parquet partitioned by encounter date; a re-run replaces them
    for run in (first, second):
        assert len(run["by_date"]) == len(screenings)
        days = screenings["encounter_start"].dt.strftime("encounter_date=%Y-%m-%d")
        assert run["dates"] == sorted(set(days))
    return first


@pytest.mark.slow
def test_screen_on_duckdb_twice(tmp_path, receiver, screen_prm, predictor_file):
    first = check_two_runs(tmp_path, receiver, screen_prm, predictor_file)
    rules = set(first["alerts"]["rule"])
    assert "severity" in rules, rules


@pytest.mark.slow
def test_screen_on_snowflake_twice(
    tmp_path, receiver, screen_prm, predictor_file, snowflake_server
):
    keys = ("account", "user", "password", "host", "port", "protocol")
    credentials = {k: snowflake_server[k] for k in keys} | {
        "database": f"DB_{uuid.uuid4().hex[:8]}",
        "schema": "WAREHOUSE",
        "login_timeout": 30,
    }
    check_two_runs(
        tmp_path, receiver, screen_prm, predictor_file, credentials=credentials, env="snowflake"
    )


def test_the_spark_environment_repeats_the_base_screen_parameters():
    """conf/spark keeps its own copy of `screen` (runtime --params land in it): it must
    equal conf/base's, so both engines screen with the same settings."""

    def load(env: str) -> dict:
        path = PROJECT_ROOT / "conf" / env / "parameters_screen.yml"
        return yaml.safe_load(path.read_text(encoding="utf-8"))

    base, spark = load("base"), load("spark")
    assert spark["screen"] == base["screen"]
    assert base["screen_engine"]["name"] == "pandas" and spark["screen_engine"]["name"] == "spark"
