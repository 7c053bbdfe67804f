"""Monitoring a week of logged predictions, and the prediction log's cost on ``/predict``.

1. **Log:** ``--replay`` test-split encounters of the warehouse are predicted in-process
   through the service's own path (``PatientPredictor`` → audit trail → prediction
   log, ``pipelines/monitor/replay.py``) with the trained predictor; the log is then
   grown to ``--rows`` rows by re-drawing those rows (new request ids, times spread over
   the week), and ``--feedback-share`` of them get their confirmed diagnosis. All of it
   in a throw-away warehouse: the project's own log is not touched.
2. **Monitor:** the ``monitor`` pipeline's nodes on that week, inputs from the project
   catalog (training rows, feature builder, test predictions), wall time per node.
3. **Overhead** (unless ``--skip-overhead``): two services of the champion of
   ``make train`` (BentoML store of the environment) side by side, prediction log on
   and off; ``--requests`` patients each sent to both in alternating order (after a
   warm-up), so both see the same load; p50/p95 of each and their differences with
   95 % bootstrap intervals. Plus the in-process cost of ``PredictionLogWriter.add``.

Figures go to ``data/08_reporting/monitoring/benchmark_monitor.json``::

    python scripts/benchmark_monitor.py                 # after `make train`
    python scripts/benchmark_monitor.py --rows 5000 --replay 500 --skip-overhead
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from _bench import machine, paired_latency

from disease_pipeline.pipelines.monitor import create_pipeline
from disease_pipeline.pipelines.monitor.performance import SUMMARY_FIGURES
from disease_pipeline.pipelines.monitor.replay import Replayer, tables_to_records
from disease_pipeline.serving.feedback import FEEDBACK_COLUMNS
from disease_pipeline.serving.prediction_log import PREDICTION_LOG_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "data" / "08_reporting" / "monitoring" / "benchmark_monitor.json"
TARGETS = {"monitor_seconds_50k": 120.0, "logging_overhead_p95_ms": 1.0}
TABLES = ("encounters", "patients", "symptoms", "vitals", "labs", "diagnoses")


def project_catalog():
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(ROOT)
    session = KedroSession.create(project_path=ROOT)
    return session.load_context().catalog


def test_records(catalog, count: int) -> tuple[list, list[str]]:
    """The first ``count`` test-split encounters as service records and their labels."""
    ids = catalog.load("model_input_test")["encounter_id"].astype(str).head(count)
    tables = {}
    for name in TABLES:
        frame = catalog.load(f"prm_{name}")
        if "encounter_id" in frame:
            frame = frame[frame["encounter_id"].astype(str).isin(set(ids))]
        tables[name] = frame
    return tables_to_records(tables)


def build_week(catalog, folder: Path, args, window_end: datetime) -> dict:
    """The throw-away warehouse with ``args.rows`` logged predictions and feedback
    (``--log-warehouse``: the rows of an earlier ``--save-log``, re-dated into this week)."""
    if args.log_warehouse is not None:
        return reuse_week(args.log_warehouse, window_end)
    warehouse = folder / "warehouse.duckdb"
    records, labels = test_records(catalog, args.replay)
    start = window_end - timedelta(days=7)
    rng = np.random.default_rng(0)
    served = sorted(
        start + timedelta(seconds=float(s)) for s in rng.uniform(0, 7 * 86400, len(records))
    )
    replayer = Replayer.create(catalog.load("model_predictor"), warehouse, folder)
    began = time.perf_counter()
    answers = list(replayer.replay(records, [""] * len(records), served, batch=1))
    replay_s = time.perf_counter() - began
    replayer.close()
    label_of = {
        a["request_id"]: lab for a, lab in zip(answers, labels, strict=True) if isinstance(a, dict)
    }
    with duckdb.connect(str(warehouse)) as con:
        log = con.execute("SELECT * FROM prediction_log").df()
    grown = log.sample(n=args.rows, replace=True, random_state=1).reset_index(drop=True)
    source = grown["request_id"].copy()
    grown["request_id"] = [uuid.uuid4().hex for _ in range(len(grown))]
    seconds = np.sort(rng.uniform(0, 7 * 86400 - 1, len(grown)))
    grown["logged_at"] = [start + timedelta(seconds=float(s)) for s in seconds]
    labelled = grown[
        (grown["status"] == "predicted") & (rng.uniform(size=len(grown)) < args.feedback_share)
    ]
    feedback = pd.DataFrame(
        {
            "feedback_id": [uuid.uuid4().hex for _ in range(len(labelled))],
            "request_id": labelled["request_id"].to_numpy(),
            "received_at": labelled["logged_at"].to_numpy(),
            "user_id": "benchmark",
            "role": "clinician",
            "confirmed_code": source[labelled.index].map(label_of).to_numpy(),
            "notes": None,
            "model_version": labelled["model_version"].to_numpy(),
            "predicted_top": labelled["top_codes"].to_numpy(),
            "confirmed_rank": None,
        }
    )
    feedback = feedback[feedback["confirmed_code"].fillna("") != ""]
    with duckdb.connect(str(warehouse)) as con:
        for table, frame, columns in (
            ("prediction_log", grown, PREDICTION_LOG_COLUMNS),
            ("feedback", feedback, FEEDBACK_COLUMNS),
        ):
            con.register("incoming", frame[list(columns)])
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM incoming")
            con.unregister("incoming")
        log = con.execute("SELECT * FROM prediction_log").df()
        feedback = con.execute("SELECT * FROM feedback").df()
    return {
        "log": log,
        "feedback": feedback,
        "replayed": len(records),
        "replay_seconds": round(replay_s, 1),
        "replay_refused": sum(not isinstance(a, dict) for a in answers),
    }


def reuse_week(warehouse: Path, window_end: datetime) -> dict:
    """The log and feedback of a saved week, shifted so that the week ends at
    ``window_end``."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        log = con.execute("SELECT * FROM prediction_log").df()
        feedback = con.execute("SELECT * FROM feedback").df()
    shift = pd.Timestamp(window_end) - pd.to_datetime(log["logged_at"], utc=True).max()
    shift = shift - pd.Timedelta(seconds=1)  # the window excludes its end
    log["logged_at"] = pd.to_datetime(log["logged_at"], utc=True) + shift
    feedback["received_at"] = pd.to_datetime(feedback["received_at"], utc=True) + shift
    return {
        "log": log,
        "feedback": feedback,
        "replayed": None,
        "replay_seconds": None,
        "replay_refused": None,
        "from": str(warehouse),
    }


