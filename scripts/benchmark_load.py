"""The clinician service under open-loop load, beside ``mlflow models serve`` of the
same registered champion, on this machine (loopback only).

For each server in turn (never both at once, so they do not share the cores) and each
arrival rate (default 10, 50, 100 and 200 requests/s), an open-loop client sends
single-patient predictions at seeded Poisson arrival times for ``--duration`` seconds:
a late answer does not delay the next request, and each latency is measured from the
request's scheduled time (no coordinated omission). Before the load, ``--sequential``
requests one at a time give the one-client latency. Bounded: ``rate × duration``
requests per rate, a 10 s timeout each, at most ``--max-in-flight`` open requests.

Figures go to ``data/08_reporting/benchmark_load.json``: per server and rate, p50, p95
and p99 latency, errors and the achieved rate, and the ratio of the two servers' p95::

    python scripts/benchmark_load.py                      # after `make train`
    python scripts/benchmark_load.py --duration 60 --rates 100
    BENTOML_HOME=/tmp/store MLFLOW_TRACKING_URI=sqlite:////tmp/mlflow.db \\
        python scripts/benchmark_load.py           # another store, read-only
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import httpx
import numpy as np
from benchmark_service import synthetic_patients

from disease_pipeline.serving.process import ServiceProcess, free_port, write_config

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "data" / "08_reporting" / "benchmark_load.json"
#: Targets of issue 15 (same run, same machine).
TARGETS = {
    "p99_ms_at_100_rps": 100.0,
    "p95_ms_at_200_rps": 250.0,
    "sequential_p95_ms": 20.0,
    "p95_ratio_vs_mlflow_where_mlflow_p95_over_100_ms": 1 / 3,
}


def summary(latencies_ms: list[float], errors: int, sent: int, seconds: float) -> dict:
    """Percentiles of the answered requests, errors and the achieved rate (answers/s)."""
    values = np.asarray(latencies_ms)
    return {
        "sent": sent,
        "ok": len(latencies_ms),
        "errors": errors,
        "achieved_rps": round(len(latencies_ms) / seconds, 1),
        **{
            f"p{q}_ms": round(float(np.percentile(values, q)), 1) if len(values) else None
            for q in (50, 95, 99)
        },
    }


async def open_loop(
    url: str, bodies: list[bytes], headers: dict, rate: float, duration_s: float, **options
) -> dict:
    """Send ``rate × duration`` requests at seeded Poisson times; latency from the
    scheduled time to the full answer."""
    rng = random.Random(options.get("seed", 0))
    schedule, moment = [], 0.0
    while moment < duration_s:
        schedule.append(moment)
        moment += rng.expovariate(rate)
    limit = options.get("max_in_flight", 400)
    latencies, errors = [], 0
    gate = asyncio.Semaphore(limit)
    # aiohttp, not httpx: at 200 requests/s httpx's connection pool took a whole core of
    # the client's process (the load generator saturated before the service did)
    connector = aiohttp.TCPConnector(limit=limit)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as http:
        began = time.perf_counter()

        async def one(index: int, at: float) -> None:
            nonlocal errors
            delay = began + at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            async with gate:
                try:
                    async with http.post(url, data=bodies[index % len(bodies)]) as response:
                        await response.read()
                        ok = response.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
            if ok:
                latencies.append((time.perf_counter() - began - at) * 1000)
            else:
                errors += 1

        await asyncio.gather(*(one(i, at) for i, at in enumerate(schedule)))
        seconds = time.perf_counter() - began
    return summary(latencies, errors, len(schedule), seconds)


def sequential(url: str, bodies: list[bytes], headers: dict, count: int) -> dict:
    """One client, one request at a time."""
    latencies, errors = [], 0
    with httpx.Client(timeout=30, headers=headers) as http:
        for index in range(count):
            started = time.perf_counter()
            response = http.post(url, content=bodies[index % len(bodies)])
            if response.status_code == 200:
                latencies.append((time.perf_counter() - started) * 1000)
            else:
                errors += 1
    return summary(latencies, errors, count, max(sum(latencies) / 1000, 1e-9))


def measure(url: str, bodies: list[bytes], headers: dict, args) -> dict:
    """Warm-up, the sequential figures, then each rate."""
    sequential(url, bodies, headers, 20)
    result = {"sequential": sequential(url, bodies, headers, args.sequential), "rates": {}}
    for rate in args.rates:
        figures = asyncio.run(
            open_loop(url, bodies, headers, rate, args.duration, seed=rate, **vars(args))
        )
        result["rates"][str(rate)] = figures
        print(f"  {rate:>4} req/s: {figures}", flush=True)
        drain(url, bodies[0], headers)
    return result


def drain(url: str, body: bytes, headers: dict, limit_s: float = 180.0) -> None:
    """Wait until a probe is answered within a second: an overloaded server is still
    working through the requests its clients gave up on, which would load the next
    rate's measurement."""
    deadline = time.perf_counter() + limit_s
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=10)
            if response.status_code == 200 and time.perf_counter() - started < 1.0:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)


