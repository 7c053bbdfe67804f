"""Starts the Spark session of ``screen_engine.spark`` (``--env spark``) before the run.

The warehouse's Parquet export is read by ``SparkParquetDataset``, which uses the active
session: the session must therefore exist, with the environment's master and settings,
before the first node loads its inputs. Runs whose ``screen_engine`` is not ``spark``
(every environment but ``spark``) start nothing.
"""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl

ENGINE_PARAMETER = "params:screen_engine"


class SparkSessionHook:
    """``before_pipeline_run``: ``spark_session(master, **conf)`` of ``screen_engine.spark``."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        if ENGINE_PARAMETER not in catalog or ENGINE_PARAMETER not in pipeline.inputs():
            return
        engine = catalog.load(ENGINE_PARAMETER) or {}
        if engine.get("name") != "spark":
            return
        from disease_pipeline.pipelines.screen.spark import spark_session

        spark = engine.get("spark") or {}
        spark_session(spark.get("master", "local[2]"), **(spark.get("conf") or {}))
