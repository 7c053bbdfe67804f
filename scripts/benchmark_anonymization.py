"""Benchmark ``kedro run --pipeline=anonymization`` on the default 50,000-encounter export.

Runs the pipeline in-process through a ``KedroSession`` (project hooks included, so
the HMAC key is resolved as in a normal run) and writes wall time, CPU time, peak
resident memory (absolute and above the level before the run, sampled every 0.1 s)
and the time of every node to ``<data_root>/08_reporting/benchmark_anonymization.json``.
The ``int_*`` tables must exist: run ``kedro run --pipeline=simulate`` and
``--pipeline=ingestion`` first. The warehouse of the environment is (re)written.

Usage:
    KEDRO_DISABLE_TELEMETRY=true python scripts/benchmark_anonymization.py [--env local]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import psutil
from _bench import NodeTimer, PeakMemory, machine, write_report
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from disease_pipeline.pipelines.ingestion.ledger import INT_TABLES

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Run the pipeline once, measure it, write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="local", help="Kedro environment (default local)")
    args = parser.parse_args()
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    bootstrap_project(PROJECT_ROOT)

    with KedroSession.create(project_path=PROJECT_ROOT, env=args.env) as session:
        context = session.load_context()
        data_root = PROJECT_ROOT / context.config_loader["globals"]["data_root"]
        catalog = context.catalog
        missing = [t for t in INT_TABLES if not catalog.exists(f"int_{t}")]
        if missing:
            raise SystemExit(
                f"missing input tables {missing}: run `kedro run --pipeline=simulate` and "
                f"`kedro run --pipeline=ingestion` (env {args.env}) first"
            )
        rows_in = {t: len(catalog.load(f"int_{t}")) for t in INT_TABLES}

    timer = NodeTimer()
    with KedroSession.create(project_path=PROJECT_ROOT, env=args.env) as session:
        session._hook_manager.register(timer)  # no public API to add a hook to one session
        process = psutil.Process()
        baseline, cpu_before = process.memory_info().rss, process.cpu_times()
        sampler = PeakMemory()
        sampler.start()
        started = time.perf_counter()
        session.run(pipeline_names=["anonymization"])
        wall = time.perf_counter() - started
        peak = sampler.stop()
        cpu_after = process.cpu_times()

    report = {
        "pipeline": "anonymization",
        "env": args.env,
        "input_rows": rows_in,
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(
            (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system), 1
        ),
        "peak_rss_mib": round(peak / 2**20, 1),
        "peak_rss_above_start_mib": round((peak - baseline) / 2**20, 1),
        "node_seconds": dict(sorted(timer.seconds.items(), key=lambda kv: -kv[1])),
        "machine": machine(),
    }
    write_report(data_root / "08_reporting" / "benchmark_anonymization.json", report, newline=False)


if __name__ == "__main__":
    main()