def run_monitor(catalog, week: dict, window_end: datetime) -> dict:
    """The monitor's nodes in order on the week; seconds per node and the summary."""
    params = catalog.load("params:monitor") | {"window_end": window_end.isoformat()}
    data = {
        "prm_prediction_log": week["log"],
        "prm_feedback": week["feedback"],
        "params:monitor": params,
        "params:monitor.top_k": params["top_k"],
    }
    pipeline = create_pipeline()
    seconds = {}
    began = time.perf_counter()
    for node in pipeline.nodes:
        inputs = {}
        for name in node.inputs:
            if name not in data:
                data[name] = catalog.load(name)
            inputs[name] = data[name]
        started = time.perf_counter()
        data.update(node.run(inputs))
        seconds[node.name] = round(time.perf_counter() - started, 2)
    return {
        "seconds": round(time.perf_counter() - began, 1),
        "node_seconds": seconds,
        "summary": data["reporting_monitoring_summary"],
    }


def start_service(folder: Path, enabled: bool, token: str):
    """``bentoml serve`` (the environment's store) with the prediction log on or off."""
    from disease_pipeline.serving.process import ServiceProcess, write_config

    folder.mkdir(parents=True, exist_ok=True)
    config = write_config(
        folder, {"clinician": token}, prediction_log={"enabled": enabled}, monitoring_summary=None
    )
    return ServiceProcess(
        config=config, log=folder / "serve.log", private_home=folder / "home", cwd=ROOT
    ).start()


def served_overhead(folder: Path, requests: int, patients: list[dict], seed: int = 0) -> dict:
    """Sequential ``/predict`` latency (ms) of two services of the same model, prediction
    log on and off, side by side (``_bench.paired_latency``); the p95 difference is
    checked against the target."""
    token = secrets.token_urlsafe(24)
    servers = {}
    try:
        for name, enabled in (("log_on", True), ("log_off", False)):
            servers[name] = start_service(folder / name, enabled, token)
        result = paired_latency(servers, token, patients, requests, seed=seed)
    finally:
        for server in servers.values():
            server.stop()
    return result | {
        "meets_target": result["p95_difference_ms"] <= TARGETS["logging_overhead_p95_ms"]
    }


