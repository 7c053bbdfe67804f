"""Benchmark of ``kedro run --pipeline=train``: wall time and peak memory.

Runs the training pipeline in a child process (default environment unless ``--env``),
samples the resident memory of the whole process tree (ingestion uses worker
processes) and writes ``data/08_reporting/benchmark_train.json``. The raw data must
exist (``kedro run --pipeline=simulate`` or a hospital export); the run is timed alone.

    python scripts/benchmark_train.py            # target: 20 minutes
    python scripts/benchmark_train.py --env test --output /tmp/benchmark.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 20 * 60


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default="train", help="pipeline to time (default: train)")
    parser.add_argument(
        "--pipelines",
        default=None,
        help="comma-separated pipelines run as one (kedro run --pipelines), instead of --pipeline",
    )
    parser.add_argument("--env", default=None, help="Kedro environment (default: local/base)")
    parser.add_argument(
        "--output",
        type=Path,
        default=PROJECT_ROOT / "data" / "08_reporting" / "benchmark_train.json",
        help="where to write the JSON result",
    )
    parser.add_argument("--target-minutes", type=float, default=TARGET_SECONDS / 60)
    parser.add_argument("--interval", type=float, default=0.5, help="memory sampling period (s)")
    return parser.parse_args(argv)


class TreeMemorySampler(threading.Thread):
    """Samples the summed RSS of a process and its descendants; keeps the peak."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_bytes = 0
        self.peak_processes = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                tree = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for process in tree:
                try:
                    total += process.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
            if total > self.peak_bytes:
                self.peak_bytes, self.peak_processes = total, len(tree)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    kedro = Path(sys.executable).with_name("kedro")
    selection = f"--pipelines={args.pipelines}" if args.pipelines else f"--pipeline={args.pipeline}"
    command = [str(kedro), "run", selection]
    if args.env:
        command.append(f"--env={args.env}")
    env = os.environ | {"KEDRO_DISABLE_TELEMETRY": "true", "BENTOML_DO_NOT_TRACK": "true"}
    print(f"benchmark: {' '.join(command)}", flush=True)
    started_at = datetime.now(UTC)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env)
    sampler = TreeMemorySampler(child.pid, args.interval)
    sampler.start()
    returncode = child.wait()
    wall = time.perf_counter() - started
    sampler.stop()
    sampler.join()
    # ru_maxrss of waited-for children: the largest single process, in KiB on Linux
    largest_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    target = args.target_minutes * 60
    result = {
        "command": " ".join(command[1:]),
        "env": args.env or "local",
        "started_at": started_at.isoformat(timespec="seconds"),
        "returncode": returncode,
        "wall_seconds": round(wall, 1),
        "wall_minutes": round(wall / 60, 2),
        "target_seconds": target,
        "within_target": returncode == 0 and wall <= target,
        "peak_rss_mb": round(sampler.peak_bytes / 1e6, 1),
        "peak_rss_processes": sampler.peak_processes,
        "max_single_process_rss_mb": round(largest_kib * 1024 / 1e6, 1),
        "cpu_count": os.cpu_count(),
        # other work on the machine slows the run down: 1-minute load before and after
        "load_average_1m": {"start": round(load_before, 2), "end": round(os.getloadavg()[0], 2)},
        "python": platform.python_version(),
        "git_commit": git_commit(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    if returncode != 0:
        print(f"benchmark: the pipeline failed (exit code {returncode})", file=sys.stderr)
    return returncode


if __name__ == "__main__":
    sys.exit(main())
