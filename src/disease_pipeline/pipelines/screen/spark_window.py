"""The screen's window selected by Spark, on Spark DataFrames of the warehouse's Parquet
export (``--env spark``: ``conf/spark/catalog_screen.yml``).

The same tables as :func:`~disease_pipeline.pipelines.screen.nodes.window_tables` —
encounters with ``window.start <= start < window.end`` and the patient's ``sex``
(``unknown`` when the patient is missing), and the detail rows of those encounters —
but nothing is read on the driver: the window is a filter on ``start`` that Spark pushes
down to the Parquet scan (row groups outside it are skipped), plus, when the export is
partitioned by ``start_date`` (``yyyy-mm-dd``), a filter on that column that prunes the
partitions outside the window. The detail tables keep the rows of the window's
encounters by a left semi join.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from disease_pipeline.predictor.screening import DETAIL_TABLES

#: the partition column of the encounters export (the UTC date of ``start``)
PARTITION_COLUMN = "start_date"


def window_filter(window: dict[str, str], columns: list[str]):
    """The Spark condition of the window on ``start`` (timestamps, UTC), and on
    ``start_date`` when ``columns`` has it (partition pruning)."""
    from pyspark.sql import functions as F  # noqa: N812

    start, end = pd.Timestamp(window["start"]), pd.Timestamp(window["end"])
    condition = (F.col("start") >= F.lit(start.to_pydatetime())) & (
        F.col("start") < F.lit(end.to_pydatetime())
    )
    if PARTITION_COLUMN in columns:
        first, last = start.tz_convert("UTC").date(), end.tz_convert("UTC").date()
        condition &= (F.col(PARTITION_COLUMN) >= F.lit(first.isoformat())) & (
            F.col(PARTITION_COLUMN) <= F.lit(last.isoformat())
        )
    return condition


def spark_window_tables(
    *,
    patients: Any,
    encounters: Any,
    symptoms: Any,
    vitals: Any,
    labs: Any,
    diagnoses: Any,
    window: dict[str, str],
) -> dict[str, Any]:
    """The predictor's tables (Spark DataFrames, lazy) of the encounters of ``window``
    (``{start, end}``, ISO, of :func:`~disease_pipeline.pipelines.screen.nodes.resolve_window`)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # noqa: N812

    columns = [c for c in encounters.columns if c not in (PARTITION_COLUMN, "sex")]
    inside = encounters.where(window_filter(window, list(encounters.columns)))
    first = Window.partitionBy("encounter_id").orderBy("start")
    inside = (  # one row per encounter id, the earliest (the pandas path keeps it too)
        inside.withColumn("_row", F.row_number().over(first)).where("_row = 1").drop("_row")
    )
    sex = (
        patients.select("patient_id", F.col("sex").alias("_sex"))
        .groupBy("patient_id")
        .agg(F.first("_sex").alias("_sex"))
    )
    enc = (
        inside.select(*columns)
        .join(sex, "patient_id", "left")
        .withColumn("sex", F.coalesce(F.col("_sex"), F.lit("unknown")))
        .select(*columns, "sex")
    )
    ids = enc.select("encounter_id")
    details = {"symptoms": symptoms, "vitals": vitals, "labs": labs, "diagnoses": diagnoses}
    out = {"encounters": enc}
    for name in DETAIL_TABLES:
        out[name] = details[name].join(ids, "encounter_id", "left_semi")
    return out


def is_spark_frame(frame: Any) -> bool:
    """True for a Spark DataFrame (the ``--env spark`` catalog), False for pandas."""
    return not isinstance(frame, pd.DataFrame) and hasattr(frame, "sparkSession")
