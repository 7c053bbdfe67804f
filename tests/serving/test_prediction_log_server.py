"""The prediction log of a real ``bentoml serve``: every acknowledged prediction is in
the warehouse table after a clean stop (SIGTERM), and the monitoring summary reaches
``/metrics`` as gauges."""

from __future__ import annotations

import json
import signal

import duckdb
import httpx
import pytest

from disease_pipeline.serving.audit import keyed_digest
from disease_pipeline.serving.process import ServiceProcess, write_config
from tests.conftest import PROJECT_ROOT
from tests.serving.conftest import BASE_CONFIG, BENTOML_HOME

pytestmark = [pytest.mark.slow, pytest.mark.server]

RAW_ID = "MRN-884422-john"


def patient(i: int) -> dict:
    return {
        "patient_id": RAW_ID,
        "age": 20 + i,
        "sex": "male" if i % 2 else "female",
        "symptoms": [{"code": "HP:0001945"}, {"code": "HP:0012735"}],
        "note": "John called from 555-201-3344",
    }


def test_sigterm_keeps_every_acknowledged_prediction(trained_store, tokens, tmp_path):
    summary = tmp_path / "summary.json"
    summary.write_text(
        json.dumps(
            {
                "drift": {
                    "max_psi": 0.31,
                    "top_psi": {"age_years": 0.31},
                    "drifted_features": ["age_years"],
                }
            }
        ),
        encoding="utf-8",
    )
    config = write_config(
        tmp_path,
        tokens,
        base=BASE_CONFIG,
        # a flush interval longer than the test: every row is still buffered at SIGTERM
        prediction_log={"flush_interval_s": 600.0, "flush_rows": 100000},
        monitoring_summary=str(summary),
    )
    server = ServiceProcess(
        config=config,
        log=tmp_path / "serve.log",
        bentoml_home=BENTOML_HOME,
        private_home=tmp_path / "bentoml",
        cwd=PROJECT_ROOT,
    ).start()
    acknowledged, refused = set(), 0
    try:
        headers = {"Authorization": f"Bearer {tokens['clinician']}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            for i in range(25):
                answer = client.post("/predict", json={"patient": patient(i)})
                if answer.status_code == 200:
                    acknowledged.add(answer.json()["request_id"])
            # an implausible oxygen saturation: refused by the knowledge checks, logged
            implausible = {"loinc": "59408-5", "value": 140, "unit": "%"}
            batch = [patient(30), {**patient(31), "vitals": [implausible]}, patient(32)]
            answer = client.post("/predict_batch", json={"patients": batch})
            assert answer.status_code == 200
            for entry in answer.json()["predictions"]:
                if "request_id" in entry:
                    acknowledged.add(entry["request_id"])
                else:
                    refused += 1
            metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    finally:
        server.stop(signal.SIGTERM)
    assert len(acknowledged) == 27 and refused == 1
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        table = con.execute("SELECT * FROM prediction_log").df()
    logged = set(table.loc[table["status"] == "predicted", "request_id"])
    assert logged == acknowledged  # nothing acknowledged was lost, nothing invented
    assert (table["status"] == "refused").sum() == refused
    key = (tmp_path / "serving_key.txt").read_text(encoding="utf-8").strip().encode()
    assert set(table["patient"]) == {keyed_digest(key, "patient", RAW_ID)}
    dump = table.to_csv()
    assert RAW_ID not in dump and "555-201-3344" not in dump
    assert table["latency_ms"].gt(0).all() and table["model_version"].notna().all()
    assert "disease_monitor_max_psi 0.31" in metrics
    assert 'disease_monitor_feature_psi{feature="age_years"} 0.31' in metrics
    assert 'disease_monitor_feature_drifted{feature="age_years"} 1.0' in metrics
