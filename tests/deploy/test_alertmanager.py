"""Prometheus → Alertmanager → the project's webhook receiver, all real processes:
an alert of ``deploy/prometheus/alerts.yml`` (the service is down: its scrape target
does not answer) arrives in the receiver's file."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time

import httpx
import pytest
import yaml

from disease_pipeline.serving.process import free_port
from tests.conftest import PROJECT_ROOT
from tests.deploy.test_prometheus_server import shortened_rules

pytestmark = pytest.mark.server

ALERTMANAGER = PROJECT_ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RECEIVER = PROJECT_ROOT / "scripts" / "alert_receiver.py"


def wait_ready(url: str, process: subprocess.Popen, log) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        assert process.poll() is None, log.read_text()[-2000:]
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(log.read_text()[-2000:])


def start(command: list[str], log) -> subprocess.Popen:
    with log.open("wb") as handle:
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)


def test_a_firing_alert_reaches_the_receiver_file(tmp_path):
    binaries = {n: shutil.which(n) for n in ("prometheus", "prometheus-alertmanager")}
    assert all(binaries.values()), f"run `make prometheus` (Debian packages): {binaries}"
    receiver_port, am_port, prom_port = free_port(), free_port(), free_port()
    alerts_file = tmp_path / "alerts.jsonl"
    config = yaml.safe_load(ALERTMANAGER.read_text())
    config["route"]["group_wait"] = "0s"
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"http://127.0.0.1:{receiver_port}/alerts"
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    dead_port = free_port()  # nothing listens: the service is "down"
    (tmp_path / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [shortened_rules(tmp_path / "rules.yml")],
                "alerting": {
                    "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
                },
                "scrape_configs": [
                    {
                        "job_name": "disease_pipeline",
                        "static_configs": [{"targets": [f"127.0.0.1:{dead_port}"]}],
                    }
                ],
            }
        )
    )
    processes = []
    try:
        receiver_log = tmp_path / "receiver.log"
        processes.append(
            start(
                [
                    sys.executable,
                    str(RECEIVER),
                    "--port",
                    str(receiver_port),
                    "--output",
                    str(alerts_file),
                ],
                receiver_log,
            )
        )
        am_log = tmp_path / "alertmanager.log"
        processes.append(
            start(
                [
                    binaries["prometheus-alertmanager"],
                    f"--config.file={tmp_path / 'alertmanager.yml'}",
                    f"--storage.path={tmp_path / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                ],
                am_log,
            )
        )
        wait_ready(f"http://127.0.0.1:{am_port}/-/ready", processes[-1], am_log)
        prom_log = tmp_path / "prometheus.log"
        processes.append(
            start(
                [
                    binaries["prometheus"],
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                prom_log,
            )
        )
        wait_ready(f"http://127.0.0.1:{prom_port}/-/ready", processes[-1], prom_log)
        deadline = time.time() + 90
        while time.time() < deadline and not alerts_file.exists():
            time.sleep(1)
        assert alerts_file.exists(), am_log.read_text()[-2000:]
        lines = [json.loads(line) for line in alerts_file.read_text().splitlines()]
        down = [a for a in lines if a["alertname"] == "DiseaseServiceDown"]
        assert down and down[0]["status"] == "firing"
        assert down[0]["labels"]["severity"] == "critical"
        assert "does not answer" in down[0]["annotations"]["summary"]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)


def test_the_receiver_refuses_what_is_not_a_notification(tmp_path):
    port = free_port()
    log = tmp_path / "receiver.log"
    process = start(
        [sys.executable, str(RECEIVER), "--port", str(port), "--output", str(tmp_path / "a.jsonl")],
        log,
    )
    try:
        url = f"http://127.0.0.1:{port}/alerts"
        deadline = time.time() + 20
        while True:
            try:
                answer = httpx.post(url, json={"no": "alerts"}, timeout=2)
                break
            except httpx.HTTPError:
                assert time.time() < deadline, log.read_text()
                time.sleep(0.2)
        assert answer.status_code == 400
        assert httpx.post(f"http://127.0.0.1:{port}/other", json={}, timeout=2).status_code == 404
        assert not (tmp_path / "a.jsonl").exists()
    finally:
        process.terminate()
        process.wait(10)
