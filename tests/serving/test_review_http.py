"""The review queue on the real service: predictions a clinician asked for are logged,
the active_learning pipeline's queue is built from that log, ``GET /review`` lists the
queued cases still without a confirmed diagnosis (what was reported and what the model
answered, no identifier), and confirming one through ``/feedback`` takes it off the
queue; on the page too (headless Chromium)."""

from __future__ import annotations

import json
import sys
import time

import duckdb
import pytest
import yaml

from disease_pipeline.datasets.warehouse import WarehouseTableDataset
from disease_pipeline.pipelines.active_learning.nodes import build_review_queue
from disease_pipeline.serving.feedback import with_warehouse
from tests.conftest import PROJECT_ROOT
from tests.serving.conftest import client, start_service

pytestmark = [pytest.mark.slow, pytest.mark.server]
PARAMS = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_active_learning.yml").read_text())[
    "active_learning"
]
RAW_ID = "MRN-77120-jane"


def logged(warehouse, expected: int, timeout_s: float = 30.0):
    """The service's prediction log once ``expected`` rows are flushed."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            with duckdb.connect(str(warehouse), read_only=True) as con:
                table = con.execute("SELECT * FROM prediction_log").df()
            if len(table) >= expected:
                return table
        except (duckdb.IOException, duckdb.CatalogException):
            pass
        time.sleep(0.5)
    raise AssertionError(f"fewer than {expected} rows logged in {timeout_s} s")


@pytest.fixture(scope="module")
def started_review_service(trained_store, tokens, tmp_path_factory):
    """A private service that answered six patients; its warehouse holds the review
    queue the active_learning pipeline builds from that log (started once per module: a
    start loads the model)."""
    sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
    from benchmark_service import synthetic_patients

    folder = tmp_path_factory.mktemp("review_service")
    server = start_service(folder, tokens, private=True)
    patients = synthetic_patients(6, seed=11)
    patients[0]["patient_id"] = RAW_ID
    with client(server, tokens["clinician"]) as http:
        answer = http.post("/predict_batch", json={"patients": patients}).json()
    requests = [p["request_id"] for p in answer["predictions"]]
    log = logged(folder / "warehouse.duckdb", len(patients))
    queue, _ = build_review_queue(log, None, PARAMS | {"size": 4})
    for attempt in range(40):  # the service may be flushing its log into the same file
        try:
            WarehouseTableDataset(
                table="review_queue", filepath=str(folder / "warehouse.duckdb")
            ).save(queue)
            break
        except Exception:
            if attempt == 39:
                raise
            time.sleep(0.25)
    yield server, folder, queue, requests
    server.stop()


@pytest.fixture
def review_service(started_review_service):
    """The module's service with no feedback yet before each test (a test confirms cases,
    which takes them off the queue, in any order), and the audit-trail entries of this
    test alone."""
    server, folder, queue, requests = started_review_service
    with_warehouse(
        folder / "warehouse.duckdb",
        lambda con: con.execute("DROP TABLE IF EXISTS feedback"),
        read_only=False,
        retries=40,
        wait_s=0.25,
    )
    trail = folder / "audit_log.jsonl"
    seen = len(trail.read_text().splitlines())
    entries = lambda: [json.loads(line) for line in trail.read_text().splitlines()[seen:]]  # noqa: E731
    yield server, folder, queue, requests, entries


def test_clinician_lists_the_queue_and_a_confirmed_case_leaves_it(review_service, tokens):
    server, _, queue, requests, audit_entries = review_service
    with client(server, tokens["clinician"]) as http:
        cases = http.get("/review").json()["cases"]
        assert [c["request_id"] for c in cases] == queue["request_id"].tolist()
        assert [c["rank"] for c in cases] == [1, 2, 3, 4]
        first = cases[0]
        assert first["request_id"] in requests
        assert first["present"] and all(code.startswith("HP:") for code in first["present"])
        assert (
            len(first["candidates"]) == 3 and first["candidates"][0]["code"] == first["top1_code"]
        )
        assert first["sex"] in ("female", "male", "other", "unknown")
        sent = http.post(
            "/feedback",
            json={"request_id": first["request_id"], "confirmed_code": first["top1_code"]},
        )
        assert sent.status_code == 200, sent.text
        left = http.get("/review").json()["cases"]
        assert [c["request_id"] for c in left] == [c["request_id"] for c in cases[1:]]
        assert http.get("/review?limit=0").status_code == 422
    dump = json.dumps(cases)
    assert RAW_ID not in dump and "patient_id" not in dump  # no identifier on the page
    assert sum(e["event"] == "review_view" for e in audit_entries()) >= 2  # this test's


def test_the_review_queue_needs_a_token(review_service):
    server, *_ = review_service
    with client(server, None) as http:
        assert http.get("/review").status_code == 401


@pytest.mark.browser
def test_a_clinician_confirms_a_case_on_the_page(review_service, tokens):
    from playwright.sync_api import expect

    from tests.serving.test_clinician_page import clinician_page

    server, folder, *_ = review_service
    with clinician_page(server.url, tokens["clinician"]) as page:
        page.click("#review-load")
        rows = page.locator("#review-table tbody tr")
        expect(rows.first).to_be_visible()
        before = rows.count()
        request = rows.first.get_attribute("data-request")
        rows.first.locator(".review-code").fill("J06.9")
        rows.first.locator("button").click()
        expect(page.locator("#review-status")).to_contain_text(f"confirmed J06.9 for {request}")
        expect(rows).to_have_count(before - 1)
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as con:
        stored = con.execute(
            "SELECT confirmed_code FROM feedback WHERE request_id = ?", [request]
        ).fetchall()
    assert stored == [("J06.9",)]
