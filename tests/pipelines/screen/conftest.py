"""A predictor trained for real on tiny synthetic warehouse tables (tests/predictor's
``build_predictor``: feature builder, common, gate and severity models, calibration),
the warehouse those tables make, and a local HTTP receiver for the webhook."""

from __future__ import annotations

import json
import pickle
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from disease_pipeline.knowledge.catalogue import load_lab_table
from disease_pipeline.pipelines.features.nodes import assemble_feature_tables
from tests.pipelines.common_model.synthetic import load_parameters
from tests.pipelines.features.synthetic import warehouse_tables
from tests.predictor.conftest import PRM, build_predictor

#: the time window of the screening tests (the synthetic encounters span 2021-2023)
WINDOW = {"start": "2021-01-01", "end": "2024-01-01", "days": None}


@pytest.fixture(scope="session")
def screen_prm() -> dict[str, pd.DataFrame]:
    """Warehouse tables (``prm_*`` frames) of 260 synthetic patients, vitals and labs in
    the canonical units and plausible ranges of the LOINC table (as ingestion writes
    them: it quarantines implausible values)."""
    prm = warehouse_tables(n_patients=260, seed=5, registry=0)
    table = load_lab_table().set_index("loinc")
    low = table["plausible"].map(lambda r: r["min"])
    high = table["plausible"].map(lambda r: r["max"])
    for name in ("vitals", "labs"):
        loinc = prm[name]["loinc"]
        value = prm[name]["value"].clip(loinc.map(low), loinc.map(high))
        prm[name] = prm[name].assign(unit=loinc.map(table["canonical_unit"]), value=value)
    return prm


@pytest.fixture(scope="session")
def screen_predictor(screen_prm):
    """The predictor trained on those tables (the knowledge block included, so the
    must-not-miss flags of the catalogue are live)."""
    tables = assemble_feature_tables(**{name: screen_prm[name] for name in PRM})
    return build_predictor(tables, load_parameters("common_model")["knowledge"])


@pytest.fixture(scope="session")
def predictor_file(screen_predictor, tmp_path_factory) -> Path:
    """The predictor pickled as the calibration pipeline saves it."""
    path = tmp_path_factory.mktemp("models") / "predictor.pkl"
    path.write_bytes(pickle.dumps(screen_predictor))
    return path


def screen_params(**alerts) -> dict:
    """The ``screen`` parameters of conf/base with the test window, no progress bar
    and explicit alert thresholds (no evaluation run here)."""
    params = load_parameters("screen", env="base")
    params["window"] = dict(WINDOW)
    params["progress"] = False
    params["batch_size"] = 64
    rules = params["alerts"]["rules"]
    rules["severity"]["threshold"] = 0.5
    rules["rare_candidate"]["threshold"] = 0.2
    params["alerts"].update(alerts)
    return params


class Receiver:
    """A real HTTP server on loopback that records the JSON bodies POSTed to it and
    answers each with the next status of ``statuses`` (then 200)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.bodies: list[dict] = []
        self.statuses = list(statuses or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status < 300:
                    receiver.bodies.append(body)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def alerts(self) -> list[dict]:
        return [a for body in self.bodies for a in body["alerts"]]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server
