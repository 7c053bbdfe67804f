"""The prediction log in Snowflake (``serving.prediction_log.backend: snowflake``).

:class:`~disease_pipeline.serving.prediction_log.PredictionLogWriter` hands each flush's
rows to :meth:`SnowflakePredictionLog.append`, which inserts them through
``snowflake-connector-python`` (imported only here, only when this backend is chosen).
The table and its columns are quoted upper-case identifiers, as the warehouse dataset's
Snowflake backend stores them, so ``WarehouseTableDataset(backend="snowflake",
table="prediction_log")`` (the ``monitor`` pipeline's ``prm_prediction_log`` in
``--env snowflake``) reads it back with lower-case columns. The DDL is built from the
log's column types (DuckDB names, mapped by :data:`SNOWFLAKE_TYPES`), and a column the
table lacks is added, so a new column of the log needs no migration.

The connection comes from ``serving.prediction_log.snowflake``: each value names an
environment variable, ``${NAME}`` (required) or ``${NAME,default}`` (``null``: left
out), the variables of ``conf/snowflake/credentials.yml``. No value is stored in the
repository. One connection is kept between flushes; any error closes it, the writer
keeps the rows buffered, and the next flush connects again.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)

#: the connection of ``conf/snowflake/credentials.yml``, as environment-variable references
DEFAULT_CONNECTION = {
    "account": "${SNOWFLAKE_ACCOUNT}",
    "user": "${SNOWFLAKE_USER}",
    "password": "${SNOWFLAKE_PASSWORD}",
    "database": "${SNOWFLAKE_DATABASE}",
    "schema": "${SNOWFLAKE_SCHEMA,PUBLIC}",
    "warehouse": "${SNOWFLAKE_WAREHOUSE,null}",
    "role": "${SNOWFLAKE_ROLE,null}",
    "host": "${SNOWFLAKE_HOST,null}",
    "port": "${SNOWFLAKE_PORT,null}",
    "protocol": "${SNOWFLAKE_PROTOCOL,null}",
    "login_timeout": "${SNOWFLAKE_LOGIN_TIMEOUT,20}",
}
#: connection keys the connector wants as integers
INTEGER_KEYS = frozenset({"port", "login_timeout", "network_timeout", "socket_timeout"})
#: Snowflake type of each DuckDB type of ``PREDICTION_LOG_COLUMNS``
SNOWFLAKE_TYPES = {
    "VARCHAR": "VARCHAR",
    "TEXT": "VARCHAR",
    "DOUBLE": "FLOAT",
    "FLOAT": "FLOAT",
    "REAL": "FLOAT",
    "INTEGER": "NUMBER(38,0)",
    "BIGINT": "NUMBER(38,0)",
    "SMALLINT": "NUMBER(38,0)",
    "BOOLEAN": "BOOLEAN",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP_NTZ",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP_TZ",
    "TIMESTAMPTZ": "TIMESTAMP_TZ",
}
#: rows per INSERT statement (20 columns: well under the connector's array-binding limit)
INSERT_ROWS = 1000
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:,(.*))?\}")


def resolve_connection(references: Mapping[str, Any] | None) -> dict[str, Any]:
    """Connection parameters from environment-variable references (``${NAME}`` or
    ``${NAME,default}``; default ``null`` leaves the key out); ``None``: the variables
    of conf/snowflake/credentials.yml. Raises ``ValueError`` naming the setting and the
    variable when a required one is unset, or when a value is not a reference."""
    connection: dict[str, Any] = {}
    for key, reference in dict(DEFAULT_CONNECTION if references is None else references).items():
        where = f"serving.prediction_log.snowflake.{key}"
        match = _REFERENCE.fullmatch(str(reference).strip()) if reference is not None else None
        if match is None:
            raise ValueError(
                f"{where}: not an environment-variable reference such as ${{SNOWFLAKE_USER}} "
                "or ${SNOWFLAKE_SCHEMA,PUBLIC} (values are never written in serving.yml; "
                "the value is not shown)"
            )
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name) or None
        if value is None:
            if default is None:
                raise ValueError(
                    f"{where}: environment variable {name} is not set "
                    "(serving.prediction_log.backend is snowflake)"
                )
            value = None if default.strip() == "null" else default.strip()
        if value is None:
            continue
        if key in INTEGER_KEYS:
            try:
                value = int(value)
            except ValueError:
                raise ValueError(f"{where}: {name}={value!r} is not an integer") from None
        connection[key] = value
    return connection


def snowflake_type(column: str, duckdb_type: str) -> str:
    """The Snowflake type of a prediction-log column of DuckDB type ``duckdb_type``."""
    kind = " ".join(duckdb_type.upper().split())
    if kind not in SNOWFLAKE_TYPES:
        raise ValueError(
            f"prediction log column {column!r}: no Snowflake type for DuckDB type "
            f"{duckdb_type!r} (add it to prediction_log_snowflake.SNOWFLAKE_TYPES)"
        )
    return SNOWFLAKE_TYPES[kind]


def _quote(name: str) -> str:
    return f'"{name.upper()}"'


def _bind(kind: str, value: Any) -> Any:
    """A qmark parameter of Snowflake type ``kind`` (timestamps carry their type: the
    connector binds a bare ``datetime`` as TIMESTAMP_NTZ)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):  # NULL, NaN
        return (kind, None) if kind.startswith("TIMESTAMP") else None
    if kind == "VARCHAR":
        return str(value)
    if kind == "FLOAT":
        return float(value)
    if kind.startswith("NUMBER"):
        return int(value)
    if kind == "BOOLEAN":
        return bool(value)
    if kind.startswith("TIMESTAMP") and isinstance(value, datetime):
        return (kind, value)
    return value


