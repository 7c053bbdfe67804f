"""Snowflake backend of ``WarehouseTableDataset`` (``snowflake-connector-python``).

Tables and columns are stored as quoted upper-case identifiers (what unquoted SQL
resolves to, so ``select start from patients`` works) and read back lower-case.
A save writes the frame as Parquet files (``chunk_size`` rows each), ``PUT``s them
on a temporary stage, ``COPY``s them into ``<TABLE>__STAGING``, checks the row
count, then swaps it in with one atomic ``CREATE OR REPLACE TABLE … AS SELECT``;
the staging table is dropped whatever happens.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from kedro.io.core import DatasetError
from snowflake.connector.constants import FIELD_ID_TO_NAME
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

REQUIRED_KEYS = ("account", "user", "database", "schema")
_NULL_FLAG = "__IS_NULL"
AUTH_KEYS = ("password", "authenticator", "private_key", "private_key_file", "token")


def _quote(name: str) -> str:
    return f'"{name.upper()}"'


def _sql_type(series: pd.Series) -> str:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(dtype):
        return "NUMBER(38,0)"
    if pd.api.types.is_float_dtype(dtype):
        return "FLOAT"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "TIMESTAMP_TZ"
    if pd.api.types.is_datetime64_dtype(dtype):
        return "TIMESTAMP_NTZ"
    present = series.dropna()
    if len(present) and all(isinstance(v, bool | np.bool_) for v in present):
        return "BOOLEAN"
    return "VARCHAR"


def _parquet_frame(data: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """``data`` with upper-case column names and text columns as ``str`` or ``None``."""
    frame = pd.DataFrame(index=data.index)
    for column, sql_type in types.items():
        values = data[column]
        if sql_type == "VARCHAR":
            values = (
                values.astype(object)
                .where(values.notna(), None)
                .map(lambda v: None if v is None else str(v))
            )
        elif sql_type == "BOOLEAN" and values.dtype == object:
            values = values.astype("boolean")
        frame[column.upper()] = values
    return frame


class SnowflakeBackend:
    """Tables of one Snowflake database schema."""

    def __init__(self, credentials: Mapping[str, Any] | None, chunk_size: int = 250_000) -> None:
        if not credentials:
            raise DatasetError(
                "backend 'snowflake' needs credentials: add a 'snowflake' entry "
                "(account, user, password, database, schema, warehouse) to credentials.yml "
                "and set `credentials: snowflake` on the dataset"
            )
        creds = {k: v for k, v in dict(credentials).items() if v is not None}
        missing = [k for k in REQUIRED_KEYS if not creds.get(k)]
        if not any(creds.get(k) for k in AUTH_KEYS):
            missing.append("password (or authenticator / private_key)")
        if missing:
            raise DatasetError(f"Snowflake credentials lack required key(s): {', '.join(missing)}")
        if chunk_size < 1:
            raise DatasetError(f"save_args.chunk_size must be positive, got {chunk_size}")
        self._credentials = creds
        self._chunk_size = chunk_size

    def _connect(self):
        import snowflake.connector

        creds = self._credentials
        try:
            return snowflake.connector.connect(**creds, paramstyle="qmark")
        except snowflake.connector.errors.Error as exc:
            where = creds.get("host") or f"{creds['account']}.snowflakecomputing.com"
            reason = getattr(exc, "msg", None) or str(exc)
            raise DatasetError(
                f"Cannot connect to Snowflake account '{creds['account']}' at {where} as user "
                f"'{creds['user']}' (database {creds['database']}, schema {creds['schema']}): "
                f"{reason}. Check the 'snowflake' entry of credentials.yml."
            ) from None

    def read(self, table: str, columns: list[str] | None) -> pd.DataFrame:
        names = ", ".join(_quote(c) for c in columns) if columns else "*"
        conn = self._connect()
        try:
            cursor = conn.cursor()
            described = cursor.describe(f"SELECT {names} FROM {_quote(table)}")
            kinds = {m.name: FIELD_ID_TO_NAME.get(m.type_code, "") for m in described}
            stamps = [name for name, kind in kinds.items() if kind.startswith("TIMESTAMP")]
            # explicit NULL flags: some endpoints (fakesnow) return NULL timestamps as epoch 0
            flags = "".join(f", {_quote(c)} IS NULL AS {_quote(c + _NULL_FLAG)}" for c in stamps)
            cursor.execute(
                f"SELECT {', '.join(_quote(c) for c in kinds)}{flags} FROM {_quote(table)}"
            )
            frame = cursor.fetch_pandas_all()
        finally:
            conn.close()
        for name in stamps:
            flag = frame.pop(name.upper() + _NULL_FLAG.upper()).astype(bool)
            frame[name] = frame[name].mask(flag.to_numpy())
            if isinstance(frame[name].dtype, pd.DatetimeTZDtype):
                frame[name] = frame[name].dt.tz_convert("UTC")
        for meta in described:
            if FIELD_ID_TO_NAME.get(meta.type_code) == "FIXED" and not meta.scale:
                frame[meta.name] = frame[meta.name].astype("Int64")
        frame.columns = [c.lower() for c in frame.columns]
        return frame

    def replace(self, table: str, data: pd.DataFrame) -> None:
        staging, stage = f"{table}__STAGING", f"{table}__STAGE".upper()
        types = {c: _sql_type(data[c]) for c in data.columns}
        ddl = ", ".join(f"{_quote(c)} {t}" for c, t in types.items())
        frame = _parquet_frame(data, types)
        conn = self._connect()
        try:
            cursor = conn.cursor()
            cursor.execute(f"CREATE OR REPLACE TABLE {_quote(staging)} ({ddl})")
            cursor.execute(f"CREATE OR REPLACE TEMPORARY STAGE {stage}")
            with tempfile.TemporaryDirectory(prefix="warehouse_") as folder:
                starts = range(0, len(frame), self._chunk_size)
                for number, start in enumerate(
                    tqdm(starts, desc=f"snowflake {table}", disable=len(starts) < 4)
                ):
                    part = Path(folder) / f"part_{number:05d}.parquet"
                    frame.iloc[start : start + self._chunk_size].to_parquet(part, index=False)
                    cursor.execute(f"PUT 'file://{part.as_posix()}' @{stage} AUTO_COMPRESS=FALSE")
            if len(frame):
                cursor.execute(
                    f"COPY INTO {_quote(staging)} FROM @{stage} "
                    "FILE_FORMAT=(TYPE=PARQUET USE_LOGICAL_TYPE=TRUE) "
                    "MATCH_BY_COLUMN_NAME=CASE_INSENSITIVE ON_ERROR=ABORT_STATEMENT PURGE=TRUE"
                )
            loaded = cursor.execute(f"SELECT COUNT(*) FROM {_quote(staging)}").fetchone()[0]
            if int(loaded) != len(data):
                raise DatasetError(
                    f"Snowflake staging table {staging.upper()} holds {loaded} rows, "
                    f"expected {len(data)}: table {table.upper()} left unchanged"
                )
            cursor.execute(
                f"CREATE OR REPLACE TABLE {_quote(table)} AS SELECT * FROM {_quote(staging)}"
            )
            logger.info("Wrote %d rows to Snowflake table %s", len(data), table.upper())
        finally:
            try:
                conn.cursor().execute(f"DROP TABLE IF EXISTS {_quote(staging)}")
            except Exception as exc:  # keep the original error, if any
                logger.warning("Could not drop staging table %s: %s", staging, exc)
            finally:
                conn.close()

    def exists(self, table: str) -> bool:
        conn = self._connect()
        try:
            row = (
                conn.cursor()
                .execute(
                    "SELECT COUNT(*) FROM information_schema.tables "
                    "WHERE table_schema = CURRENT_SCHEMA() AND table_name = ?",
                    (table.upper(),),
                )
                .fetchone()
            )
        finally:
            conn.close()
        return bool(row and row[0])

    def describe(self) -> dict[str, Any]:
        creds = self._credentials
        return {
            "backend": "snowflake",
            "account": creds["account"],
            "database": creds["database"],
            "schema": creds["schema"],
        }