def add_cost(requests: int) -> dict:
    """In-process cost of queueing one patient in the prediction log (µs)."""
    from disease_pipeline.records import PatientRecord
    from disease_pipeline.serving.auth import Principal
    from disease_pipeline.serving.predicting import PatientJob
    from disease_pipeline.serving.prediction_log import PredictionLogSettings, PredictionLogWriter

    with tempfile.TemporaryDirectory() as folder:
        settings = PredictionLogSettings.from_dict({"flush_rows": 200}, Path(folder) / "w.duckdb")
        writer = PredictionLogWriter(
            settings, secrets.token_bytes(32), {"name": "b", "version": "1"}
        )
        record = PatientRecord(age=40, symptoms=[{"code": "HP:0001945"}])
        job = PatientJob(record, 10, Principal("u", "clinician"), "/predict", "patient")
        answer = {
            "request_id": "r",
            "differential": [],
            "p_rare": 0.0,
            "severity": {"level": "low"},
        }
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            writer.add([job], {0: (record, [])}, [answer], 1.0)
            times.append((time.perf_counter() - started) * 1e6)
        writer.close()
    return {
        "p50_us": round(float(np.percentile(times, 50)), 2),
        "p95_us": round(float(np.percentile(times, 95)), 2),
        "n": requests,
    }


def overhead_only(args, argv: list[str] | None, measured_at: datetime) -> int:
    """``--overhead-only``: the served comparison alone, written into the output's
    ``overhead`` entry (the rest of an earlier report is kept)."""
    from benchmark_service import synthetic_patients

    report = json.loads(args.output.read_text()) if args.output.exists() else {}
    with tempfile.TemporaryDirectory() as folder:
        overhead = served_overhead(Path(folder), args.requests, synthetic_patients(200, seed=3))
    report["overhead"] = overhead | {
        "command": "python scripts/" + " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "measured_at": measured_at.isoformat(),
        "machine": machine(),
    }
    report.setdefault("targets", TARGETS)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps(overhead, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--replay", type=int, default=500)
    parser.add_argument("--feedback-share", type=float, default=0.2)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument(
        "--overhead-only",
        action="store_true",
        help="measure only the served overhead; update that part of an existing output",
    )
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument(
        "--save-log", type=Path, default=None, help="save the built week here and stop"
    )
    parser.add_argument("--log-warehouse", type=Path, default=None, help="a saved week")
    args = parser.parse_args(argv)
    window_end = datetime.now(UTC).replace(microsecond=0)
    if args.overhead_only:
        return overhead_only(args, argv, window_end)
    catalog = project_catalog()
    report: dict = {
        "command": "python scripts/" + " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "machine": machine(),
        "targets": TARGETS,
        "measured_at": window_end.isoformat(),
    }
    with tempfile.TemporaryDirectory() as folder:
        week = build_week(catalog, Path(folder), args, window_end)
        if args.save_log is not None and args.log_warehouse is None:
            import shutil

            shutil.copy(Path(folder) / "warehouse.duckdb", args.save_log)
            print(f"week saved to {args.save_log}: {len(week['log'])} rows")
            return 0
        report["log"] = {
            k: week.get(k) for k in ("replayed", "replay_seconds", "replay_refused", "from")
        } | {
            "rows": len(week["log"]),
            "feedback_rows": len(week["feedback"]),
        }
        monitor = run_monitor(catalog, week, window_end)
    summary = monitor.pop("summary")
    report["monitor"] = monitor | {
        "n_predictions": summary["n_predictions"],
        "max_psi": summary["drift"]["max_psi"],
        "top_psi": dict(list(summary["drift"]["top_psi"].items())[:10]),
        "alerts": summary["alerts"],
        "performance": {k: summary["performance"][k] for k in SUMMARY_FIGURES},
        "meets_target": monitor["seconds"] <= TARGETS["monitor_seconds_50k"]
        if args.rows >= 50_000
        else None,
    }
    report["add_cost"] = add_cost(20_000)
    if not args.skip_overhead:
        from benchmark_service import synthetic_patients

        patients = synthetic_patients(200, seed=3)
        with tempfile.TemporaryDirectory() as folder:
            report["overhead"] = served_overhead(Path(folder), args.requests, patients)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps({k: report[k] for k in report if k != "machine"}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
