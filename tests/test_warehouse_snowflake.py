"""The Snowflake backend through snowflake-connector-python against fakesnow's server.

fakesnow (a Snowflake emulator on DuckDB) runs in server mode on a local port, so
every call goes through the real connector: login, PUT to a stage, COPY INTO,
CREATE OR REPLACE … AS SELECT, SELECT with Arrow results.
"""

from __future__ import annotations

import uuid

import pandas as pd
import pytest
import snowflake.connector
from kedro.io import DatasetError

from disease_pipeline.datasets.warehouse import WarehouseTableDataset
from disease_pipeline.pipelines.anonymization.pseudonyms import KEY_ENV_VAR
from tests.pipelines.anonymization.fixtures import (
    int_tables,
    make_project_conf,
    run_anonymization,
)
from tests.pipelines.anonymization.leaks import warehouse_tables
from tests.test_warehouse import sample_frame

fakesnow = pytest.importorskip("fakesnow")


@pytest.fixture(scope="module")
def server(snowflake_server) -> dict:
    """Connection parameters of the session's fakesnow server."""
    return snowflake_server


@pytest.fixture
def credentials(snowflake_credentials) -> dict:
    """A fresh database of the session's fakesnow server (tests/conftest.py)."""
    return snowflake_credentials


def _tables(credentials: dict) -> set[str]:
    with snowflake.connector.connect(**credentials) as conn:
        rows = conn.cursor().execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'WAREHOUSE'"
        )
        return {r[0] for r in rows.fetchall()}


def test_round_trip_matches_the_duckdb_backend(credentials, tmp_path):
    snow = WarehouseTableDataset(table="symptoms", backend="snowflake", credentials=credentials)
    duck = WarehouseTableDataset(table="symptoms", filepath=str(tmp_path / "w.duckdb"))
    snow.save(sample_frame())
    duck.save(sample_frame())
    pd.testing.assert_frame_equal(snow.load(), duck.load())
    assert snow.exists() and _tables(credentials) == {"SYMPTOMS"}


def test_save_replaces_and_leaves_no_staging_table(credentials):
    dataset = WarehouseTableDataset(
        table="labs", backend="snowflake", credentials=credentials, save_args={"chunk_size": 1}
    )
    dataset.save(sample_frame())
    dataset.save(sample_frame().iloc[:2])
    assert len(dataset.load()) == 2
    assert _tables(credentials) == {"LABS"}


def test_failed_save_keeps_the_previous_table(credentials, monkeypatch):
    dataset = WarehouseTableDataset(
        table="notes", backend="snowflake", credentials=credentials, save_args={"chunk_size": 1}
    )
    dataset.save(sample_frame())
    writes = []
    original = pd.DataFrame.to_parquet

    def fail_on_second_part(frame, *args, **kwargs):  # fault injection, not a mock
        writes.append(1)
        if len(writes) == 2:
            raise OSError("disk full")
        return original(frame, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", fail_on_second_part)
    with pytest.raises(DatasetError, match="disk full"):
        dataset.save(sample_frame().iloc[[0, 0, 0]])
    monkeypatch.undo()
    pd.testing.assert_frame_equal(dataset.load(), sample_frame(), check_dtype=False)
    assert _tables(credentials) == {"NOTES"}


def test_unreachable_account_fails_clearly_and_writes_nothing(credentials):
    wrong = credentials | {"port": 1, "password": "s3cret-password", "login_timeout": 5}
    dataset = WarehouseTableDataset(table="patients", backend="snowflake", credentials=wrong)
    with pytest.raises(DatasetError, match="Cannot connect to Snowflake account 'fakesnow'") as err:
        dataset.save(sample_frame())
    assert "s3cret-password" not in str(err.value)
    assert "credentials.yml" in str(err.value)
    assert _tables(credentials) == set()


def test_missing_credentials_are_named():
    with pytest.raises(DatasetError, match="lack required key.*database.*password"):
        WarehouseTableDataset(
            table="t", backend="snowflake", credentials={"account": "a", "user": "u", "schema": "s"}
        )


@pytest.fixture
def snowflake_env(server, monkeypatch, tmp_path) -> tuple:
    """A copy of the project conf for ``--env snowflake`` wired to the fakesnow server."""
    database = f"DB_{uuid.uuid4().hex[:8]}"
    env = {
        "SNOWFLAKE_ACCOUNT": server["account"],
        "SNOWFLAKE_USER": server["user"],
        "SNOWFLAKE_PASSWORD": server["password"],
        "SNOWFLAKE_DATABASE": database,
        "SNOWFLAKE_SCHEMA": "WAREHOUSE",
        "SNOWFLAKE_HOST": server["host"],
        "SNOWFLAKE_PORT": str(server["port"]),
        "SNOWFLAKE_PROTOCOL": server["protocol"],
        "SNOWFLAKE_LOGIN_TIMEOUT": "20",
        KEY_ENV_VAR: "snowflake-environment-test-key-0123456789abcdef",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    conf, data_root = make_project_conf(tmp_path / "snowflake", "snowflake")
    credentials = {
        "account": server["account"],
        "user": server["user"],
        "password": server["password"],
        "host": server["host"],
        "port": server["port"],
        "protocol": server["protocol"],
        "database": database,
        "schema": "WAREHOUSE",
    }
    return conf, data_root, credentials


@pytest.mark.slow
def test_snowflake_environment_writes_the_same_tables_as_duckdb(snowflake_env, tmp_path):
    conf, _, credentials = snowflake_env
    run_anonymization(conf, "snowflake", int_tables())
    local_conf, local_root = make_project_conf(tmp_path / "duckdb", "test")
    run_anonymization(local_conf, "test", int_tables())  # same key (environment variable)
    duck = warehouse_tables(local_root / "03_primary" / "warehouse.duckdb")
    assert _tables(credentials) == {name.upper() for name in duck}
    for name, expected in duck.items():
        table = WarehouseTableDataset(table=name, backend="snowflake", credentials=credentials)
        pd.testing.assert_frame_equal(
            table.load(),
            WarehouseTableDataset(
                table=name, filepath=str(local_root / "03_primary" / "warehouse.duckdb")
            ).load(),
            check_dtype=False,
            obj=name,
        )
        assert len(expected)


@pytest.mark.slow
def test_snowflake_environment_refuses_to_run_without_a_key(snowflake_env, monkeypatch):
    conf, _, credentials = snowflake_env
    monkeypatch.delenv(KEY_ENV_VAR)
    with pytest.raises(Exception, match=f"No HMAC key for environment 'snowflake'.*{KEY_ENV_VAR}"):
        run_anonymization(conf, "snowflake", int_tables())
    assert _tables(credentials) == set()


@pytest.mark.slow
def test_snowflake_environment_with_wrong_account_writes_nothing(snowflake_env, monkeypatch):
    conf, _, credentials = snowflake_env
    monkeypatch.setenv("SNOWFLAKE_PORT", "1")
    monkeypatch.setenv("SNOWFLAKE_LOGIN_TIMEOUT", "5")
    with pytest.raises(Exception, match="Cannot connect to Snowflake account"):
        run_anonymization(conf, "snowflake", int_tables())
    assert _tables(credentials) == set()
