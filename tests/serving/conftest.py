"""A real ``bentoml serve`` on loopback with the model trained in the test environment.

``trained_store`` runs ``train`` (and ``bento_packaging`` when ``train`` does not chain
it yet) once per session; the BentoML model store of the test environment is
``data/test/bentoml``. ``ServiceProcess`` starts the service on a free port with a
configuration written to a temporary folder, tokens generated here (only their
hashes go into the configuration).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from disease_pipeline.pipeline_registry import TRAIN_STAGES
from tests.conftest import PROJECT_ROOT, TEST_DATA_ROOT

BENTOML_HOME = TEST_DATA_ROOT / "bentoml"
BASE_CONFIG = PROJECT_ROOT / "conf" / "base" / "serving.yml"
READY_TIMEOUT_S = 180


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_config(folder: Path, tokens: dict[str, str]) -> Path:
    """A serving.yml under ``folder`` (audit, warehouse, key, tokens there too);
    ``tokens`` maps a plaintext token to its role (user = role name)."""
    document = yaml.safe_load(BASE_CONFIG.read_text())
    document["serving"].update(
        audit_log=str(folder / "audit_log.jsonl"),
        feedback_warehouse=str(folder / "warehouse.duckdb"),
        key_file=str(folder / "serving_key.txt"),
        tokens_file=str(folder / "tokens.yml"),
        tokens=[
            {"user": f"{role}_user", "role": role, "sha256": hashlib.sha256(t.encode()).hexdigest()}
            for t, role in tokens.items()
        ],
    )
    path = folder / "serving.yml"
    path.write_text(yaml.safe_dump(document))
    return path


@dataclass
class ServiceProcess:
    """One ``bentoml serve`` process group on loopback."""

    config: Path
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    cold_start_s: float | None = None
    readiness_seen: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        """Start and wait until ``/readyz`` answers 200 (the model is loaded)."""
        env = {
            **os.environ,
            "BENTOML_HOME": str(BENTOML_HOME),
            "BENTOML_DO_NOT_TRACK": "true",
            "DISEASE_PIPELINE_SERVING_CONFIG": str(self.config),
        }
        command = [
            sys.executable,
            "-m",
            "bentoml",
            "serve",
            "disease_pipeline.serving.service:DiseaseService",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        started = time.perf_counter()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = started + READY_TIMEOUT_S
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bentoml serve exited: {self.log.read_text()[-3000:]}")
            try:
                status = httpx.get(f"{self.url}/readyz", timeout=2).status_code
            except httpx.HTTPError:
                status = None
            if status is not None:
                self.readiness_seen.append(status)
            if status == 503 and httpx.get(f"{self.url}/healthz", timeout=2).status_code == 503:
                self.stop()
                raise RuntimeError(f"the model failed to load: {self.log.read_text()[-3000:]}")
            if status == 200:
                self.cold_start_s = time.perf_counter() - started
                return self
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(
            f"service not ready in {READY_TIMEOUT_S} s: {self.log.read_text()[-3000:]}"
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal the server and every process it started, and wait for them.

        BentoML's workers run in their own sessions, so SIGKILL to the server's process
        group alone would leave them serving: with SIGKILL each one is killed by pid.
        """
        if self.process is None or self.process.poll() is not None:
            return
        tree = [psutil.Process(self.process.pid)]
        tree += tree[0].children(recursive=True)
        os.killpg(self.process.pid, sig)
        if sig == signal.SIGKILL:
            for child in tree[1:]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
        _, alive = psutil.wait_procs(tree, timeout=30)
        for leftover in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()
        self.process.wait(30)


@pytest.fixture(scope="session")
def trained_store(pipeline_runner) -> Path:
    """The BentoML store of the test environment, holding the trained champion."""
    pipeline_runner("train")
    if "bento_packaging" not in TRAIN_STAGES:
        pipeline_runner("bento_packaging")
    return BENTOML_HOME


@pytest.fixture(scope="session")
def tokens() -> dict[str, str]:
    """Role → a plaintext token generated for this session (never written to disk)."""
    return {"clinician": secrets.token_urlsafe(24), "admin": secrets.token_urlsafe(24)}


@pytest.fixture(scope="session")
def service(trained_store, tokens, tmp_path_factory) -> ServiceProcess:
    """The service, shared by the HTTP and browser tests of the session."""
    folder = tmp_path_factory.mktemp("serving")
    config = write_config(folder, {token: role for role, token in tokens.items()})
    server = ServiceProcess(config=config, log=folder / "serve.log").start()
    yield server
    server.stop()


def client(service: ServiceProcess, token: str | None) -> httpx.Client:
    """An HTTP client of ``service`` sending ``token`` as bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=service.url, headers=headers, timeout=60)