def run_service(patients: list[dict], folder: Path, args) -> dict:
    """This service (``bentoml serve``) with a throw-away configuration."""
    token = secrets.token_urlsafe(24)
    config = write_config(folder, {"clinician": token}, workers=args.workers)
    # a BentoML home of its own (models linked): a service already running on this host
    # keeps its metrics (BentoML empties the metrics folder at every start)
    server = ServiceProcess(
        config=config, log=folder / "serve.log", private_home=folder / "bentoml", cwd=ROOT
    ).start()
    bodies = [json.dumps({"patient": p, "top_k": 10}).encode() for p in patients]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        print(f"service ready in {server.cold_start_s:.1f} s", flush=True)
        return measure(f"{server.url}/predict", bodies, headers, args)
    finally:
        server.stop()


def run_mlflow(patients: list[dict], folder: Path, args) -> dict:
    """``mlflow models serve`` of the same registered model (local environment)."""
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", args.model_uri]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    log = (folder / "mlflow.log").open("ab")
    # mlflow runs `uvicorn` by name: the environment's scripts first on the PATH
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "PATH": path},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.perf_counter() + 300
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                raise RuntimeError((folder / "mlflow.log").read_text()[-2000:])
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        bodies = [json.dumps({"dataframe_records": [p]}).encode() for p in patients]
        headers = {"Content-Type": "application/json"}
        probe = httpx.post(f"{url}/invocations", content=bodies[0], headers=headers, timeout=60)
        if probe.status_code != 200:
            raise RuntimeError(f"mlflow /invocations: {probe.status_code} {probe.text[:500]}")
        return measure(f"{url}/invocations", bodies, headers, args)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        process.wait(30)


def comparison(ours: dict, theirs: dict | None) -> dict:
    """p95 ratio (ours / MLflow's) per rate and the issue's targets, checked."""
    rates = ours["rates"]
    checks = {
        "sequential_p95_ms": ours["sequential"]["p95_ms"] <= TARGETS["sequential_p95_ms"],
    }
    if "100" in rates:
        p99 = rates["100"]["p99_ms"]
        checks["p99_ms_at_100_rps"] = (
            p99 is not None and p99 <= TARGETS["p99_ms_at_100_rps"] and not rates["100"]["errors"]
        )
    if "200" in rates:
        p95 = rates["200"]["p95_ms"]
        checks["p95_ms_at_200_rps"] = p95 is not None and p95 <= TARGETS["p95_ms_at_200_rps"]
    ratios = {}
    if theirs is not None:
        for rate, figures in rates.items():
            other = theirs["rates"].get(rate)
            if other is None:
                continue
            if figures["p95_ms"] is None or not other["p95_ms"]:
                continue  # no answer at all: no ratio
            ratio = figures["p95_ms"] / other["p95_ms"]
            ratios[rate] = round(ratio, 3)
            limit = TARGETS["p95_ratio_vs_mlflow_where_mlflow_p95_over_100_ms"]
            checks[f"vs_mlflow_at_{rate}_rps"] = ratio <= (limit if other["p95_ms"] > 100 else 1.0)
    return {"p95_ratio_ours_over_mlflow": ratios, "targets_met": checks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[10, 50, 100, 200])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per rate")
    parser.add_argument("--sequential", type=int, default=200, help="one-at-a-time requests")
    parser.add_argument("--patients", type=int, default=500, help="distinct patients sent")
    parser.add_argument("--max-in-flight", type=int, default=400)
    parser.add_argument("--model-uri", default="models:/disease_pipeline@champion")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument(
        "--workers", type=int, default=1, help="the service's worker processes (serving.workers)"
    )
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    args.rates = [int(r) if float(r).is_integer() else r for r in args.rates]
    patients = synthetic_patients(args.patients, seed=15)
    with tempfile.TemporaryDirectory(prefix="benchmark-load-") as temporary:
        folder = Path(temporary)
        print("this service", flush=True)
        ours = run_service(patients, folder, args)
        theirs = None
        if not args.skip_mlflow:
            print("mlflow models serve", flush=True)
            theirs = run_mlflow(patients, folder, args)
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "settings": {
            "rates": args.rates,
            "duration_s": args.duration,
            "workers": args.workers,
            "arrivals": "open loop, Poisson, seeded",
            "bentoml_home": os.environ.get("BENTOML_HOME", "~/bentoml"),
            "model_uri": args.model_uri,
            "mlflow_tracking_uri": os.environ.get("MLFLOW_TRACKING_URI"),
        },
        "service": ours,
        "mlflow_models_serve": theirs,
        **comparison(ours, theirs),
        "targets": TARGETS,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps({k: report[k] for k in ("p95_ratio_ours_over_mlflow", "targets_met")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
