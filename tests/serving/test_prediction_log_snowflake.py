"""The prediction log written to Snowflake (``serving.prediction_log.backend: snowflake``)
through snowflake-connector-python against the session's fakesnow server.

Rows are produced as in ``test_prediction_log.py`` (the same jobs, answers and refusals)
and read back through ``WarehouseTableDataset(backend="snowflake")``, the reader of
``prm_prediction_log`` in ``conf/snowflake/catalog_monitor.yml``.
"""

from __future__ import annotations

import contextlib
import re
import socket
import socketserver
import threading
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest
import snowflake.connector
import yaml
from kedro.io import DataCatalog

from disease_pipeline.datasets.warehouse import WarehouseTableDataset
from disease_pipeline.serving import prediction_log
from disease_pipeline.serving.prediction_log import (
    PREDICTION_LOG_COLUMNS,
    PredictionLogSettings,
    PredictionLogWriter,
)
from tests.conftest import PROJECT_ROOT

from .test_prediction_log import KEY, MODEL, call

fakesnow = pytest.importorskip("fakesnow")

SERVING_YML = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "serving.yml").read_text())
#: serving.prediction_log of conf/base/serving.yml (the shipped settings)
SHIPPED = SERVING_YML["serving"]["prediction_log"]


@pytest.fixture
def credentials(snowflake_credentials) -> dict:
    """A fresh database of the session's fakesnow server (tests/conftest.py)."""
    return snowflake_credentials


@pytest.fixture
def snowflake_env(credentials, monkeypatch) -> dict:
    """The SNOWFLAKE_* variables of conf/snowflake/credentials.yml pointing at the server."""
    for key, value in credentials.items():
        monkeypatch.setenv(f"SNOWFLAKE_{key.upper()}", str(value))
    monkeypatch.setenv("SNOWFLAKE_LOGIN_TIMEOUT", "20")
    for name in ("SNOWFLAKE_WAREHOUSE", "SNOWFLAKE_ROLE"):
        monkeypatch.delenv(name, raising=False)
    return credentials


@pytest.fixture
def fixed_clock(monkeypatch) -> datetime:
    """Every row logged at one instant (microseconds kept), so two writers agree; given
    in UTC+2: both backends must keep the instant (read back in UTC)."""
    stamp = datetime.now(UTC).replace(microsecond=123456) - timedelta(minutes=5)
    stamp = stamp.astimezone(timezone(timedelta(hours=2)))
    monkeypatch.setattr(prediction_log, "_now", lambda: stamp)
    return stamp


def settings(tmp_path, **changes) -> PredictionLogSettings:
    """The shipped serving.yml settings (its `snowflake` mapping included), changed."""
    raw = {**SHIPPED, "flush_interval_s": 60.0, "flush_rows": 1000, **changes}
    return PredictionLogSettings.from_dict(raw, tmp_path / "warehouse.duckdb")


def snowflake_log(credentials) -> pd.DataFrame:
    table = WarehouseTableDataset(
        table="prediction_log", backend="snowflake", credentials=credentials
    )
    return table.load().sort_values("request_id", na_position="last").reset_index(drop=True)


def duckdb_log(path) -> pd.DataFrame:
    table = WarehouseTableDataset(table="prediction_log", filepath=str(path))
    return table.load().sort_values("request_id", na_position="last").reset_index(drop=True)


def query(credentials, sql: str, params=None) -> list[tuple]:
    with snowflake.connector.connect(**credentials, paramstyle="qmark") as conn:
        return conn.cursor().execute(sql, params).fetchall()


def column_types(credentials) -> dict[str, str]:
    """Column → Snowflake data type of the PREDICTION_LOG table."""
    return dict(
        query(
            credentials,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'PREDICTION_LOG'",
        )
    )


def tables(credentials) -> set[str]:
    rows = query(
        credentials,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'WAREHOUSE'",
    )
    return {row[0] for row in rows}


def write_calls(writer: PredictionLogWriter) -> None:
    """Two flushes (the second appends): 13 rows, one refused."""
    call(writer, 0, 6, refused=4)
    assert writer.flush() == 6
    call(writer, 6, 4)
    call(writer, 10, 3)
    writer.close()


