"""A real ``bentoml serve`` on loopback with the model trained in the test environment.

``trained_store`` runs ``train`` (and ``bento_packaging`` when ``train`` does not chain
it yet) once per session; the BentoML model store of the test environment is
``data/test/bentoml``. :func:`start_service` starts the service on a free port with a
configuration written to a temporary folder and tokens generated here (only their
hashes go into the configuration); see ``disease_pipeline.serving.process``.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import pytest

from disease_pipeline.pipeline_registry import TRAIN_STAGES
from disease_pipeline.serving.process import ServiceProcess, write_config
from tests.conftest import PROJECT_ROOT, TEST_DATA_ROOT

BENTOML_HOME = TEST_DATA_ROOT / "bentoml"
BASE_CONFIG = PROJECT_ROOT / "conf" / "base" / "serving.yml"
PHENOPACKETS = PROJECT_ROOT / "tests" / "data" / "phenopackets"
#: a published Ullrich-type COL6A2 myopathy case (10 present, 10 excluded features)
RARE_CASE = "COL6A2/PMID_20106987_UC15.json"


def start_service(
    folder: Path,
    tokens: dict[str, str],
    private: bool = False,
    port: int | None = None,
    **overrides,
) -> ServiceProcess:
    """The test model's service, configured under ``folder`` with ``tokens`` (role →
    plaintext token), started and ready. ``private``: with a BentoML home of its own
    (under ``folder``), so starting it leaves the shared test service's metrics alone;
    ``port``: a chosen port (e.g. one named in the configuration); ``overrides``: other
    ``serving`` settings."""
    config = write_config(folder, tokens, base=BASE_CONFIG, **overrides)
    return ServiceProcess(
        config=config,
        log=folder / "serve.log",
        bentoml_home=BENTOML_HOME,
        private_home=folder / "bentoml" if private else None,
        cwd=PROJECT_ROOT,
        **({"port": port} if port else {}),
    ).start()


def phenopacket_patient(relative: str) -> tuple[dict, str]:
    """A patient record made of a published case of ``tests/data/phenopackets``
    (its present and excluded HPO features) and the case's disease id."""
    packet = json.loads((PHENOPACKETS / relative).read_text(encoding="utf-8"))
    symptoms = [
        {"code": f["type"]["id"], "present": not f.get("excluded", False)}
        for f in packet["phenotypicFeatures"]
    ]
    record = {"age": 10, "sex": "female", "symptoms": symptoms}
    return record, packet["diseases"][0]["term"]["id"]


@pytest.fixture(scope="session")
def trained_store(pipeline_runner) -> Path:
    """The BentoML store of the test environment, holding the trained champion (the test
    exports are simulated first: a module that needs the store may run before any other)."""
    pipeline_runner("simulate")
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
    server = start_service(tmp_path_factory.mktemp("serving"), tokens)
    yield server
    server.stop()


def client(service: ServiceProcess, token: str | None) -> httpx.Client:
    """An HTTP client of ``service`` sending ``token`` as bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=service.url, headers=headers, timeout=60)
