"""Benchmark ``kedro run --pipeline=ingestion`` on the default 50,000-encounter export.

Runs each requested pipeline in-process through its own ``KedroSession`` (project
hooks included) and writes, per pipeline and in total: wall time, CPU time of this
process and of its worker processes, peak resident memory (this process, and the
sampled sum over the whole process tree) and the time of every node,
to ``<data_root>/08_reporting/benchmark_ingestion.json``. The raw files must exist:
run ``kedro run --pipeline=simulate`` first.

Usage:
    KEDRO_DISABLE_TELEMETRY=true python scripts/benchmark_ingestion.py \
        [--env local] [--pipelines ingestion anonymization]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

from _bench import NodeTimer, TreeMemory, host_load, maxrss_mib, raw_files, write_report
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 300  # ingestion + anonymisation of the default export


def run_pipeline(name: str, env: str | None) -> dict[str, Any]:
    """Run one pipeline in a fresh session; its wall/CPU time, memory and node times."""
    timer = NodeTimer()
    memory = TreeMemory()
    cpu_self = time.process_time()
    cpu_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    children_before = cpu_children.ru_utime + cpu_children.ru_stime
    memory.start()
    wall = time.perf_counter()
    with KedroSession.create(project_path=PROJECT_ROOT, env=env) as session:
        session._hook_manager.register(timer)  # no public API to add a hook to one session
        session.run(pipeline_names=[name])
    wall = time.perf_counter() - wall
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall_seconds": round(wall, 1),
        "cpu_seconds_main": round(time.process_time() - cpu_self, 1),
        "cpu_seconds_workers": round(children.ru_utime + children.ru_stime - children_before, 1),
        "peak_rss_mib_tree": memory.stop(),
        "node_seconds": timer.seconds,
    }


def _count_lines(path: Path) -> int:
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `kedro run --pipeline=simulate` first")
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def main() -> dict[str, Any]:
    """Run the pipelines, print and write the measurements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None, help="Kedro environment (default: local)")
    parser.add_argument("--pipelines", nargs="+", default=["ingestion"])
    args = parser.parse_args()
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    bootstrap_project(PROJECT_ROOT)
    with KedroSession.create(project_path=PROJECT_ROOT, env=args.env) as session:
        context = session.load_context()
        data_root = PROJECT_ROOT / context.config_loader["globals"]["data_root"]
        workers = context.params["ingestion"]["fhir"]["n_workers"]
    raw = data_root / "01_raw"
    load_before = os.getloadavg()[0]
    results = {name: run_pipeline(name, args.env) for name in args.pipelines}
    total = round(sum(r["wall_seconds"] for r in results.values()), 1)
    report = json.loads((data_root / "08_reporting" / "ingestion_quality.json").read_text())
    result = {
        "pipelines": results,
        "total_wall_seconds": total,
        "target_seconds": TARGET_SECONDS,
        "within_target": total <= TARGET_SECONDS,
        "n_encounters": _count_lines(raw / "fhir" / "bundles.ndjson"),
        "raw_file_mib": {
            str(p.relative_to(raw)): round(p.stat().st_size / 2**20, 1) for p in raw_files(raw)
        },
        "records": report["conservation"]["total"],
        "scoring": {k: v for k, v in report["scoring"].items() if not k.endswith("examples")},
        "peak_rss_mib_main_process": maxrss_mib(),
        "fhir_workers": workers,
        **host_load(load_before),
        "env": args.env or "local",
    }
    write_report(data_root / "08_reporting" / "benchmark_ingestion.json", result)
    return result


if __name__ == "__main__":
    main()
