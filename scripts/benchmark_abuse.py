"""The clinician service's memory and status codes under fuzzed and oversize requests,
on a real ``bentoml serve`` (loopback only, bounded in count).

Every kind of bad input a client, a fuzzer or an attacker can send, seeded and sent
``--rounds`` times each to ``/predict`` and ``/predict_batch`` (most in parallel, so
parsing overlaps), while a sampler reads the service's resident memory (all its
processes) every 0.1 s:

- ``random_bytes``: bytes that are not JSON (1 KB – 1 MB);
- ``deep_nesting``: ``[[[…]]]`` 100,000 levels deep inside a valid envelope;
- ``huge_string``: a string just under the body limit where a patient field is expected;
- ``wrong_types``: every top-level and patient field given the wrong JSON type;
- ``bad_batch``: the largest batch allowed (``max_batch_size`` patients), each with one
  bad field (every patient refused on its own);
- ``many_terms``: the largest batch allowed, each patient's symptoms followed by 200
  random HPO ids (almost all unknown to the ontology: ignored with a note), within the
  body limit;
- ``oversize_declared`` / ``oversize_streamed``: a body above ``max_body_bytes``
  announced by ``Content-Length`` or streamed in chunks without it;
- ``valid_batch``: the largest valid batch, for comparison (the model's own peak).

Figures go to ``data/08_reporting/benchmark_abuse.json``: per kind the status codes
seen (and the start of one answer per code), the service's resident memory at rest, at
its peak and at the end, and per kind the largest growth of the peak over the memory at
the kind's start; the target (issue 15) is no 5xx and a peak below 1.5 GB::

    python scripts/benchmark_abuse.py                  # after `make train`
    python scripts/benchmark_abuse.py --rounds 1 --max-batch 50   # quick look
    python scripts/benchmark_abuse.py --bentoml-home data/test/bentoml   # the test model
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml
from benchmark_service import synthetic_patients

from disease_pipeline.serving.process import ServiceProcess, write_config

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "data" / "08_reporting" / "benchmark_abuse.json"
TARGET_PEAK_MB = 1500.0
PARALLEL = 4


class MemorySampler(threading.Thread):
    """Reads ``server.rss_mb()`` every ``interval`` seconds until stopped; keeps the peak."""

    def __init__(self, server: ServiceProcess, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.server, self.interval = server, interval
        self.start_mb = self.peak_mb = server.rss_mb()["total_mb"]
        self.overall_mb = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak_mb = max(self.peak_mb, self.server.rss_mb()["total_mb"])
            self._done.wait(self.interval)

    def take(self) -> float:
        """The growth of the peak over the memory at the last call, and restart from
        the memory now."""
        peak, start = self.peak_mb, self.start_mb
        self.overall_mb = max(self.overall_mb, peak)
        self.start_mb = self.peak_mb = self.server.rss_mb()["total_mb"]
        return max(peak - start, 0.0)

    def stop(self) -> float:
        self._done.set()
        self.join()
        return max(self.overall_mb, self.peak_mb)


def _wrong_types(patient: dict) -> Iterator[dict]:
    """The patient with each field in turn replaced by values of other JSON types (not
    null: an optional field may be null)."""
    for field, current in patient.items():
        for value in (12345, -1e308, "x" * 1000, [1, [2, [3]]], {"a": {"b": None}}, True):
            if type(value) is not type(current):
                yield {**patient, field: value}


def _bad_field(patient: dict, index: int) -> dict:
    """One bad field per patient, cycling through a few kinds."""
    kinds = (
        {"age": -5},
        {"sex": "dragon"},
        {"symptoms": [{"code": "HP:BROKEN"}]},
        {"vitals": [{"loinc": "8867-4", "value": "fast", "unit": "/min"}]},
        {"labs": [{"loinc": "2345-7", "value": "NaN-ish", "unit": "mg/dL"}]},
    )
    return {**patient, **kinds[index % len(kinds)]}


def requests_of(patients: list[dict], max_batch: int, max_body: int, rng: random.Random):
    """``{kind: [(route, body)]}`` of one round; a body is bytes, or a function giving a
    byte iterator (sent in chunks, without ``Content-Length``)."""
    one = patients[0]
    envelope = json.dumps({"patient": one}).encode()
    deep = b'{"patient": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    huge = json.dumps({"patient": {**one, "sex": "x" * (max_body - 100_000)}}).encode()
    batch = [patients[i % len(patients)] for i in range(max_batch)]
    terms = [f"HP:{rng.randrange(10**7):07d}" for _ in range(200)]
    many = [{**p, "symptoms": p["symptoms"] + [{"code": t} for t in terms]} for p in batch]
    many_body = json.dumps({"patients": many}).encode()
    while len(many_body) > max_body:  # keep it under the limit: parsed, not refused
        many = many[: int(len(many) * 0.9)]
        many_body = json.dumps({"patients": many}).encode()
    oversize = b'{"patients": [' + b'{"age": 1},' * (max_body // 11 + 10) + b"{}]}"

    def streamed() -> Iterator[bytes]:
        for start in range(0, len(oversize), 1 << 20):
            yield oversize[start : start + (1 << 20)]

    return {
        "random_bytes": [
            ("/predict", rng.randbytes(rng.choice([1_000, 100_000, 1_000_000]))) for _ in range(4)
        ],
        "deep_nesting": [("/predict", deep)],
        "huge_string": [("/predict", huge)],
        "wrong_types": [
            ("/predict", json.dumps({"patient": p}).encode()) for p in _wrong_types(one)
        ]
        + [("/predict", json.dumps({"patient": one, "top_k": "all"}).encode())]
        + [("/predict", envelope[:-3])],
        "bad_batch": [
            (
                "/predict_batch",
                json.dumps({"patients": [_bad_field(p, i) for i, p in enumerate(batch)]}).encode(),
            )
        ],
        "many_terms": [("/predict_batch", many_body)],
        "oversize_declared": [("/predict_batch", oversize)],
        "oversize_streamed": [("/predict_batch", streamed)],
        "valid_batch": [("/predict_batch", json.dumps({"patients": batch}).encode())],
    }


def send(http: httpx.Client, route: str, body: bytes | Callable) -> tuple[int | str, str]:
    """The status code (or the transport error's name: a dropped connection) and the
    start of the answer's body."""
    content = body() if callable(body) else body
    try:
        response = http.post(route, content=content)
    except httpx.HTTPError as error:
        return type(error).__name__, ""
    return response.status_code, response.text[:300]


def main(argv: list[str] | None = None) -> int:
    """Start the service, send every kind ``--rounds`` times, write the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="times each kind is sent")
    parser.add_argument("--max-batch", type=int, default=None, help="default: the service's")
    parser.add_argument(
        "--max-body-bytes", type=int, default=None, help="serving.max_body_bytes override"
    )
    parser.add_argument("--bentoml-home", type=Path, default=None, help="$BENTOML_HOME")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    rng = random.Random(2026)
    patients = synthetic_patients(200, seed=7)
    with tempfile.TemporaryDirectory(prefix="abuse-") as tmp:
        folder = Path(tmp)
        token = secrets.token_urlsafe(24)
        # the per-token rate limit would answer most of a fast burst with 429 before the
        # body is read: lifted here so every request reaches the parser
        limits = {"max_body_bytes": args.max_body_bytes} if args.max_body_bytes else {}
        config = write_config(
            folder, {"clinician": token}, rate_per_second=10_000, rate_burst=10_000, **limits
        )
        settings = yaml.safe_load(config.read_text(encoding="utf-8"))
        max_batch = args.max_batch or int(settings["serving"]["max_batch_size"])
        max_body = int(settings["serving"]["max_body_bytes"])
        server = ServiceProcess(
            config=config,
            log=folder / "serve.log",
            bentoml_home=args.bentoml_home,
            private_home=folder / "bentoml",
            cwd=ROOT,
        ).start()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        kinds: dict[str, Counter] = {}
        examples: dict[str, dict[str, str]] = {}
        growth: dict[str, float] = {}
        try:
            with httpx.Client(base_url=server.url, timeout=300, headers=headers) as http:
                send(http, "/predict", json.dumps({"patient": patients[0]}).encode())
                at_rest = server.rss_mb()["total_mb"]
                sampler = MemorySampler(server)
                sampler.start()
                sampler.take()
                began = time.perf_counter()
                for round_ in range(args.rounds):
                    batch = requests_of(patients, max_batch, max_body, rng)
                    for kind, calls in batch.items():
                        with ThreadPoolExecutor(PARALLEL) as pool:
                            answers = list(pool.map(lambda c: send(http, *c), calls))
                        codes = [code for code, _ in answers]
                        kinds.setdefault(kind, Counter()).update(str(c) for c in codes)
                        growth[kind] = max(growth.get(kind, 0.0), sampler.take())
                        for code, text in answers:
                            if code != 200:
                                examples.setdefault(kind, {}).setdefault(str(code), text)
                        print(f"round {round_ + 1} {kind}: {dict(Counter(codes))}", flush=True)
                seconds = time.perf_counter() - began
                peak = sampler.stop()
                at_end = server.rss_mb()["total_mb"]
        finally:
            server.stop()
    server_errors = sum(
        n for counts in kinds.values() for code, n in counts.items() if code.startswith("5")
    )
    dropped = sum(
        n for counts in kinds.values() for code, n in counts.items() if not code.isdigit()
    )
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "settings": {
            "rounds": args.rounds,
            "max_batch": max_batch,
            "max_body_bytes": max_body,
            "parallel": PARALLEL,
        },
        "status_codes": {kind: dict(sorted(c.items())) for kind, c in kinds.items()},
        "error_examples": examples,
        "server_errors": server_errors,
        "dropped_connections": dropped,
        "memory_mb": {
            "at_rest": at_rest,
            "peak": round(peak, 1),
            "at_end": at_end,
            "largest_growth_by_kind": {k: round(v, 1) for k, v in growth.items()},
        },
        "seconds": round(seconds, 1),
        "targets": {
            "no_5xx": server_errors == 0,
            f"peak_below_{int(TARGET_PEAK_MB)}_mb": peak < TARGET_PEAK_MB,
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps({k: report[k] for k in ("server_errors", "memory_mb", "targets")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
