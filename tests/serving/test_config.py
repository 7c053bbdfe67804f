"""The service's configuration is layered like the project's: base, then the run
environment, softly merged; ``${globals:…}`` as in the catalog; the feedback store is the
catalog's ``prm_feedback`` table in every environment."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kedro.config import OmegaConfigLoader

from disease_pipeline import settings
from disease_pipeline.serving.config import (
    CONFIG_ENV_VAR,
    RUN_ENV_VAR,
    ServingConfigError,
    find_conf_source,
    load_config,
    load_document,
)
from tests.conftest import PROJECT_ROOT

CONF = PROJECT_ROOT / "conf"
ENVIRONMENTS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name != "base")

MINIMAL = {
    "model_tag": "disease_pipeline:latest",
    "top_k": 10,
    "max_top_k": 50,
    "max_batch_size": 100,
    "audit_log": "${globals:data_root}/09_serving/audit_log.jsonl",
    "feedback_warehouse": "${globals:data_root}/03_primary/warehouse.duckdb",
    "feedback_table": "feedback",
    "key_file": "conf/local/serving_key.txt",
    "roles": {"clinician": ["predict"], "admin": ["predict", "model_info"]},
    "hpo_search_limit": 10,
    "challenger": {"mode": "off"},
    "prediction_log": {"enabled": True, "table": "prediction_log", "flush_rows": 500},
}


def _write(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document), encoding="utf-8")


@pytest.fixture
def conf(tmp_path, monkeypatch) -> Path:
    """A configuration folder with base, a ``clinic`` environment and their globals."""
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)
    monkeypatch.delenv(RUN_ENV_VAR, raising=False)
    source = tmp_path / "conf"
    _write(source / "base" / "serving.yml", {"serving": MINIMAL})
    _write(source / "base" / "globals.yml", {"data_root": "data"})
    _write(source / "clinic" / "globals.yml", {"data_root": "/srv/clinic"})
    _write(
        source / "clinic" / "serving.yml",
        {"serving": {"top_k": 5, "prediction_log": {"flush_rows": 50}}},
    )
    return source


def test_an_environment_changes_only_the_keys_it_names(conf):
    base = load_config(conf_source=conf, env="base")
    clinic = load_config(conf_source=conf, env="clinic")
    assert (base.top_k, clinic.top_k) == (10, 5)
    # nested mappings merge key by key: the environment's flush_rows, base's other keys
    assert clinic.prediction_log == {"enabled": True, "table": "prediction_log", "flush_rows": 50}
    assert clinic.roles == base.roles and clinic.max_top_k == base.max_top_k
    assert clinic.source == conf / "clinic" / "serving.yml"


def test_globals_are_the_environments_own(conf):
    base = load_config(conf_source=conf, env="base")
    clinic = load_config(conf_source=conf, env="clinic")
    assert base.feedback_warehouse == Path("data/03_primary/warehouse.duckdb")
    assert clinic.feedback_warehouse == Path("/srv/clinic/03_primary/warehouse.duckdb")
    assert clinic.audit_log == Path("/srv/clinic/09_serving/audit_log.jsonl")


def test_the_run_environment_comes_from_kedro_env_else_local(conf, monkeypatch):
    assert load_config(conf_source=conf).top_k == 10  # local: no file, base alone
    monkeypatch.setenv(RUN_ENV_VAR, "clinic")
    assert load_config(conf_source=conf).top_k == 5


def test_an_undefined_global_names_the_key(conf):
    broken = {**MINIMAL, "audit_log": "${globals:serving_root}/audit.jsonl"}
    _write(conf / "base" / "serving.yml", {"serving": broken})
    with pytest.raises(ServingConfigError, match=r"serving\.audit_log.*globals:serving_root"):
        load_config(conf_source=conf, env="base")


def test_other_placeholders_are_left_to_their_readers(conf):
    snowflake = {"account": "${SNOWFLAKE_ACCOUNT}", "schema": "${SNOWFLAKE_SCHEMA,PUBLIC}"}
    log = {**MINIMAL["prediction_log"], "snowflake": snowflake}
    _write(conf / "base" / "serving.yml", {"serving": {**MINIMAL, "prediction_log": log}})
    config = load_config(conf_source=conf, env="base")
    assert config.prediction_log["snowflake"] == snowflake


def test_a_single_file_replaces_the_layers_but_keeps_the_projects_globals(
    conf, tmp_path, monkeypatch
):
    single = tmp_path / "elsewhere" / "serving.yml"
    _write(single, {"serving": {**MINIMAL, "top_k": 3}})
    monkeypatch.setenv(CONFIG_ENV_VAR, str(single))
    config = load_config(conf_source=conf, env="clinic")
    assert config.top_k == 3 and config.source == single
    assert config.feedback_warehouse == Path("/srv/clinic/03_primary/warehouse.duckdb")
    monkeypatch.setenv(CONFIG_ENV_VAR, str(tmp_path / "missing.yml"))
    with pytest.raises(ServingConfigError, match="missing.yml not found"):
        load_config(conf_source=conf)


def test_the_projects_configuration_is_found_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    assert find_conf_source() == CONF
    document, source = load_document(env="base")
    assert source == CONF / "base" / "serving.yml"
    assert "${globals:" not in yaml.safe_dump(document)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_feedback_goes_to_the_catalogs_feedback_table(env, monkeypatch):
    """The service writes feedback where the retrain pipeline reads it (``prm_feedback``),
    in every environment of the project."""
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)
    catalog = OmegaConfigLoader(str(CONF), env=env, **settings.CONFIG_LOADER_ARGS)["catalog"]
    entry = catalog["prm_feedback"]
    entry = entry.get("dataset", entry)  # OptionalDataset wraps the warehouse table
    config = load_config(env=env, conf_source=CONF)
    assert config.feedback_table == entry["table"]
    assert config.feedback_warehouse == Path(entry["filepath"])