class SnowflakePredictionLog:
    """Appends prediction-log rows to one Snowflake table (see the module docstring)."""

    def __init__(self, table: str, connection: Mapping[str, Any]) -> None:
        self.table = table
        self._connection = dict(connection)
        self._conn: Any = None
        self._columns_present: set[str] = set()

    def __repr__(self) -> str:  # never the password
        where = self._connection.get("host") or self._connection.get("account")
        return f"SnowflakePredictionLog({self.table!r} at {where})"

    def append(
        self,
        rows: Sequence[Mapping[str, Any]],
        columns: Mapping[str, str],
        retention_cutoff: datetime | None = None,
    ) -> None:
        """Insert ``rows`` (one transaction) and, when ``retention_cutoff`` is given,
        delete the rows logged before it. Raises on any failure, the connection closed
        and nothing committed."""
        types = {name: snowflake_type(name, kind) for name, kind in columns.items()}
        try:
            cursor = self._cursor(types)
            cursor.execute("BEGIN")
            names = ", ".join(_quote(name) for name in types)
            marks = ", ".join("?" for _ in types)
            sql = f"INSERT INTO {_quote(self.table)} ({names}) VALUES ({marks})"
            for start in range(0, len(rows), INSERT_ROWS):
                params = [
                    tuple(_bind(kind, row.get(name)) for name, kind in types.items())
                    for row in rows[start : start + INSERT_ROWS]
                ]
                cursor.executemany(sql, params)
            if retention_cutoff is not None:
                cursor.execute(
                    f"DELETE FROM {_quote(self.table)} WHERE {_quote('logged_at')} < ?",
                    [("TIMESTAMP_TZ", retention_cutoff)],
                )
            cursor.execute("COMMIT")
        except Exception:
            # a failed session is not reused: closing it (logout) rolls the transaction back
            self.close(retry=False)
            raise

    def close(self, retry: bool = True) -> None:
        """Close the connection (the next append opens a new one)."""
        conn, self._conn = self._conn, None
        self._columns_present = set()
        if conn is not None:
            try:
                conn.close(retry=retry)
            except Exception as error:  # closing a dead session must not hide the cause
                logger.debug("prediction log: closing the Snowflake connection: %s", error)

    def _cursor(self, types: Mapping[str, str]) -> Any:
        """A cursor of the open connection (connecting, creating the table and adding
        missing columns first when needed)."""
        if self._conn is None:
            import snowflake.connector

            self._conn = snowflake.connector.connect(**self._connection, paramstyle="qmark")
            self._columns_present = set()
        cursor = self._conn.cursor()
        if not set(types) <= self._columns_present:
            ddl = ", ".join(f"{_quote(name)} {kind}" for name, kind in types.items())
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {_quote(self.table)} ({ddl})")
            present = {
                str(row[0]).lower()
                for row in cursor.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = CURRENT_SCHEMA() AND table_name = ?",
                    (self.table.upper(),),
                ).fetchall()
            }
            for name, kind in types.items():
                if name not in present:
                    logger.info("prediction log: adding column %s to %s", name, self.table)
                    cursor.execute(
                        f"ALTER TABLE {_quote(self.table)} ADD COLUMN {_quote(name)} {kind}"
                    )
            self._columns_present = set(types)
        return cursor
