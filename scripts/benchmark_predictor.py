"""Speed of the pickled predictor alone (no HTTP): one patient at a time and batches.

Loads a pickled ``DiseasePredictor``, applies the service's process settings (one
thread for torch, OpenMP and BLAS, ``serving.threads``; the garbage-collector tuning of
``serving/runtime.py``) and measures

- ``single``: ``predict_records([record])`` latency of ``--n`` patients (the 200 valid
  records of ``tests/data/record_rules_golden.json``, cycled) after ``--warm-up``
  calls: median, p95, p99 in ms (explanations on, ``top_k`` 10, as ``/predict``);
- ``small_calls``: the same latency for calls of each of ``--sizes`` patients (1, 4
  and 16: the model calls of ``/predict`` under load, several requests merged);
- ``records_batches``: ``predict_records`` on batches of ``--batch-size`` of those
  records (explanations on, as ``/predict_batch``), patients/s;
- ``tables_batches`` (with ``--warehouse``): ``predict_tables`` on the tables of the
  ``--encounters`` latest warehouse encounters in batches of ``--table-batch-size``,
  explanations off and ``top_k`` 5 (the screening pipeline's call), patients/s;

The predictor is prepared as the service prepares it (``serving.engine.load_predictor``:
the numpy walk of the tree models for small calls, ``predictor.small_trees``);
``--xgboost-only`` leaves XGBoost to answer every call (the figures before it). The
script writes the figures, the counts, the CPU count and the 1-minute load before and
after to ``data/08_reporting/benchmark_predictor.json``::

    python scripts/benchmark_predictor.py                               # after `make train`
    python scripts/benchmark_predictor.py /tmp/predictor.pkl \\
        --warehouse data/03_primary/warehouse.duckdb --n 600

Other work on the machine moves these figures: compare two versions of the code in the
same conditions (alternate runs) and read the load figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from _bench import host_load, write_report

from disease_pipeline.predictor.small_trees import prepare_small_inputs
from disease_pipeline.serving.runtime import limit_threads, tune_collector

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "tests" / "data" / "record_rules_golden.json"
WAREHOUSE_TABLES = ("patients", "encounters", "symptoms", "vitals", "labs", "diagnoses")


def load_records(path: Path) -> list[dict[str, Any]]:
    """The patient records (JSON) of ``path``: a list, or the golden file's ``inputs``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return list(data["inputs"] if isinstance(data, dict) else data)


def cycled(records: list[dict[str, Any]], count: int, prefix: str) -> list[dict[str, Any]]:
    """``count`` records taken in turn from ``records``, each with its own encounter id."""
    return [{**records[i % len(records)], "encounter_id": f"{prefix}{i}"} for i in range(count)]


