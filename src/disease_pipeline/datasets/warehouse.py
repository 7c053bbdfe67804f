"""One warehouse table as a Kedro dataset: a DuckDB file by default, Snowflake by config.

``kedro-datasets`` has no dataset for a table of a DuckDB file (``pandas.SQLTableDataset``
needs the ``duckdb_engine`` SQLAlchemy dialect, ``ibis.TableDataset`` needs ibis, and
``snowflake.SnowparkTableDataset`` needs Snowpark), so this small dataset talks to
``duckdb`` and ``snowflake-connector-python`` directly.

Every save replaces the whole table atomically: DuckDB in one transaction;
Snowflake by loading a staging table and then ``CREATE OR REPLACE TABLE … AS SELECT``
(a single atomic statement), so a failed save never leaves a partial table.

Example:
    ```yaml
    prm_patients:
      type: disease_pipeline.datasets.warehouse.WarehouseTableDataset
      table: patients
      filepath: ${globals:data_root}/03_primary/warehouse.duckdb
    ```
    and in the ``snowflake`` environment::

    ```yaml
    prm_patients:
      type: disease_pipeline.datasets.warehouse.WarehouseTableDataset
      table: patients
      backend: snowflake
      credentials: snowflake
    ```
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BACKENDS = ("duckdb", "snowflake")


class WarehouseBackend(Protocol):
    """What a warehouse must do for :class:`WarehouseTableDataset`."""

    def read(self, table: str, columns: list[str] | None) -> pd.DataFrame: ...

    def replace(self, table: str, data: pd.DataFrame) -> None: ...

    def exists(self, table: str) -> bool: ...

    def describe(self) -> dict[str, Any]: ...


def check_identifier(name: str, what: str) -> str:
    """``name`` if it is a plain SQL identifier, else a ``DatasetError`` naming ``what``."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise DatasetError(
            f"{what} {name!r} is not a plain SQL identifier (letters, digits, underscore)"
        )
    return name


def _select(table: str, columns: list[str] | None, quote) -> str:
    cols = "*" if not columns else ", ".join(quote(check_identifier(c, "column")) for c in columns)
    return f"SELECT {cols} FROM {quote(table)}"


#: one lock per DuckDB file in this process: DuckDB refuses a read-write connection to a
#: file that another thread holds open read-only ("different configuration"), which two
#: nodes of the threaded runner reading and writing the warehouse at once would hit
_FILE_LOCKS: dict[str, threading.RLock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _file_lock(filepath: str) -> threading.RLock:
    key = str(Path(filepath).resolve())
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(key, threading.RLock())


class DuckDBBackend:
    """Tables of one DuckDB database file; timestamps are read back in UTC. Threads of
    one process take turns on the file (:func:`_file_lock`)."""

    def __init__(self, filepath: str) -> None:
        if not filepath:
            raise DatasetError("backend 'duckdb' needs a 'filepath' to the .duckdb file")
        self._filepath = str(filepath)

    @contextmanager
    def _connect(self, read_only: bool) -> Iterator[Any]:
        import duckdb

        if not read_only:
            Path(self._filepath).parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(self._filepath):
            con = duckdb.connect(self._filepath, read_only=read_only)
            try:
                con.execute("SET TimeZone = 'UTC'")
                yield con
            finally:
                con.close()

    def read(self, table: str, columns: list[str] | None) -> pd.DataFrame:
        if not Path(self._filepath).exists():
            raise DatasetError(f"warehouse file {self._filepath} does not exist")
        with self._connect(read_only=True) as con:
            frame = con.execute(_select(table, columns, _quote)).df()
        for column in frame.columns:  # nanoseconds, as the Snowflake backend returns
            if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
                frame[column] = frame[column].astype("datetime64[ns, UTC]")
        return frame

    def replace(self, table: str, data: pd.DataFrame) -> None:
        with self._connect(read_only=False) as con:
            con.register("incoming_frame", data)
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(
                    f"CREATE OR REPLACE TABLE {_quote(table)} AS SELECT * FROM incoming_frame"
                )
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise

    def exists(self, table: str) -> bool:
        if not Path(self._filepath).exists():
            return False
        with self._connect(read_only=True) as con:
            found = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
            ).fetchone()
        return bool(found and found[0])

    def describe(self) -> dict[str, Any]:
        return {"backend": "duckdb", "filepath": self._filepath}


def _quote(name: str) -> str:
    return f'"{name}"'


class WarehouseTableDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """Loads and saves one table of the warehouse (DuckDB file or Snowflake schema)."""

    def __init__(  # noqa: PLR0913
        self,
        *,
        table: str,
        backend: str = "duckdb",
        filepath: str | None = None,
        credentials: dict[str, Any] | None = None,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Configure the table and its warehouse.

        Args:
            table: Table name (a plain SQL identifier).
            backend: ``duckdb`` (default) or ``snowflake``.
            filepath: DuckDB database file (``duckdb`` backend).
            credentials: Snowflake connection parameters (``snowflake`` backend):
                ``account, user, password, database, schema``, optional ``warehouse``,
                ``role``, ``host``, ``port``, ``protocol``, ``login_timeout`` …
            load_args: ``columns`` — a subset of columns to read.
            save_args: ``chunk_size`` — rows per Parquet file uploaded (Snowflake).
            metadata: Free-form metadata (kedro-viz layer).
        """
        self._table = check_identifier(table, "table")
        self._load_args = dict(load_args or {})
        self._save_args = dict(save_args or {})
        self.metadata = metadata
        if backend == "duckdb":
            self._backend: WarehouseBackend = DuckDBBackend(filepath or "")
        elif backend == "snowflake":
            from disease_pipeline.datasets.snowflake_backend import SnowflakeBackend

            self._backend = SnowflakeBackend(
                credentials, chunk_size=int(self._save_args.get("chunk_size", 250_000))
            )
        else:
            raise DatasetError(f"unknown warehouse backend {backend!r}: expected one of {BACKENDS}")

    def _describe(self) -> dict[str, Any]:
        return {"table": self._table, **self._backend.describe()}

    def load(self) -> pd.DataFrame:
        """The whole table (or ``load_args.columns``) as a DataFrame."""
        return self._backend.read(self._table, self._load_args.get("columns"))

    def save(self, data: pd.DataFrame) -> None:
        """Replace the table with ``data`` atomically."""
        if not isinstance(data, pd.DataFrame):
            raise DatasetError(
                f"table {self._table!r} expects a pandas DataFrame, got {type(data).__name__}"
            )
        for column in data.columns:
            check_identifier(column, f"column of table {self._table!r}")
        self._backend.replace(self._table, data.reset_index(drop=True))

    def _exists(self) -> bool:
        return self._backend.exists(self._table)
