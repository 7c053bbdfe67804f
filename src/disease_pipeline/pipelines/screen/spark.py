"""The same screening on Spark: encounters spread over partitions, each partition scored
by :func:`~disease_pipeline.predictor.screening.score_tables` (``mapInPandas``).

The five predictor tables are unioned into one long frame — ``encounter_id``, the
table's name and the row as JSON — and repartitioned by ``encounter_id``, so every row
of an encounter lands in the same partition. Each Python worker rebuilds the tables of
its partition and scores them in batches with the predictor, broadcast once as its
pickle. The rows are those of the pandas path (the parity test checks it), typed by
:data:`screening_schema`.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd

from disease_pipeline.predictor.screening import (
    DETAIL_TABLES,
    score_tables,
    screening_columns,
)

#: unpickled predictors of this worker process, by the key of their broadcast
_PREDICTORS: dict[str, Any] = {}


def spark_session(master: str = "local[2]", app: str = "disease_pipeline-screen", **conf: Any):
    """A Spark session (``master`` ``local[N]`` on one machine, or a cluster's URL);
    ``conf`` entries are Spark settings (``spark.driver.memory`` …)."""
    from pyspark.sql import SparkSession

    # Python workers run this interpreter (its virtual environment's packages)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    local = master.startswith("local")
    if local:  # one machine: the driver and its workers talk over loopback only
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(master).appName(app)
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
        **(
            {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
            if local
            else {}
        ),
        **{str(k): str(v) for k, v in conf.items()},
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def screening_schema(top_n: int) -> str:
    """The Spark schema (DDL) of the screening columns of :func:`screening_columns`."""
    fields = []
    for column in screening_columns(top_n):
        if column == "encounter_start":
            kind = "timestamp"
        elif column.startswith("p_") or column.endswith("_probability"):
            kind = "double"
        else:
            kind = "string"
        fields.append(f"`{column}` {kind}")
    return ", ".join(fields)


def long_frame(frames: dict[str, Any]):
    """One Spark DataFrame ``(encounter_id, table, payload)`` of every row of the
    ``encounters`` and detail tables, the row as JSON."""
    from pyspark.sql import functions as F  # noqa: N812

    parts = []
    for name in ("encounters", *DETAIL_TABLES):
        frame = frames[name]
        parts.append(
            frame.select(
                F.col("encounter_id").cast("string").alias("encounter_id"),
                F.lit(name).alias("table"),
                F.to_json(F.struct(*[F.col(c) for c in frame.columns])).alias("payload"),
            )
        )
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def tables_from_payloads(
    rows: pd.DataFrame, columns: dict[str, list[str]]
) -> dict[str, pd.DataFrame]:
    """The predictor tables of one partition, from its long rows; ``columns`` are each
    table's columns (a JSON row omits its nulls)."""
    tables = {}
    for name, cols in columns.items():
        payloads = rows.loc[rows["table"] == name, "payload"]
        tables[name] = pd.DataFrame([json.loads(p) for p in payloads], columns=cols)
    encounters = tables["encounters"]
    encounters["start"] = pd.to_datetime(encounters["start"], utc=True, format="ISO8601")
    tables["encounters"] = encounters.sort_values(["start", "encounter_id"], kind="stable")
    return {
        name: frame.assign(encounter_id=frame["encounter_id"].astype(str))
        for name, frame in tables.items()
    }


def _partition_scorer(broadcast, columns: dict[str, list[str]], options: dict[str, int]):
    """The ``mapInPandas`` function: all batches of a partition → its screening rows."""
    key = uuid.uuid4().hex

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        rows = pd.concat(list(batches), ignore_index=True)
        if rows.empty:
            return
        predictor = _PREDICTORS.get(key)
        if predictor is None:  # once per worker process (Python workers are reused)
            predictor = _PREDICTORS[key] = pickle.loads(broadcast.value)  # noqa: S301
        tables = tables_from_payloads(rows, columns)
        scored = score_tables(predictor, tables, progress=False, **options)
        scored["encounter_start"] = scored["encounter_start"].dt.tz_localize(None)
        yield scored

    return score


def score_spark(
    spark: Any,
    predictor: Any,
    frames: dict[str, Any],
    *,
    top_k: int,
    top_n: int,
    batch_size: int,
    partitions: int,
):
    """The screening rows (a Spark DataFrame, columns of :func:`screening_columns`) of
    the encounters of ``frames`` (Spark DataFrames ``encounters`` with ``sex`` and
    ``start``, ``symptoms``, ``vitals``, ``labs``, ``diagnoses``)."""
    if partitions < 1:
        raise ValueError(f"screen spark partitions must be >= 1, got {partitions}")
    columns = {name: list(frames[name].columns) for name in ("encounters", *DETAIL_TABLES)}
    broadcast = spark.sparkContext.broadcast(pickle.dumps(predictor))
    options = {"top_k": top_k, "top_n": top_n, "batch_size": batch_size}
    spread = long_frame(frames).repartition(partitions, "encounter_id")
    return spread.mapInPandas(
        _partition_scorer(broadcast, columns, options), schema=screening_schema(top_n)
    )


def pandas_to_spark(spark: Any, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Spark DataFrames of the predictor tables (e.g. the window of ``window_tables``);
    columns that are all null are sent as text."""
    frames = {}
    for name in ("encounters", *DETAIL_TABLES):
        frame = tables[name].copy()
        for column in frame.columns:
            if frame[column].isna().all() or frame[column].dtype == object:
                frame[column] = frame[column].astype("string").astype(object)
                frame[column] = frame[column].where(frame[column].notna(), None)
        frames[name] = spark.createDataFrame(frame)
    return frames
