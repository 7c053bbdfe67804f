"""``--env spark`` reads the warehouse's Parquet export as Spark DataFrames and selects
the window in Spark: the filter on ``start`` is pushed down to the Parquet scan, the
``start_date`` partitions outside the window are pruned, only the window's encounters
reach the ``mapInPandas`` scorer, and the rows equal the single-process screen's."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from disease_pipeline.datasets.spark_parquet import SparkParquetDataset
from disease_pipeline.pipelines.screen.nodes import resolve_window, score_window, window_tables

from .conftest import screen_params

pytest.importorskip("pyspark")
pytestmark = [pytest.mark.slow, pytest.mark.spark]

#: a year of the synthetic encounters (they span 2021-2023): most fall outside it
NARROW = {"start": "2022-01-01", "end": "2023-01-01", "days": None}
PRM = ("patients", "encounters", "symptoms", "vitals", "labs", "diagnoses")


@pytest.fixture(scope="module")
def spark():
    from disease_pipeline.pipelines.screen.spark import spark_session

    session = spark_session("local[2]", **{"spark.driver.memory": "1g"})
    yield session
    session.stop()


def write_export(prm: dict[str, pd.DataFrame], root: Path) -> Path:
    """The warehouse tables as the Parquet export of conf/spark/catalog_screen.yml:
    one folder per table, encounters partitioned by ``start_date``; times in
    microseconds, as Spark (and DuckDB's COPY) write them."""
    times = {"coerce_timestamps": "us", "allow_truncated_timestamps": True}
    for name in PRM:
        frame = prm[name]
        folder = root / name
        if name == "encounters":
            frame = frame.assign(start_date=frame["start"].dt.strftime("%Y-%m-%d"))
            table = pa.Table.from_pandas(frame, preserve_index=False)
            pq.write_to_dataset(table, folder, partition_cols=["start_date"], **times)
        else:
            folder.mkdir(parents=True)
            frame.to_parquet(folder / "part-0.parquet", index=False, **times)
    return root


@pytest.fixture(scope="module")
def export(screen_prm, tmp_path_factory) -> Path:
    return write_export(screen_prm, tmp_path_factory.mktemp("export"))


def spark_tables(spark, export: Path) -> dict:
    """The catalog's SparkParquetDataset loads (lazy Spark DataFrames)."""
    return {name: SparkParquetDataset(filepath=str(export / name)).load() for name in PRM}


def narrow_params() -> dict:
    params = screen_params()
    params["window"] = dict(NARROW)
    return params


def window_ids(prm: dict[str, pd.DataFrame]) -> set[str]:
    window = resolve_window(NARROW)
    start = prm["encounters"]["start"]
    inside = (start >= pd.Timestamp(window["start"])) & (start < pd.Timestamp(window["end"]))
    return set(prm["encounters"].loc[inside, "encounter_id"].astype(str))


def test_the_window_is_pushed_down_to_the_parquet_scan(spark, export, screen_prm):
    tables, _ = window_tables(**spark_tables(spark, export), params=narrow_params())
    plan = tables["encounters"]._jdf.queryExecution().executedPlan().toString()
    scan = next(line for line in plan.splitlines() if "FileScan parquet" in line)
    assert "PushedFilters: [" in scan and "GreaterThanOrEqual(start," in scan, scan
    assert "LessThan(start," in scan, scan
    pruned = scan.split("PartitionFilters: [", 1)[1].split("]", 1)[0]
    assert "start_date" in pruned and ">= 2022-01-01" in pruned, scan
    # the export has dates outside the window for the partition filter to prune
    dates = {p.name for p in (export / "encounters").iterdir() if p.is_dir()}
    assert any(d.startswith("start_date=2022-") for d in dates)
    assert any(not d.startswith("start_date=2022-") for d in dates)


def test_only_the_window_reaches_the_scorer(spark, export, screen_prm, screen_predictor):
    from disease_pipeline.pipelines.screen.spark import long_frame, score_spark

    expected = window_ids(screen_prm)
    assert 0 < len(expected) < len(screen_prm["encounters"])  # the window excludes some
    tables, _ = window_tables(**spark_tables(spark, export), params=narrow_params())
    fed = {row[0] for row in long_frame(tables).select("encounter_id").distinct().collect()}
    assert fed == expected  # the rows mapInPandas receives: the window's, details included
    rows = score_spark(
        spark, screen_predictor, tables, top_k=5, top_n=3, batch_size=64, partitions=2
    ).toPandas()
    assert set(rows["encounter_id"]) == expected and len(rows) == len(expected)


def test_the_spark_window_screen_equals_the_single_process_screen(
    spark, export, screen_prm, screen_predictor
):
    """The node path of ``--env spark`` (Spark inputs, Spark window, Spark scoring) gives
    the table of the pandas path on the warehouse frames, column types included."""
    params = narrow_params()
    common = {"predictor": screen_predictor, "model": "m1", "data": "d1", "params": params}
    engine = {"name": "spark", "spark": {"master": "local[2]", "partitions": 3}}
    frames, window = window_tables(**spark_tables(spark, export), params=params)
    on_spark = score_window(**common, tables=frames, window=window, engine=engine)
    tables, window = window_tables(**screen_prm, params=params)
    in_process = score_window(**common, tables=tables, window=window, engine={"name": "pandas"})
    assert len(in_process) == len(window_ids(screen_prm))
    keep = [c for c in in_process.columns if c not in ("screen_run", "screened_at")]
    pd.testing.assert_frame_equal(on_spark[keep], in_process[keep], check_exact=False, atol=1e-9)


def test_the_spark_environment_runs_the_screen_from_the_export(
    spark, tmp_path, screen_prm, predictor_file, receiver
):
    """The pipeline with conf/base + conf/spark's catalog: the warehouse exported by
    scripts/export_warehouse_parquet.py, read by SparkParquetDataset, the session of
    SparkSessionHook, the window's encounters only in the warehouse's screenings, and
    their rows written by Spark as Parquet partitioned by encounter date."""
    import subprocess
    import sys

    from kedro.io import DataCatalog, MemoryDataset
    from kedro.runner import SequentialRunner

    from disease_pipeline.pipelines.screen import create_pipeline
    from disease_pipeline.pipelines.screen.hooks import SparkSessionHook
    from tests.conftest import PROJECT_ROOT
    from tests.pipelines.common_model.synthetic import param_entries

    from .test_pipeline import catalog_config, fill_warehouse, warehouse

    fill_warehouse(tmp_path, screen_prm, None)
    primary = tmp_path / "03_primary"
    script = PROJECT_ROOT / "scripts" / "export_warehouse_parquet.py"
    command = [sys.executable, str(script), "--warehouse", str(primary / "warehouse.duckdb")]
    subprocess.run([*command, "--out", str(primary / "export")], check=True)
    config = catalog_config(tmp_path, receiver.url, env="spark")
    assert config["prm_encounters"]["type"].endswith("SparkParquetDataset")
    catalog = DataCatalog.from_config(config)
    catalog["prm_metadata"] = warehouse(tmp_path, None)("metadata")
    catalog["model_predictor"] = MemoryDataset(pd.read_pickle(predictor_file), copy_mode="assign")
    fingerprint = config["model_predictor_fingerprint"] | {"paths": [str(predictor_file)]}
    catalog["model_predictor_fingerprint"] = DataCatalog.from_config({"f": fingerprint})["f"]
    for key, value in param_entries("screen", narrow_params()).items():
        catalog[key] = MemoryDataset(value)
    engine = {"name": "spark", "spark": {"master": "local[2]", "partitions": 2, "conf": {}}}
    catalog["params:screen_engine"] = MemoryDataset(engine)
    pipeline = create_pipeline()
    SparkSessionHook().before_pipeline_run({}, pipeline, catalog)
    SequentialRunner().run(pipeline, catalog)
    screenings = warehouse(tmp_path, None)("screenings").load()
    assert set(screenings["encounter_id"]) == window_ids(screen_prm)
    by_date = tmp_path / "07_model_output" / "screenings_by_date"
    days = sorted(p.name for p in by_date.iterdir() if p.name.startswith("encounter_date="))
    assert days and all(d.startswith("encounter_date=2022-") for d in days)
    assert spark.read.parquet(str(by_date)).count() == len(screenings)
