"""Shadow and A/B modes of a real ``bentoml serve`` (docs/retraining.md §6).

The challenger is the test environment's registered champion imported into the BentoML
store under its own name by the real ``bento_packaging`` pipeline: the same model, so the
shadow outputs must equal the answers exactly, which checks that the challenger scores
the very record the champion answered. The monitor's comparison and the review queue
then read the service's own warehouse tables.
"""

from __future__ import annotations

import json
import os
import time

import duckdb
import pandas as pd
import psutil
import pytest

from disease_pipeline.pipelines.active_learning.nodes import build_review_queue
from disease_pipeline.pipelines.monitor.challenger import challenger_comparison
from disease_pipeline.serving.challenger import CHALLENGER, CHAMPION, ab_arm
from tests.conftest import env_parameters, run_pipeline
from tests.serving.conftest import client, start_service

pytestmark = [pytest.mark.slow, pytest.mark.server]

CHALLENGER_TAG = "disease_pipeline_challenger"
SYMPTOMS = [[{"code": "HP:0001945"}, {"code": "HP:0012735"}], [{"code": "HP:0002315"}]]


@pytest.fixture(scope="module")
def challenger_store(trained_store):
    """The champion imported again as the challenger model of the test store."""
    run_pipeline("bento_packaging", bento_packaging={"bento_model_name": CHALLENGER_TAG})
    return trained_store


def patient(i: int, pid: str | None = None) -> dict:
    record = {"age": 20 + i, "sex": "female" if i % 2 else "male", "symptoms": SYMPTOMS[i % 2]}
    return record | ({"patient_id": pid} if pid else {})


def tables(folder, *names: str) -> list[pd.DataFrame]:
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as con:
        return [con.execute(f"SELECT * FROM {name}").df() for name in names]


def shadow_policies(root: int) -> set[int]:
    """Scheduling policies of the service's shadow processes (multiprocessing children)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        children = psutil.Process(root).children(recursive=True)
        spawned = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        if spawned:
            return {os.sched_getscheduler(c.pid) for c in spawned}
        time.sleep(0.5)
    return set()


def test_shadow_scores_every_answer_after_it_and_the_monitor_pairs_them(
    challenger_store, tokens, tmp_path
):
    settings = {"mode": "shadow", "model_tag": f"{CHALLENGER_TAG}:latest"}
    server = start_service(tmp_path, tokens, private=True, challenger=settings)
    try:
        with client(server, tokens["clinician"]) as http:
            ids = [
                http.post("/predict", json={"patient": patient(i, f"MRN-{i}")}).json()["request_id"]
                for i in range(8)
            ]
            batch = [patient(i) for i in range(4)] + [{"age": -3, "symptoms": SYMPTOMS[0]}]
            answers = http.post("/predict_batch", json={"patients": batch}).json()
            assert answers["predicted"] == 4 and answers["refused"] == 1
            ids += [a["request_id"] for a in answers["predictions"][:4]]
            for request_id in ids[:6]:
                http.post(
                    "/feedback", json={"request_id": request_id, "confirmed_code": "J06.9"}
                ).raise_for_status()
        with client(server, tokens["admin"]) as http:
            assert http.get("/model_info").json()["challenger"]["mode"] == "shadow"
        assert shadow_policies(server.process.pid) == {os.SCHED_IDLE}
    finally:
        server.stop()  # the queued shadow work is scored and logged before the exit
    log, shadow, feedback = tables(tmp_path, "prediction_log", "prediction_log_shadow", "feedback")
    answered = log[log["status"] == "predicted"]
    assert set(answered["variant"]) == {CHAMPION}
    assert sorted(shadow["request_id"]) == sorted(ids)  # every answer, the refusal not
    assert set(shadow["variant"]) == {CHALLENGER}
    pairs = answered.merge(shadow, on="request_id", suffixes=("", "_shadow"))
    # the shadow rows keep the answer's pseudonym, never the raw id
    assert pairs["patient"].equals(pairs["patient_shadow"])
    assert not shadow.astype(str).apply(lambda c: c.str.contains("MRN-")).any().any()
    assert (pairs["top_codes"] == pairs["top_codes_shadow"]).all()  # same model, same record
    assert (pairs["top_probabilities"] == pairs["top_probabilities_shadow"]).all()
    assert (pairs["p_rare"] == pairs["p_rare_shadow"]).all()

    params = env_parameters()
    figures = challenger_comparison(log, shadow, feedback, params["monitor"])
    assert figures["mode"] == "shadow"
    assert figures["n_pairs"] == 12 and figures["n_labelled"] == 6
    assert figures["top1_agreement"] == 1.0
    assert figures["top1_difference"] == figures["top3_difference"] == 0.0
    queue, summary = build_review_queue(log, feedback, params["active_learning"], shadow)
    assert summary["with_challenger_output"] == summary["candidates"] == 6
    assert (queue["disagreement"] == 0.0).all()


def test_ab_answers_a_sticky_keyed_share_with_the_challenger(challenger_store, tokens, tmp_path):
    settings = {"mode": "ab", "model_tag": f"{CHALLENGER_TAG}:latest", "ab_share": 0.5}
    server = start_service(tmp_path, tokens, private=True, challenger=settings)
    pids = [f"MRN-{i:04d}" for i in range(12)]
    try:
        with client(server, tokens["clinician"]) as http:
            for round_ in range(2):
                batch = [patient(i, pid) for i, pid in enumerate(pids)]
                assert http.post("/predict_batch", json={"patients": batch}).json()["refused"] == 0
                http.post("/predict", json={"patient": patient(round_)}).raise_for_status()
            metrics = http.get("/metrics").text
    finally:
        server.stop()
    key = (tmp_path / "serving_key.txt").read_text(encoding="utf-8").strip().encode()
    expected = {pid: ab_arm(key, pid, 0.5) for pid in pids}
    assert {CHAMPION, CHALLENGER} <= set(expected.values())  # both arms are exercised
    (log,) = tables(tmp_path, "prediction_log")
    records = log["record"].map(json.loads)
    served = {}
    for pid in pids:
        mine = log[(log["endpoint"] == "/predict_batch") & (log["patient"] == keyed(key, pid))]
        assert len(mine) == 2
        served[pid] = set(mine["variant"])
    assert served == {pid: {arm} for pid, arm in expected.items()}  # sticky, by the key
    no_id = log[records.map(lambda r: "patient_id" not in r) & (log["endpoint"] == "/predict")]
    assert set(no_id["variant"]) == {CHAMPION}  # no id: the champion answers
    challenger_answers = 2 * sum(arm == CHALLENGER for arm in expected.values())
    assert f'disease_answers_total{{variant="challenger"}} {challenger_answers}.0' in metrics
    audit = [json.loads(line) for line in (tmp_path / "audit_log.jsonl").open()]
    variants = [e.get("variant") for e in audit if e.get("event") == "prediction"]
    assert variants.count(CHALLENGER) == challenger_answers
    figures = challenger_comparison(log, None, None, env_parameters()["monitor"])
    assert figures["mode"] == "ab"
    assert figures["n_challenger"] == challenger_answers


def keyed(key: bytes, pid: str) -> str:
    from disease_pipeline.serving.audit import keyed_digest

    return keyed_digest(key, "patient", pid)
