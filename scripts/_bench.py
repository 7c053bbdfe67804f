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


def counter_totals(text: str, names: tuple[str, ...]) -> dict[str, float]:
    """Totals of Prometheus counters (``name`` without ``_total``, summed over labels)
    in a ``/metrics`` page."""
    from prometheus_client.parser import text_string_to_metric_families

    totals = dict.fromkeys(names, 0.0)
    for family in text_string_to_metric_families(text):
        if family.name in totals:
            totals[family.name] += sum(
                s.value for s in family.samples if s.name == f"{family.name}_total"
            )
    return totals


def paired_times(
    servers: dict[str, Any],
    token: str,
    patients: list[dict],
    requests: int,
    *,
    warm_up: int = 20,
) -> dict[str, list[float]]:
    """Sequential ``/predict`` latencies (ms) of services of the same model running side
    by side (``servers``: name → started ``ServiceProcess``): each patient goes to every
    service, in alternating order, so all see the same machine load."""
    import httpx

    names = list(servers)
    headers = {"Authorization": f"Bearer {token}"}
    clients = {
        name: httpx.Client(base_url=server.url, headers=headers, timeout=30)
        for name, server in servers.items()
    }
    times: dict[str, list[float]] = {name: [] for name in names}
    try:
        for i in range(requests + warm_up):
            patient = {"patient": patients[i % len(patients)]}
            for name in names if i % 2 == 0 else names[::-1]:
                started = time.perf_counter()
                clients[name].post("/predict", json=patient).raise_for_status()
                if i >= warm_up:
                    times[name].append((time.perf_counter() - started) * 1000)
    finally:
        for client in clients.values():
            client.close()
    return times


def latency_difference(
    times: dict[str, list[float]], test: str, control: str, seed: int = 0
) -> dict[str, Any]:
    """p50/p95 of ``test`` and ``control`` and the differences (test − control) of p50
    and p95 with 95 % bootstrap intervals over the paired requests."""
    import numpy as np

    a, b = np.asarray(times[test]), np.asarray(times[control])
    picks = np.random.default_rng(seed).integers(0, len(a), size=(1000, len(a)))

    def difference(q: float) -> dict[str, Any]:
        draws = np.percentile(a[picks], q, axis=1) - np.percentile(b[picks], q, axis=1)
        return {
            f"p{q}_difference_ms": round(float(np.percentile(a, q) - np.percentile(b, q)), 2),
            f"p{q}_difference_ci95_ms": [
                round(float(v), 2) for v in np.percentile(draws, [2.5, 97.5])
            ],
        }

    def summary(values: np.ndarray) -> dict[str, Any]:
        return {
            "p50_ms": round(float(np.percentile(values, 50)), 2),
            "p95_ms": round(float(np.percentile(values, 95)), 2),
            "n": len(values),
        }

    return {test: summary(a), control: summary(b), **difference(95), **difference(50)}


def paired_latency(
    servers: dict[str, Any],
    token: str,
    patients: list[dict],
    requests: int,
    *,
    warm_up: int = 20,
    seed: int = 0,
) -> dict[str, Any]:
    """:func:`paired_times` of two services (the first under test, the second the
    control) and their :func:`latency_difference`."""
    test, control = list(servers)
    times = paired_times(servers, token, patients, requests, warm_up=warm_up)
    return {
        "design": "two services side by side, each request sent to both in alternating order",
        **latency_difference(times, test, control, seed),
    }
