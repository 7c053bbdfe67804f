"""Throughput of population screening: the pandas path and the Spark path, same run.

Reads the warehouse (DuckDB) and the pickled predictor, takes the latest ``--encounters``
encounters, then

- pandas: ``score_tables`` in one process (batches of ``--batch-size``);
- Spark: ``score_spark`` (``mapInPandas``) on ``--master`` (``local[2]``) with
  ``--partitions`` partitions, the rows written as Parquet partitioned by encounter
  date; timed with and without the session start. Its input is either the pandas
  window sent to Spark (the default), or, with ``--parquet-export``, what
  ``--env spark`` runs: the warehouse's Parquet export
  (``scripts/export_warehouse_parquet.py``) read by Spark and the window (from the
  first start of the selected encounters on) selected in Spark by
  ``spark_window_tables`` — its reading, pruning and joins then count in the job;

and checks that both give the same rows. Figures, the targets of the issue (50,000
encounters in <= 2 min single-process; Spark within 2x of it) and the cluster size
estimated from the measured per-core rate for 10 million encounters in one hour go to
``data/08_reporting/benchmark_screen.json``::

    python scripts/benchmark_screen.py                     # after `make train`
    python scripts/benchmark_screen.py --encounters 5000   # a quicker look
    python scripts/export_warehouse_parquet.py && \\
        python scripts/benchmark_screen.py --parquet-export data/03_primary/export
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from _bench import host_load, write_report

from disease_pipeline.datasets.warehouse import WarehouseTableDataset
from disease_pipeline.pipelines.screen.nodes import window_tables
from disease_pipeline.predictor.screening import DETAIL_TABLES, score_tables

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("patients", "encounters", "symptoms", "vitals", "labs", "diagnoses")
TARGETS = {"pandas_seconds_50k": 120.0, "spark_over_pandas": 2.0}


def latest(tables: dict[str, pd.DataFrame], count: int) -> dict[str, pd.DataFrame]:
    """The tables of the ``count`` latest encounters."""
    encounters = tables["encounters"].sort_values("start").tail(count).reset_index(drop=True)
    ids = set(encounters["encounter_id"])
    out = {"encounters": encounters}
    for name in DETAIL_TABLES:
        out[name] = tables[name][tables[name]["encounter_id"].isin(ids)].reset_index(drop=True)
    return out


def compare(pandas_rows: pd.DataFrame, spark_rows: pd.DataFrame) -> dict:
    """How far the Spark rows are from the pandas rows (same encounters)."""
    scored = len(spark_rows)
    spark_rows = spark_rows.set_index("encounter_id").loc[pandas_rows["encounter_id"]]
    spark_rows = spark_rows.reset_index()
    numeric = [c for c in pandas_rows.columns if pandas_rows[c].dtype.kind == "f"]
    codes = [c for c in pandas_rows.columns if c.endswith("_code")] + ["severity_level"]
    differ = ~(
        spark_rows[codes].astype(object).fillna("") == pandas_rows[codes].astype(object).fillna("")
    )
    gap = np.abs(spark_rows[numeric].to_numpy(float) - pandas_rows[numeric].to_numpy(float))
    return {
        "rows": len(spark_rows),
        "spark_rows": scored,
        "rows_with_a_different_code": int(differ.any(axis=1).sum()),
        "max_abs_probability_difference": float(np.nanmax(gap)) if gap.size else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", type=Path, default=ROOT / "data/03_primary/warehouse.duckdb")
    parser.add_argument("--predictor", type=Path, default=ROOT / "data/06_models/predictor.pkl")
    parser.add_argument("--encounters", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--skip-spark", action="store_true")
    parser.add_argument(
        "--parquet-export",
        type=Path,
        default=None,
        help="Spark reads this Parquet export and selects the window itself (--env spark)",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "data/08_reporting/benchmark_screen.json"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    prm = {t: WarehouseTableDataset(table=t, filepath=str(args.warehouse)).load() for t in TABLES}
    window = {"start": "1900-01-01", "end": datetime.now(UTC).isoformat()}
    tables, _ = window_tables(**prm, params={"window": window})
    tables = latest(tables, args.encounters)
    n = len(tables["encounters"])
    started = time.perf_counter()
    predictor = pickle.loads(args.predictor.read_bytes())  # noqa: S301 - our own artifact
    load_seconds = time.perf_counter() - started
    options = {"top_k": 5, "top_n": 3, "batch_size": args.batch_size}

    started = time.perf_counter()
    pandas_rows = score_tables(predictor, tables, progress=True, **options)
    pandas_seconds = time.perf_counter() - started
    result = {
        "encounters": n,
        "predictor_load_seconds": round(load_seconds, 2),
        "pandas": {
            "seconds": round(pandas_seconds, 1),
            "patients_per_s": round(n / pandas_seconds, 1),
            "refused": int(pandas_rows["error"].notna().sum()),
            "batch_size": args.batch_size,
        },
    }
    if not args.skip_spark:
        result["spark"] = run_spark(args, predictor, tables, options, pandas_rows)
        per_core = result["spark"]["patients_per_s"] / result["spark"]["cores"]
        needed = 10_000_000 / 3600 / per_core
        result["cluster_estimate_10m_per_hour"] = {
            "per_core_patients_per_s": round(per_core, 1),
            "cores_needed": math.ceil(needed),
            "cores_with_30pct_headroom": math.ceil(needed * 1.3),
            "note": "from the Spark job's measured rate per core on this shared machine",
        }
    per_50k = pandas_seconds * 50_000 / n
    result["targets"] = {
        "pandas_seconds_for_50k": round(per_50k, 1),
        "pandas_50k_within_2_min": per_50k <= TARGETS["pandas_seconds_50k"],
    }
    if "spark" in result:
        ratio = result["spark"]["job_seconds"] / pandas_seconds
        result["targets"]["spark_job_over_pandas"] = round(ratio, 2)
        result["targets"]["spark_within_2x"] = ratio <= TARGETS["spark_over_pandas"]
    result["host"] = host_load(load_before)
    result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_report(args.out, result)


def parquet_window(spark, export: Path, tables: dict[str, pd.DataFrame]) -> dict:
    """The Spark tables of ``--env spark``: the export's folders read lazily and the
    window from the first start of the selected encounters on selected by
    ``spark_window_tables`` (pushed-down ``start`` filter, ``start_date`` pruning)."""
    from disease_pipeline.pipelines.screen.spark_window import spark_window_tables

    first = pd.Timestamp(tables["encounters"]["start"].min())
    first = first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")
    window = {"start": first.isoformat(), "end": datetime.now(UTC).isoformat()}
    frames = {t: spark.read.parquet(str(export / t)) for t in TABLES}
    return spark_window_tables(**frames, window=window)


def run_spark(args, predictor, tables, options, pandas_rows) -> dict:
    """Session start, the scoring job writing Parquet by date, and the parity check."""
    from pyspark.sql import functions as F  # noqa: N812

    from disease_pipeline.pipelines.screen.spark import pandas_to_spark, score_spark, spark_session

    started = time.perf_counter()
    spark = spark_session(args.master, **{"spark.driver.memory": args.driver_memory})
    cores = spark.sparkContext.defaultParallelism
    if args.parquet_export is None:
        source = "pandas window sent to Spark (pandas_to_spark)"
        frames = pandas_to_spark(spark, tables)
    else:
        source = f"Parquet export {args.parquet_export}, window selected in Spark"
        frames = parquet_window(spark, args.parquet_export, tables)
    session_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        rows = score_spark(spark, predictor, frames, partitions=args.partitions, **options)
        rows = rows.withColumn("encounter_date", F.to_date("encounter_start"))
        rows.write.partitionBy("encounter_date").parquet(f"{folder}/screenings")
        job_seconds = time.perf_counter() - started
        spark_rows = pd.read_parquet(f"{folder}/screenings")
    spark.stop()
    n = len(pandas_rows)
    return {
        "master": args.master,
        "input": source,
        "cores": cores,
        "partitions": args.partitions,
        "session_and_load_seconds": round(session_seconds, 1),
        "job_seconds": round(job_seconds, 1),
        "patients_per_s": round(n / job_seconds, 1),
        "parity_with_pandas": compare(pandas_rows, spark_rows.drop(columns="encounter_date")),
    }


if __name__ == "__main__":
    main()
