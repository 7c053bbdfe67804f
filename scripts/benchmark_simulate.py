"""Benchmark ``kedro run --pipeline=simulate`` with the default parameters (50,000 encounters).

Runs the pipeline in-process through a ``KedroSession`` and writes wall time, CPU time
and peak resident memory (this process and its children, from ``getrusage``) to
``data/08_reporting/benchmark_simulate.json``.

Usage:
    KEDRO_DISABLE_TELEMETRY=true python scripts/benchmark_simulate.py [--env local]
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import psutil
from _bench import host_load, maxrss_mib, raw_files, write_report
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

PROJECT_ROOT = Path(__file__).resolve().parents[1]
OUTPUT = PROJECT_ROOT / "data" / "08_reporting" / "benchmark_simulate.json"


def _peak_mib() -> dict[str, float]:
    own, children = maxrss_mib(), maxrss_mib(resource.RUSAGE_CHILDREN)
    return {"self": own, "children": children, "max": max(own, children)}


def main() -> dict:
    """Run the simulate pipeline once and return (and write) the measurements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None, help="Kedro environment (default: local)")
    args = parser.parse_args()
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    bootstrap_project(PROJECT_ROOT)
    load_before = os.getloadavg()[0]
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    with KedroSession.create(project_path=PROJECT_ROOT, env=args.env) as session:
        params = session.load_context().params["simulate"]
        session.run(pipeline_names=["simulate"])
    wall = time.perf_counter() - wall_start
    data_root = PROJECT_ROOT / "data" / "01_raw"
    files = {str(p.relative_to(data_root)): p.stat().st_size for p in raw_files(data_root)}
    result = {
        "pipeline": "simulate",
        "env": args.env or "local",
        "n_encounters": params["n_encounters"],
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(time.process_time() - cpu_start, 1),
        "peak_rss_mib": _peak_mib(),
        "rss_at_end_mib": round(psutil.Process().memory_info().rss / 2**20, 1),
        **host_load(load_before),
        "file_bytes": files,
    }
    write_report(OUTPUT, result)
    return result


if __name__ == "__main__":
    main()