def test_snowflake_rows_equal_the_duckdb_rows(tmp_path, snowflake_env, fixed_clock):
    snow = PredictionLogWriter(settings(tmp_path, backend="snowflake"), KEY, MODEL)
    write_calls(snow)
    duck = PredictionLogWriter(settings(tmp_path), KEY, MODEL)
    write_calls(duck)
    assert snow.written == duck.written == 13 and snow.dropped == 0

    from_snowflake = snowflake_log(snowflake_env)
    from_duckdb = duckdb_log(tmp_path / "warehouse.duckdb")
    assert list(from_snowflake.columns) == list(PREDICTION_LOG_COLUMNS)
    assert len(from_snowflake) == 13 and (from_snowflake["status"] == "refused").sum() == 1
    pd.testing.assert_frame_equal(from_snowflake, from_duckdb, check_dtype=False)
    # the types: a UTC timestamp to the microsecond, doubles, an integer, text
    assert str(from_snowflake["logged_at"].dtype) == "datetime64[ns, UTC]"
    assert (from_snowflake["logged_at"] == pd.Timestamp(fixed_clock)).all()
    for column in ("age", "p_rare", "latency_ms"):
        assert from_snowflake[column].dtype == "float64", column
    assert pd.api.types.is_integer_dtype(from_snowflake["batch_size"])
    assert set(from_snowflake["batch_size"]) == {6, 4, 3}
    assert tables(snowflake_env) == {"PREDICTION_LOG"}
    kinds = column_types(snowflake_env)
    assert kinds["LOGGED_AT"] == "TIMESTAMP_TZ" and kinds["AGE"] == "FLOAT"
    assert kinds["BATCH_SIZE"] == "NUMBER" and kinds["RECORD"] == "TEXT"


def test_the_monitor_catalog_of_the_snowflake_env_reads_the_log(
    tmp_path, snowflake_env, fixed_clock
):
    """conf/snowflake/catalog_monitor.yml's prm_prediction_log: None before the service
    logged (OptionalDataset, as in base), then the rows."""
    config = yaml.safe_load((PROJECT_ROOT / "conf/snowflake/catalog_monitor.yml").read_text())
    catalog = DataCatalog.from_config(config, credentials={"snowflake": snowflake_env})
    assert catalog.load("prm_prediction_log") is None
    writer = PredictionLogWriter(settings(tmp_path, backend="snowflake"), KEY, MODEL)
    call(writer, 0, 3)
    writer.close()
    loaded = catalog.load("prm_prediction_log")
    assert sorted(loaded["request_id"]) == [f"req{i:08d}" for i in range(3)]
    pd.testing.assert_frame_equal(
        loaded.sort_values("request_id").reset_index(drop=True), snowflake_log(snowflake_env)
    )


def test_retention_deletes_old_rows_at_most_hourly(tmp_path, snowflake_env):
    first = PredictionLogWriter(
        settings(tmp_path, backend="snowflake", retention_days=None), KEY, MODEL
    )
    call(first, 0, 3)
    first.close()
    old = datetime.now(UTC) - timedelta(days=40)

    def age(request_id: str) -> None:
        query(
            snowflake_env,
            'UPDATE "PREDICTION_LOG" SET "LOGGED_AT" = ? WHERE "REQUEST_ID" = ?',
            [("TIMESTAMP_TZ", old), request_id],
        )

    age("req00000000")
    second = PredictionLogWriter(
        settings(tmp_path, backend="snowflake", retention_days=30), KEY, MODEL
    )
    call(second, 50, 1)
    assert second.flush() == 1
    expected = ["req00000001", "req00000002", "req00000050"]
    assert sorted(snowflake_log(snowflake_env)["request_id"]) == expected
    age("req00000001")  # retention ran less than an hour ago: kept until the next run
    call(second, 60, 1)
    second.close()
    assert sorted(snowflake_log(snowflake_env)["request_id"]) == expected + ["req00000060"]


class _Forward(socketserver.BaseRequestHandler):
    """Relays one TCP connection to ``server.upstream`` (both directions)."""

    def handle(self) -> None:
        upstream = socket.create_connection(self.server.upstream)

        def pump(source, target):
            try:
                while data := source.recv(65536):
                    target.sendall(data)
            except OSError:
                pass
            finally:
                for end in (source, target):
                    with contextlib.suppress(OSError):
                        end.shutdown(socket.SHUT_RDWR)

        back = threading.Thread(target=pump, args=(upstream, self.request), daemon=True)
        back.start()
        pump(self.request, upstream)
        back.join(timeout=30)
        upstream.close()


