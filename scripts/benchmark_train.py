"""Benchmark of ``kedro run --pipeline=train``: wall and CPU time of every node and stage.

Runs the pipelines in this process through a ``KedroSession`` (the project's hooks
included) with a timing hook, samples the resident memory of the process tree
(ingestion uses worker processes) and writes ``data/08_reporting/benchmark_train.json``:

- ``wall_seconds`` of the whole run and of each stage (``simulate`` when asked, then the
  train stages of ``pipeline_registry.TRAIN_STAGES``) against the 20-minute target;
- ``node_seconds``: wall seconds per node, slowest first;
- ``node_cpu_seconds``: CPU seconds per node (this process, all threads, plus finished
  worker processes). With ``--runner sequential`` nodes run one at a time, so on a
  machine shared with other work the CPU seconds show what a node costs while its wall
  seconds also show the wait; with ``make train``'s runner (``threads``, the default:
  two nodes at a time, ``disease_pipeline.runners.CoreThreadRunner``) a node's CPU
  seconds include its neighbour's, and only the run's totals compare;
- the 1-minute load average before and after and the machine's CPU count.

The raw data must exist (``kedro run --pipeline=simulate``, or ``--simulate`` here for
the ``make train`` from-nothing path: simulate, then train, timed separately).

    python scripts/benchmark_train.py                # target: 20 minutes
    python scripts/benchmark_train.py --simulate     # simulate (target 2 minutes) + train
    python scripts/benchmark_train.py --env test --output /tmp/benchmark.json
    python scripts/benchmark_train.py --runner sequential   # one node at a time
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _bench import TreeMemory, host_load, write_report
from kedro.framework.hooks import hook_impl
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.runner import AbstractRunner, SequentialRunner

from disease_pipeline.runners import CoreThreadRunner

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 20 * 60
SIMULATE_TARGET_SECONDS = 2 * 60
#: the runners ``--runner`` chooses from (``threads`` is what ``make train`` uses)
RUNNERS: dict[str, type[AbstractRunner]] = {
    "threads": CoreThreadRunner,
    "sequential": SequentialRunner,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default="train", help="pipeline to time (default: train)")
    parser.add_argument(
        "--pipelines",
        default=None,
        help="comma-separated pipelines run as one, instead of --pipeline",
    )
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="run and time the simulate pipeline first (the make train path from nothing)",
    )
    parser.add_argument("--env", default=None, help="Kedro environment (default: local/base)")
    parser.add_argument(
        "--output",
        type=Path,
        default=PROJECT_ROOT / "data" / "08_reporting" / "benchmark_train.json",
        help="where to write the JSON result",
    )
    parser.add_argument("--target-minutes", type=float, default=TARGET_SECONDS / 60)
    parser.add_argument(
        "--runner",
        choices=sorted(RUNNERS),
        default="threads",
        help="threads: make train's runner (one node per core); sequential: one at a time",
    )
    parser.add_argument(
        "--omp-wait-policy",
        choices=["PASSIVE", "ACTIVE"],
        default=None,
        help="OpenMP wait policy of the run (default: the package's PASSIVE); ACTIVE times "
        "the spinning threads the project used before",
    )
    return parser.parse_args(argv)


def _cpu_seconds() -> float:
    """CPU seconds of this process (every thread) and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class NodeClock:
    """Kedro hook: wall and CPU seconds of every node (nodes run one at a time)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._started: dict[str, tuple[float, float]] = {}

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        self._started[node.name] = (time.perf_counter(), _cpu_seconds())

    @hook_impl
    def after_node_run(self, node: Any) -> None:
        wall, cpu = self._started.pop(node.name)
        self.wall[node.name] = round(time.perf_counter() - wall, 2)
        self.cpu[node.name] = round(_cpu_seconds() - cpu, 2)


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip()


def node_stages() -> dict[str, str]:
    """Node name → the pipeline folder (train stage) it belongs to."""
    from disease_pipeline.pipeline_registry import discover_pipelines

    return {
        node.name: name
        for name, pipeline in discover_pipelines().items()
        for node in pipeline.nodes
    }


def run_timed(
    pipelines: list[str], env: str | None, clock: NodeClock, runner: str = "threads"
) -> tuple[float, float]:
    """Run ``pipelines`` in one session with the named runner; (wall, CPU) seconds."""
    with KedroSession.create(project_path=PROJECT_ROOT, env=env) as session:
        session._hook_manager.register(clock)  # no public API to add a hook to one session
        wall, cpu = time.perf_counter(), _cpu_seconds()
        session.run(pipeline_names=pipelines, runner=RUNNERS[runner]())
        return time.perf_counter() - wall, _cpu_seconds() - cpu


def _by_stage(seconds: dict[str, float], stages: dict[str, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in seconds.items():
        stage = stages.get(name, "other")
        out[stage] = round(out.get(stage, 0.0) + value, 1)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _slowest(seconds: dict[str, float]) -> dict[str, float]:
    return dict(sorted(seconds.items(), key=lambda kv: -kv[1]))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    if args.omp_wait_policy:  # before any OpenMP runtime loads (the project's import)
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy
    bootstrap_project(PROJECT_ROOT)
    pipelines = args.pipelines.split(",") if args.pipelines else [args.pipeline]
    stages = node_stages()
    target = args.target_minutes * 60
    started_at = datetime.now(UTC)
    load_before = os.getloadavg()[0]
    memory = TreeMemory()
    memory.start()
    result: dict[str, Any] = {
        "command": f"kedro run --pipelines={','.join(pipelines)}",
        "env": args.env or "local",
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "runner": args.runner,
        "started_at": started_at.isoformat(timespec="seconds"),
    }
    runs: dict[str, dict[str, float]] = {}
    clock = NodeClock()
    returncode = 0
    try:
        if args.simulate:
            simulate_clock = NodeClock()
            wall, cpu = run_timed(["simulate"], args.env, simulate_clock, "sequential")  # as make
            runs["simulate"] = {
                "wall_seconds": round(wall, 1),
                "cpu_seconds": round(cpu, 1),
                "target_seconds": SIMULATE_TARGET_SECONDS,
                "within_target": wall <= SIMULATE_TARGET_SECONDS,
                "node_seconds": _slowest(simulate_clock.wall),
            }
        wall, cpu = run_timed(pipelines, args.env, clock, args.runner)
        runs["train"] = {"wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1)}
    except Exception as error:  # the report still says which nodes finished
        returncode = 1
        result["error"] = f"{type(error).__name__}: {error}"
    peak_mib = memory.stop()
    total = sum(r["wall_seconds"] for r in runs.values())
    result |= {
        "returncode": returncode,
        "wall_seconds": round(total, 1),
        "wall_minutes": round(total / 60, 2),
        "target_seconds": target,
        "within_target": returncode == 0 and total <= target,
        "runs": runs,
        "stage_seconds": _by_stage(clock.wall, stages),
        "stage_cpu_seconds": _by_stage(clock.cpu, stages),
        "node_seconds": _slowest(clock.wall),
        "node_cpu_seconds": _slowest(clock.cpu),
        "peak_rss_mb": round(peak_mib * 2**20 / 1e6, 1),
        **host_load(load_before),
        "git_commit": git_commit(),
    }
    write_report(args.output, result)
    if returncode != 0:
        print(f"benchmark: the pipeline failed ({result['error']})", file=sys.stderr)
    return returncode


if __name__ == "__main__":
    sys.exit(main())
