"""A Parquet folder read and written by Spark (``--env spark``: the warehouse's Parquet
export in, the screening rows out partitioned by date).

``load`` returns a lazy Spark DataFrame of the active session (``SparkSessionHook``
starts it from ``screen_engine.spark`` before the run; else Spark's defaults), so a
filter a node puts on it is pushed down to the Parquet scan. ``save`` takes a Spark or a
pandas DataFrame.

Example:
    ```yaml
    prm_encounters:
      type: disease_pipeline.datasets.spark_parquet.SparkParquetDataset
      filepath: ${globals:data_root}/03_primary/export/encounters
    model_output_screenings_by_date:
      type: disease_pipeline.datasets.spark_parquet.SparkParquetDataset
      filepath: ${globals:data_root}/07_model_output/screenings_by_date
      save_args: {mode: overwrite, partitionBy: [encounter_date]}
    ```
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from kedro.io.core import AbstractDataset


def active_session():
    """The active Spark session, or a new one with Spark's defaults."""
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()


class SparkParquetDataset(AbstractDataset[Any, Any]):
    """A Parquet folder as a Spark DataFrame."""

    def __init__(
        self,
        *,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Args:
        filepath: The Parquet folder (a local path, or a URI the cluster reads:
            ``s3a://``, ``abfss://``, ``gs://``, ``dbfs:/``).
        load_args: Options of ``spark.read`` (e.g. ``mergeSchema``).
        save_args: ``mode`` (default ``overwrite``), ``partitionBy`` (columns) and
            options of ``DataFrame.write``.
        metadata: Free-form metadata (kedro-viz layer).
        """
        self._filepath = filepath
        self._load_args = dict(load_args or {})
        self._save_args = dict(save_args or {})
        self.metadata = metadata

    def load(self) -> Any:
        return active_session().read.options(**self._load_args).parquet(self._filepath)

    def save(self, data: Any) -> None:
        if isinstance(data, pd.DataFrame):
            data = active_session().createDataFrame(data)
        args = dict(self._save_args)
        writer = data.write.mode(args.pop("mode", "overwrite"))
        partition_by = args.pop("partitionBy", None)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.options(**args).parquet(self._filepath)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "load_args": self._load_args}
