"""Shared pieces of the ``scripts/benchmark_*.py`` scripts.

The scripts run as ``python scripts/<name>.py``, so ``scripts/`` is on ``sys.path`` and
they import this module as ``from _bench import ...``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from kedro.framework.hooks import hook_impl

RAW_SUFFIXES = {".ndjson", ".jsonl", ".csv"}


class NodeTimer:
    """Kedro hook recording the wall time of every node."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._started: dict[str, float] = {}

    @hook_impl
    def before_node_run(self, node) -> None:
        self._started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node) -> None:
        self.seconds[node.name] = round(time.perf_counter() - self._started[node.name], 2)


class PeakMemory(threading.Thread):
    """Samples this process's resident memory until stopped."""

    def __init__(self, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.interval, self.peak = interval, 0
        self._process, self._halt = psutil.Process(), threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._halt.wait(self.interval)

    def stop(self) -> int:
        """Stop sampling; the peak in bytes."""
        self._halt.set()
        self.join()
        return self.peak


class TreeMemory(threading.Thread):
    """Samples the summed RSS of this process and all its descendants."""

    def __init__(self, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = 0
        self._halt = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self._halt.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            self._halt.wait(self.interval)

    def stop(self) -> float:
        """Stop sampling; the peak in MiB."""
        self._halt.set()
        self.join()
        return round(self.peak / 2**20, 1)


def maxrss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory from ``getrusage`` in MiB (Linux reports KiB)."""
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def raw_files(raw: Path) -> list[Path]:
    """The raw export files (``<raw>/<source>/<file>``), sorted."""
    return [p for p in sorted(raw.glob("*/*")) if p.suffix in RAW_SUFFIXES]


def host_load(load_before: float) -> dict[str, Any]:
    """CPU count, 1-minute load before and now, and the Python version."""
    return {
        "cpu_count": psutil.cpu_count(),
        # other work on the machine slows the run down: 1-minute load before and after
        "load_average_1m": {"start": round(load_before, 2), "end": round(os.getloadavg()[0], 2)},
        "python": platform.python_version(),
    }


def machine() -> dict[str, Any]:
    """CPU count, Python version and platform."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_report(path: Path, result: dict[str, Any], *, newline: bool = True) -> None:
    """Write ``result`` as indented JSON to ``path`` and print it."""
    text = json.dumps(result, indent=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n" if newline else text, encoding="utf-8")
    print(text)