class _Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_snowflake_keeps_the_rows_for_the_next_flush(
    tmp_path, snowflake_env, monkeypatch
):
    """Nothing listens on the configured port at the first flush (connection refused):
    the rows stay buffered; once the port forwards to the server, the same writer writes
    them all, once."""
    port = free_port()
    monkeypatch.setenv("SNOWFLAKE_PORT", str(port))
    monkeypatch.setenv("SNOWFLAKE_LOGIN_TIMEOUT", "3")
    writer = PredictionLogWriter(settings(tmp_path, backend="snowflake"), KEY, MODEL)
    call(writer, 0, 5, refused=2)
    assert writer.flush() == 0
    assert writer.written == 0 and writer._pending_rows == 5 and writer.dropped == 0
    call(writer, 5, 2)
    assert writer.flush() == 0 and writer._pending_rows == 7
    assert tables(snowflake_env) == set()

    proxy = _Proxy(("127.0.0.1", port), _Forward)
    proxy.upstream = (snowflake_env["host"], snowflake_env["port"])
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        assert writer.flush() == 7
        assert writer.written == 7 and writer._pending_rows == 0
        writer.close()
    finally:
        proxy.shutdown()
        proxy.server_close()
    logged = snowflake_log(snowflake_env)
    assert list(logged["request_id"].dropna()) == [f"req{i:08d}" for i in range(7) if i != 2]
    assert len(logged) == 7 and (logged["status"] == "refused").sum() == 1


def test_a_new_log_column_is_added_to_the_table(tmp_path, snowflake_env, monkeypatch):
    """The DDL follows PREDICTION_LOG_COLUMNS: a column added there (say `site`) is
    created in an existing table with its Snowflake type."""
    first = PredictionLogWriter(settings(tmp_path, backend="snowflake"), KEY, MODEL)
    call(first, 0, 2)
    first.close()
    monkeypatch.setitem(PREDICTION_LOG_COLUMNS, "site", "VARCHAR")
    monkeypatch.setitem(PREDICTION_LOG_COLUMNS, "site_rank", "INTEGER")
    second = PredictionLogWriter(settings(tmp_path, backend="snowflake"), KEY, MODEL)
    call(second, 10, 2)
    second.close()
    logged = snowflake_log(snowflake_env)
    assert list(logged.columns) == list(PREDICTION_LOG_COLUMNS)
    assert len(logged) == 4 and logged["site"].isna().all()
    kinds = column_types(snowflake_env)
    assert kinds["SITE"] == "TEXT" and kinds["SITE_RANK"] == "NUMBER"


def test_a_missing_environment_variable_is_named_at_start(tmp_path, snowflake_env, monkeypatch):
    monkeypatch.delenv("SNOWFLAKE_PASSWORD")
    with pytest.raises(
        ValueError,
        match=r"snowflake\.password: environment variable "
        r"SNOWFLAKE_PASSWORD is not set",
    ):
        settings(tmp_path, backend="snowflake")
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", "x")
    monkeypatch.delenv("SNOWFLAKE_DATABASE")
    with pytest.raises(ValueError, match="SNOWFLAKE_DATABASE"):
        PredictionLogSettings.from_dict({"backend": "snowflake"}, tmp_path / "w.duckdb")
    # optional variables fall back to their defaults; the DuckDB backend needs none
    monkeypatch.setenv("SNOWFLAKE_DATABASE", "DB")
    monkeypatch.delenv("SNOWFLAKE_SCHEMA")
    monkeypatch.delenv("SNOWFLAKE_HOST")
    connection = settings(tmp_path, backend="snowflake").snowflake_connection()
    assert connection["schema"] == "PUBLIC" and "host" not in connection
    assert connection["login_timeout"] == 20 and isinstance(connection["port"], int)
    monkeypatch.delenv("SNOWFLAKE_ACCOUNT")
    assert settings(tmp_path).backend == "duckdb"
    assert not settings(tmp_path, backend="snowflake", enabled=False).enabled


def test_settings_refuse_literal_values_and_unknown_backends(tmp_path, snowflake_env):
    literal = {**SHIPPED["snowflake"], "password": "hunter2-secret"}
    with pytest.raises(ValueError, match="snowflake.password: not an environment-var") as error:
        settings(tmp_path, backend="snowflake", snowflake=literal)
    assert "hunter2" not in str(error.value)
    with pytest.raises(ValueError, match="backend 'oracle'"):
        settings(tmp_path, backend="oracle")


def test_the_shipped_mapping_uses_the_variables_of_the_snowflake_credentials():
    """serving.yml's prediction_log.snowflake names, key by key, the variables that
    conf/snowflake/credentials.yml reads, with the same defaults."""
    text = (PROJECT_ROOT / "conf" / "snowflake" / "credentials.yml").read_text()
    credentials = yaml.safe_load(text)["snowflake"]
    variable = re.compile(r"\$\{oc\.env:(\w+)(?:,([^}]*))?\}")
    for key, reference in credentials.items():
        name, default = variable.search(reference).groups()
        assert key in SHIPPED["snowflake"], key
        ours = re.fullmatch(r"\$\{(\w+)(?:,(.*))?\}", SHIPPED["snowflake"][key])
        assert ours.group(1) == name, key
        if key != "login_timeout":  # 20 s here: the flush thread retries anyway
            assert ours.group(2) == default, key
    assert SHIPPED["backend"] == "duckdb"
