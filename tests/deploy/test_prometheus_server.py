"""A real Prometheus (Debian's package) scraping a real ``bentoml serve``: the latency
alert fires when the service is slowed, the drift alert fires from the monitoring
summary's gauges, and every metric the rules and dashboard read is on ``/metrics``.

The rules are ``deploy/prometheus/alerts.yml`` with their durations shortened for a
test (``for: 5m`` → ``for: 5s``, rate windows ``[5m]`` → ``[30s]``); expressions and
thresholds are unchanged. The service is slowed for real: its processes are paused
(SIGSTOP) for 0.8 s of every second while clients send ``/predict`` requests, so the
requests caught inside the service take longer than 500 ms. Several clients send at
once, so each pause catches several requests: with one client, the one slow request of
each second stood against ~20 fast ones (about 10 ms each), at the p95 boundary.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import httpx
import psutil
import pytest
import yaml

from disease_pipeline.serving.process import ServiceProcess, free_port, write_config
from tests.conftest import PROJECT_ROOT
from tests.deploy.metric_names import BENTOML_METRICS
from tests.serving.conftest import BASE_CONFIG, BENTOML_HOME

pytestmark = [pytest.mark.slow, pytest.mark.server]

RULES = PROJECT_ROOT / "deploy" / "prometheus" / "alerts.yml"
#: concurrent clients sending /predict (each pause of the service catches one request each)
CLIENTS = 4


def shortened_rules(path) -> str:
    text = RULES.read_text(encoding="utf-8")
    text = re.sub(r"for: \d+m", "for: 5s", text)
    text = re.sub(r"\[(5m|15m)\]", "[30s]", text)
    path.write_text(text, encoding="utf-8")
    return str(path)


def start_prometheus(folder, target_port: int) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus not found: run `make prometheus` (Debian's package)"
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [shortened_rules(folder / "alerts.yml")],
        "scrape_configs": [
            {
                "job_name": "disease_pipeline",
                "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
            }
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    log = (folder / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                return process, url
        time.sleep(0.5)
    process.kill()
    raise RuntimeError((folder / "prometheus.log").read_text()[-2000:])


def firing(url: str) -> dict[str, list[dict]]:
    alerts = httpx.get(f"{url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    out: dict[str, list[dict]] = {}
    for alert in alerts:
        if alert["state"] == "firing":
            out.setdefault(alert["labels"]["alertname"], []).append(alert)
    return out


def wait_for(url: str, name: str, timeout_s: float) -> list[dict]:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        found = firing(url).get(name)
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"{name} did not fire in {timeout_s} s; firing: {list(firing(url))}")


def test_real_prometheus_fires_latency_and_drift_alerts(trained_store, tokens, tmp_path):
    summary = tmp_path / "summary.json"
    summary.write_text(
        json.dumps(
            {
                "window_end_epoch": time.time(),
                "drift": {"max_psi": 0.05, "top_psi": {"age_years": 0.05}},
            }
        ),
        encoding="utf-8",
    )
    config = write_config(tmp_path, tokens, base=BASE_CONFIG, monitoring_summary=str(summary))
    server = ServiceProcess(
        config=config,
        log=tmp_path / "serve.log",
        bentoml_home=BENTOML_HOME,
        private_home=tmp_path / "bentoml",
        cwd=PROJECT_ROOT,
    ).start()
    prometheus, url = start_prometheus(tmp_path, server.port)
    stop = threading.Event()
    headers = {"Authorization": f"Bearer {tokens['clinician']}"}
    record = {"age": 40, "sex": "female", "symptoms": [{"code": "HP:0001945"}]}

    def traffic() -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            while not stop.is_set():
                client.post("/predict", json={"patient": record})

    senders = [threading.Thread(target=traffic, daemon=True) for _ in range(CLIENTS)]
    try:
        for sender in senders:
            sender.start()
        time.sleep(8)  # healthy traffic first: no latency alert
        assert "DiseasePredictLatencyHigh" not in firing(url)
        assert "DiseaseFeatureDrift" not in firing(url)
        tree = [psutil.Process(server.process.pid)]
        tree += tree[0].children(recursive=True)
        deadline = time.time() + 90
        while time.time() < deadline and "DiseasePredictLatencyHigh" not in firing(url):
            for process in tree:
                os.kill(process.pid, signal.SIGSTOP)
            time.sleep(0.8)
            for process in tree:
                os.kill(process.pid, signal.SIGCONT)
            time.sleep(0.2)
        latency = wait_for(url, "DiseasePredictLatencyHigh", 5)
        assert float(latency[0]["value"]) > 0.5
        # the monitor reports drift: the service re-reads the summary, Prometheus alerts
        summary.write_text(
            json.dumps(
                {
                    "window_end_epoch": time.time(),
                    "drift": {
                        "max_psi": 0.31,
                        "top_psi": {"age_years": 0.31, "news2": 0.25},
                        "drifted_features": ["age_years"],  # news2: within the noise
                    },
                }
            ),
            encoding="utf-8",
        )
        drift = wait_for(url, "DiseaseFeatureDrift", 90)
        assert [alert["labels"]["feature"] for alert in drift] == ["age_years"]
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
        for name in BENTOML_METRICS:
            assert f"\n{name}" in metrics, name
    finally:
        stop.set()
        for process in psutil.Process(server.process.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                process.resume()
        server.stop()
        prometheus.terminate()
        prometheus.wait(30)
