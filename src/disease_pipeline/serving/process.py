"""The clinician service as a child process on loopback, for the service tests and
``scripts/benchmark_service.py``.

:func:`write_config` writes a throw-away ``serving.yml`` (audit trail, feedback
warehouse, key and token file in one folder; only the hashes of the given tokens);
:class:`ServiceProcess` runs ``bentoml serve`` with it on a free port, waits until
``/readyz`` answers 200 and stops the whole process tree.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import yaml

from disease_pipeline.serving.config import CONFIG_ENV_VAR, load_document

SERVICE = "disease_pipeline.serving.service:DiseaseService"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_config(
    folder: Path, tokens: dict[str, str], base: Path | None = None, **overrides
) -> Path:
    """``folder/serving.yml``: ``base`` (default: the project's configuration, layered
    and resolved) with its files moved under ``folder`` and one token per role
    (``tokens`` maps a role to its plaintext token; user ``<role>_user``; only the
    SHA-256 of each token is written); ``overrides``: other ``serving`` keys."""
    document = (
        yaml.safe_load(Path(base).read_text(encoding="utf-8"))
        if base is not None
        else load_document()[0]
    )
    document["serving"].update(
        audit_log=str(folder / "audit_log.jsonl"),
        feedback_warehouse=str(folder / "warehouse.duckdb"),
        key_file=str(folder / "serving_key.txt"),
        audit_key_file=str(folder / "audit_key.txt"),
        first_token_file=str(folder / "first_token.txt"),
        tokens_file=str(folder / "tokens.yml"),
        tokens=[
            {"user": f"{role}_user", "role": role, "sha256": hashlib.sha256(t.encode()).hexdigest()}
            for role, t in tokens.items()
        ],
        **overrides,
    )
    path = folder / "serving.yml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@dataclass
class ServiceProcess:
    """One ``bentoml serve`` process group on loopback.

    ``bentoml_home``: the BentoML home whose model store is served (default: the
    environment's); ``private_home``: a folder to use as this server's own BentoML
    home, its ``models`` linked to that store: BentoML empties
    ``$BENTOML_HOME/prometheus_multiproc_dir`` at every start, so a second server on
    a shared home would reset the first one's metrics; ``cwd``: the working directory
    (relative paths of the configuration resolve there).
    """

    config: Path
    log: Path
    bentoml_home: Path | None = None
    private_home: Path | None = None
    cwd: Path | None = None
    ready_timeout_s: float = 180.0
    poll_s: float = 0.1
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    #: seconds from process start until ``/readyz`` answered 200
    cold_start_s: float | None = None
    #: every ``/readyz`` status seen while waiting (503 while the model loads)
    readiness_seen: list[int] = field(default_factory=list)

    #: ``https`` when the configuration has ``ssl``; ``verify``: the CA file to trust
    scheme: str = "http"
    verify: str | bool = True

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        """Start and wait until ``/readyz`` answers 200 (the model is loaded).

        Raises:
            RuntimeError: the server exited, the model failed to load (``/healthz``
                503), or it was not ready in time; the message ends with its log.
        """
        env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true", CONFIG_ENV_VAR: str(self.config)}
        if self.bentoml_home is not None:
            env["BENTOML_HOME"] = str(self.bentoml_home)
        if self.private_home is not None:
            shared = Path(env.get("BENTOML_HOME") or Path.home() / "bentoml")
            self.private_home.mkdir(parents=True, exist_ok=True)
            models = self.private_home / "models"
            if not models.exists():
                models.symlink_to((shared / "models").resolve(), target_is_directory=True)
            env["BENTOML_HOME"] = str(self.private_home)
        command = [sys.executable, "-m", "bentoml", "serve", SERVICE]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        started = time.perf_counter()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        while time.perf_counter() < started + self.ready_timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError(f"bentoml serve exited: {self._log_tail()}")
            try:
                status = self._get("/readyz").status_code
            except httpx.HTTPError:
                status = None
            if status is not None:
                self.readiness_seen.append(status)
            if status == 503 and self._get("/healthz").status_code == 503:
                self.stop()
                raise RuntimeError(f"the model failed to load: {self._log_tail()}")
            if status == 200:
                self.cold_start_s = time.perf_counter() - started
                return self
            time.sleep(self.poll_s)
        self.stop()
        raise RuntimeError(f"service not ready in {self.ready_timeout_s} s: {self._log_tail()}")

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

    def rss_mb(self) -> dict[str, float]:
        """Resident memory of the server and its children (MB)."""
        root = psutil.Process(self.process.pid)
        rss = {}
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                rss[process.pid] = process.memory_info().rss / 2**20
        return {
            "total_mb": round(sum(rss.values()), 1),
            "largest_process_mb": round(max(rss.values()), 1),
            "processes": len(rss),
        }

    def _get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=2, verify=self.verify)

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]