def latency_summary(seconds: list[float]) -> dict[str, float]:
    """Median, p95, p99, mean and max of call durations, in ms."""
    ms = np.asarray(seconds) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "mean_ms": round(float(ms.mean()), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def time_single(predictor: Any, records: list[dict[str, Any]], n: int, warm_up: int) -> dict:
    """Latency of ``predict_records`` on one record at a time."""
    for record in cycled(records, warm_up, "w"):
        predictor.predict_records([record], top_k=10)
    seconds = []
    for record in cycled(records, n, "s"):
        started = time.perf_counter()
        predictor.predict_records([record], top_k=10)
        seconds.append(time.perf_counter() - started)
    return {"n": n, "warm_up": warm_up, "top_k": 10, "explain": True, **latency_summary(seconds)}


def time_sizes(
    predictor: Any, records: list[dict[str, Any]], sizes: list[int], n: int, warm_up: int
) -> dict:
    """Latency of ``predict_records`` on calls of each of ``sizes`` records (``n``
    calls per size after ``warm_up``; explanations on, ``top_k`` 10)."""
    out = {}
    for size in sizes:
        for start in range(warm_up):
            predictor.predict_records(cycled(records, size, f"w{start}-"), top_k=10)
        seconds = []
        for call in range(n):
            batch = cycled(records[(call * size) % len(records) :] + records, size, f"c{call}-")
            started = time.perf_counter()
            predictor.predict_records(batch, top_k=10)
            seconds.append(time.perf_counter() - started)
        out[str(size)] = {"n": n, **latency_summary(seconds)}
    return out


def time_record_batches(
    predictor: Any, records: list[dict[str, Any]], batch_size: int, batches: int
) -> dict:
    """Throughput of ``predict_records`` on batches (explanations on); one warm-up batch."""
    predictor.predict_records(cycled(records, batch_size, "w"), top_k=10)
    seconds = []
    for b in range(batches):
        batch = cycled(records, batch_size, f"b{b}-")
        started = time.perf_counter()
        predictor.predict_records(batch, top_k=10)
        seconds.append(time.perf_counter() - started)
    return _throughput(seconds, batch_size, top_k=10, explain=True)


def warehouse_tables(path: Path, count: int) -> dict[str, Any]:
    """The screening pipeline's tables of the ``count`` latest encounters of a warehouse."""
    from benchmark_screen import latest

    from disease_pipeline.datasets.warehouse import WarehouseTableDataset
    from disease_pipeline.pipelines.screen.nodes import window_tables

    prm = {t: WarehouseTableDataset(table=t, filepath=str(path)).load() for t in WAREHOUSE_TABLES}
    window = {"start": "1900-01-01", "end": datetime.now(UTC).isoformat()}
    tables, _ = window_tables(**prm, params={"window": window})
    return latest(tables, count)


def time_table_batches(predictor: Any, tables: dict[str, Any], batch_size: int) -> dict:
    """Throughput of ``predict_tables`` (explanations off, ``top_k`` 5, as screening) on
    consecutive batches of the tables' encounters; the first batch is run twice (warm-up)."""
    from disease_pipeline.predictor.screening import batch_tables

    ids = tables["encounters"]["encounter_id"].astype(str).tolist()
    batches = [
        batch_tables(tables, ids[start : start + batch_size])
        for start in range(0, len(ids), batch_size)
    ]
    predictor.predict_tables(batches[0], top_k=5, explain=False)
    seconds = []
    for batch in batches:
        started = time.perf_counter()
        predictor.predict_tables(batch, top_k=5, explain=False)
        seconds.append(time.perf_counter() - started)
    result = _throughput(seconds, batch_size, top_k=5, explain=False)
    result["encounters"] = len(ids)
    result["patients_per_s"] = round(len(ids) / sum(seconds), 1)
    return result


def _throughput(seconds: list[float], batch_size: int, **options: Any) -> dict:
    return {
        "batch_size": batch_size,
        "batches": len(seconds),
        **options,
        "patients_per_s": round(batch_size * len(seconds) / sum(seconds), 1),
        "median_batch_s": round(statistics.median(seconds), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "predictor", nargs="?", type=Path, default=ROOT / "data/06_models/predictor.pkl"
    )
    parser.add_argument("--records", type=Path, default=RECORDS)
    parser.add_argument("--n", type=int, default=400, help="single-record calls timed")
    parser.add_argument("--warm-up", type=int, default=40)
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=[1, 4, 16], help="patients per small call"
    )
    parser.add_argument("--size-calls", type=int, default=200, help="calls timed per size")
    parser.add_argument("--xgboost-only", action="store_true", help="no numpy walk of the trees")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--warehouse", type=Path, default=None)
    parser.add_argument("--encounters", type=int, default=5000)
    parser.add_argument("--table-batch-size", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="as serving.threads")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "data/08_reporting/benchmark_predictor.json"
    )
    args = parser.parse_args()
    # records with HPO ids newer than the release log one warning per symptom
    logging.getLogger("disease_pipeline").setLevel(logging.ERROR)
    load_before = os.getloadavg()[0]

    records = load_records(args.records)
    tables = warehouse_tables(args.warehouse, args.encounters) if args.warehouse else None
    started = time.perf_counter()
    predictor = pickle.loads(args.predictor.read_bytes())  # noqa: S301 - our own artifact
    load_seconds = time.perf_counter() - started
    limit_threads(args.threads)
    small_trees = {} if args.xgboost_only else prepare_small_inputs(predictor)
    tune_collector()

    result: dict[str, Any] = {
        "predictor": str(args.predictor),
        "predictor_load_seconds": round(load_seconds, 2),
        "threads": args.threads,
        "small_trees": small_trees,
        "single": time_single(predictor, records, args.n, args.warm_up),
        "small_calls": time_sizes(
            predictor, records, args.sizes, args.size_calls, max(args.warm_up // 4, 1)
        ),
        "records_batches": time_record_batches(predictor, records, args.batch_size, args.batches),
    }
    if tables is not None:
        result["tables_batches"] = time_table_batches(predictor, tables, args.table_batch_size)
    result["host"] = host_load(load_before)
    result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_report(args.out, result)


if __name__ == "__main__":
    main()
