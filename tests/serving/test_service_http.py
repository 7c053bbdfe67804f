"""Every endpoint of a real ``bentoml serve`` on loopback, with the trained test model."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import duckdb
import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from disease_pipeline.serving.audit import keyed_digest, verify_chain
from tests.serving.conftest import RARE_CASE, client, phenopacket_patient, start_service

pytestmark = [pytest.mark.slow, pytest.mark.server]

LEVELS = ["low", "moderate", "high", "critical"]
RAW_PATIENT_ID = "PSEUDO-7f3a-ana-ruiz"
NOTE = "Ana Ruiz called from 555-201-3344 about her fever"


def patient(**changes) -> dict:
    record = {
        "patient_id": RAW_PATIENT_ID,
        "age": 34,
        "sex": "female",
        "symptoms": [
            {"code": "HP:0001945", "severity": 2, "onset_days": 3},
            {"code": "HP:0012735"},
            {"code": "HP:0002094", "present": False},
        ],
        "vitals": [
            {"loinc": "8310-5", "value": 101.8, "unit": "[degF]"},
            {"loinc": "8867-4", "value": 112, "unit": "/min"},
        ],
        "labs": [{"loinc": "2345-7", "value": 6.1, "unit": "mmol/L"}],
        "comorbidities": ["e119"],
        "note": NOTE,
    }
    record.update(changes)
    return record


@pytest.fixture(scope="module")
def clinician(service, tokens):
    with client(service, tokens["clinician"]) as http:
        yield http


@pytest.fixture(scope="module")
def admin(service, tokens):
    with client(service, tokens["admin"]) as http:
        yield http


def audit_key_of(server) -> bytes:
    """The audit key of a test server (its configuration's ``audit_key_file``)."""
    key_file = yaml.safe_load(server.config.read_text())["serving"]["audit_key_file"]
    return Path(key_file).read_text(encoding="utf-8").strip().encode()


def metric_samples(text: str) -> dict[tuple, float]:
    """``(name, sorted label items) → value`` of a Prometheus exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_rare_candidates_come_with_matched_and_missing_phenotypes(clinician):
    """A published rare-disease case: its disease is listed as a RARE candidate whose
    explanation names the patient's phenotypes it matches and the ones it would expect;
    common entries carry no phenotype explanation."""
    record, disease = phenopacket_patient(RARE_CASE)
    present = {s["code"] for s in record["symptoms"] if s["present"]}
    excluded = {s["code"] for s in record["symptoms"] if not s["present"]}
    # top 100: more than every catalogue disease (all of them are ranked), so the rare
    # candidates are listed whatever P(rare) the small test model gives
    response = clinician.post("/predict", json={"patient": record, "top_k": 100})
    assert response.status_code == 200, response.text
    differential = response.json()["differential"]
    rare = [d for d in differential if d["category"] == "RARE"]
    assert rare and rare[0]["code"] == disease
    for entry in differential:
        if entry["category"] == "COMMON":
            assert entry["phenotypes"] is None
    for entry in rare:
        phenotypes = entry["phenotypes"]
        matched = {m["hpo_id"] for m in phenotypes["matched"]}
        assert matched <= present
        assert not {m["hpo_id"] for m in phenotypes["expected_absent"]} & present
        assert {a["hpo_id"] for a in phenotypes["against"]} <= present | excluded
        assert all(m["name"] and not m["name"].startswith("HP:") for m in phenotypes["matched"])
    assert rare[0]["phenotypes"]["n_matched"] >= 5


def test_probes_and_metrics_are_public_and_readiness_waited_for_the_model(service):
    with client(service, None) as anonymous:
        assert anonymous.get("/healthz").status_code == 200
        assert anonymous.get("/readyz").status_code == 200
        assert anonymous.get("/metrics").status_code == 200
        assert anonymous.get("/ui/").status_code == 200
    assert service.readiness_seen[-1] == 200
    assert 503 in service.readiness_seen  # not ready while the predictor was loading


def test_predict_returns_a_ranked_calibrated_differential(clinician, admin):
    response = clinician.post("/predict", json={"patient": patient(), "top_k": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    differential = body["differential"]
    assert 1 <= len(differential) <= 5
    assert [d["rank"] for d in differential] == list(range(1, len(differential) + 1))
    probabilities = [d["probability"] for d in differential]
    assert probabilities == sorted(probabilities, reverse=True)
    for item in differential:
        assert item["category"] in {"COMMON", "RARE"} and item["code"] and item["name"]
        low, high = item["interval"]
        assert 0 <= low <= item["probability"] <= high <= 1
    assert 0 <= body["p_rare"] <= 1
    severity = body["severity"]
    assert set(severity["probabilities"]) == set(LEVELS)
    assert sum(severity["probabilities"].values()) == pytest.approx(1, abs=1e-6)
    assert severity["level"] == max(severity["probabilities"], key=severity["probabilities"].get)
    assert body["explanation"], "an explanation in clinical words"
    assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
    datetime.fromisoformat(body["timestamp"])
    assert any("converted" in note for note in body["input_notes"])
    info = admin.get("/model_info").json()
    assert body["model"] == {"name": info["model"]["name"], "version": info["model"]["version"]}


def test_batch_gives_each_patient_the_single_prediction(clinician):
    patients = [patient(), patient(age=71, sex="male"), patient(symptoms=[{"code": "HP:0002013"}])]
    batch = clinician.post("/predict_batch", json={"patients": patients, "top_k": 3})
    assert batch.status_code == 200, batch.text
    predictions = batch.json()["predictions"]
    assert batch.json()["count"] == 3 and len({p["request_id"] for p in predictions}) == 3
    for record, predicted in zip(patients, predictions, strict=True):
        single = clinician.post("/predict", json={"patient": record, "top_k": 3}).json()
        assert [d["code"] for d in predicted["differential"]] == [
            d["code"] for d in single["differential"]
        ]
        assert [d["probability"] for d in predicted["differential"]] == pytest.approx(
            [d["probability"] for d in single["differential"]], abs=1e-6
        )


@pytest.mark.parametrize(
    ("path", "payload", "status", "field"),
    [
        ("/predict", {"patient": patient(age=130)}, 400, "patient.age"),
        ("/predict", {"patient": patient(colour="red")}, 400, "patient.colour"),
        ("/predict", {"patient": patient(), "top_k": 0}, 400, "top_k"),
        ("/predict", {"patient": patient(symptoms=[])}, 422, "patient.symptoms"),
        (
            "/predict",
            {"patient": patient(encounter_date="0001-01-01T00:00:00")},
            422,
            "patient.encounter_date",
        ),
        (
            "/predict",
            {"patient": patient(symptoms=[{"code": "HP:99999"}])},
            422,
            "patient.symptoms[0].code",
        ),
        (
            "/predict",
            {"patient": patient(labs=[{"loinc": "2345-7", "value": 5, "unit": "kg"}])},
            422,
            "patient.labs[0].unit",
        ),
        (
            "/predict",
            {"patient": patient(comorbidities=["diabetes"])},
            422,
            "patient.comorbidities[0]",
        ),
        (
            "/predict_batch",
            {"patients": [patient(symptoms=[{"code": "123", "system": "SNOMEDCT"}])]},
            422,
            "patients[0].symptoms[0].code",
        ),
        ("/predict_batch", {"patients": []}, 422, "patients"),
        (
            "/feedback",
            {"request_id": "0" * 32, "confirmed_code": "nonsense"},
            422,
            "confirmed_code",
        ),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_field(clinician, path, payload, status, field):
    response = clinician.post(path, json=payload)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    named = [d.get("field") or ".".join(str(part) for part in d["loc"]) for d in detail]
    assert any(name == field or name.endswith(field) for name in named), named


def test_a_batch_answers_each_patient_and_refuses_only_the_bad_ones(clinician):
    """A valid patient is predicted even when its neighbours are refused; each refused
    one is an error entry in place, naming its fields (shape: 400, content: 422)."""
    bad_content = patient(symptoms=[{"code": "123", "system": "SNOMEDCT"}])
    bad_shape = patient(age=130)
    patients = [patient(), bad_content, patient(age=71, sex="male"), bad_shape]
    response = clinician.post("/predict_batch", json={"patients": patients, "top_k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["count"], body["predicted"], body["refused"]) == (4, 2, 2)
    first, second, third, fourth = body["predictions"]
    assert first["differential"] and third["differential"]
    assert (second["status"], second["index"]) == (422, 1)
    assert [d["field"] for d in second["detail"]] == ["patients[1].symptoms[0].code"]
    assert (fourth["status"], fourth["index"]) == (400, 3)
    assert [d["field"] for d in fourth["detail"]] == ["patients[3].age"]
    alone = clinician.post("/predict", json={"patient": patients[2], "top_k": 3}).json()
    # same ranking; probabilities to 1e-12 (the predictor's sums may differ in the last
    # binary digit with the number of rows, as in the adaptive-batching burst test)
    assert [d["code"] for d in third["differential"]] == [d["code"] for d in alone["differential"]]
    assert [d["probability"] for d in third["differential"]] == pytest.approx(
        [d["probability"] for d in alone["differential"]], rel=0, abs=1e-12
    )


def test_a_refused_body_leaves_no_value_in_the_server_log(service, clinician):
    """BentoML logs each request it could not validate: the line names what failed
    (field and error type), never the value sent (a name, an id)."""
    sent = "Zebulon Quartermaine"
    refused = clinician.post("/predict", json={"patient": patient(colour=sent)})
    assert refused.status_code == 400
    deadline = time.time() + 10
    while "patient.colour: extra_forbidden" not in service.log.read_text(errors="replace"):
        assert time.time() < deadline, "the refusal was not logged"
        time.sleep(0.1)
    log = service.log.read_text(errors="replace")
    assert sent not in log and "input_value" not in log


def test_malformed_json_is_a_4xx(clinician):
    response = clinician.post(
        "/predict", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500


def test_tokens_and_roles(service, tokens, admin):
    with client(service, None) as anonymous:
        refused = anonymous.post("/predict", json={"patient": patient()})
        assert refused.status_code == 401 and "Bearer" in refused.json()["error"]
        assert refused.headers["www-authenticate"].startswith("Bearer")
    with client(service, "not-a-token") as stranger:
        assert stranger.post("/predict", json={"patient": patient()}).status_code == 401
    with client(service, tokens["clinician"]) as clinician:
        for path in ("/model_info", "/audit/export"):
            forbidden = clinician.get(path)
            assert forbidden.status_code == 403
            assert "clinician" in forbidden.json()["error"]
    info = admin.get("/model_info")
    assert info.status_code == 200
    body = info.json()
    assert body["model"]["version"] and body["training_date"] and body["data_version"]
    assert body["metrics"], "evaluation metrics of the registered run"
    assert body["supported_diseases"]["total"] >= body["supported_diseases"]["common"] > 0


def test_feedback_goes_to_the_warehouse(service, clinician):
    predicted = clinician.post("/predict", json={"patient": patient()}).json()
    top = predicted["differential"][0]["code"]
    stored = clinician.post(
        "/feedback",
        json={"request_id": predicted["request_id"], "confirmed_code": top, "notes": NOTE},
    )
    assert stored.status_code == 200, stored.text
    assert stored.json()["confirmed_rank"] == 1
    unknown = clinician.post("/feedback", json={"request_id": "f" * 32, "confirmed_code": top})
    assert unknown.status_code == 404 and "request_id" in unknown.json()["error"]
    warehouse = yaml.safe_load(service.config.read_text())["serving"]["feedback_warehouse"]
    with duckdb.connect(warehouse, read_only=True) as con:
        rows = con.execute(
            "SELECT confirmed_code, confirmed_rank, notes, model_version FROM feedback "
            "WHERE request_id = ?",
            [predicted["request_id"]],
        ).fetchall()
    assert len(rows) == 1
    code, rank, notes, version = rows[0]
    assert (code, rank, version) == (top, 1, predicted["model"]["version"])
    assert notes is None  # free text is not stored (serving.feedback_notes: drop)
    assert stored.json()["notes_stored"] is False


def test_audit_trail_is_chained_complete_and_free_of_identifiers(
    service, clinician, admin, tmp_path
):
    answers = [clinician.post("/predict", json={"patient": patient()}) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    mine = {a.json()["request_id"] for a in answers}
    export = admin.get("/audit/export")
    assert export.status_code == 200
    exported = tmp_path / "audit.jsonl"
    exported.write_bytes(export.content)
    key = audit_key_of(service)
    result = verify_chain(exported, expect_head=export.headers["x-audit-head"], key=key)
    assert result.ok, result.error
    assert result.entries == int(export.headers["x-audit-entries"])
    assert result.events["prediction"] >= 3
    text = exported.read_text()
    for identifier in (RAW_PATIENT_ID, "Ana Ruiz", "555-201-3344"):
        assert identifier not in text
    predictions = [json.loads(line) for line in text.splitlines() if '"prediction"' in line]
    # the trail is shared with the other tests of the session: look at this test's entries
    pseudonyms = {entry["patient"] for entry in predictions if entry["request_id"] in mine}
    key_file = yaml.safe_load(service.config.read_text())["serving"]["key_file"]
    service_key = Path(key_file).read_text(encoding="utf-8").strip().encode()
    assert pseudonyms == {keyed_digest(service_key, "patient", RAW_PATIENT_ID)}
    for entry in predictions:
        assert re.fullmatch(r"[0-9a-f]{64}", entry["input_hash"])
        assert {"request_id", "user", "role", "model_version", "latency_ms", "output"} <= set(entry)
    key_file = yaml.safe_load(service.config.read_text())["serving"]["audit_key_file"]
    command = [sys.executable, "scripts/verify_audit.py", str(exported), "--key-file", key_file]
    assert subprocess.run(command, capture_output=True, check=False).returncode == 0


def test_metrics_count_predictions_latency_and_errors(service, clinician):
    with client(service, None) as anonymous:
        before = metric_samples(anonymous.get("/metrics").text)
        clinician.post("/predict", json={"patient": patient()})
        clinician.post("/predict", json={"patient": patient(symptoms=[])})
        anonymous.post("/predict", json={"patient": patient()})
        after = metric_samples(anonymous.get("/metrics").text)

    def total(samples, name, **labels):
        return sum(
            value
            for (sample, items), value in samples.items()
            if sample == name and labels.items() <= dict(items).items()
        )

    assert (
        total(after, "disease_predictions_total") - total(before, "disease_predictions_total") == 1
    )
    assert total(after, "disease_request_errors_total", kind="validation") > total(
        before, "disease_request_errors_total", kind="validation"
    )
    assert total(after, "disease_request_errors_total", kind="auth") > total(
        before, "disease_request_errors_total", kind="auth"
    )
    assert total(after, "disease_request_latency_seconds_count", endpoint="/predict") > total(
        before, "disease_request_latency_seconds_count", endpoint="/predict"
    )


def test_hpo_search_for_the_page(service, clinician):
    found = clinician.get("/hpo/search", params={"q": "fever"})
    assert found.status_code == 200
    top = found.json()["results"][0]
    assert (top["id"], top["name"]) == ("HP:0001945", "Fever")
    with client(service, None) as anonymous:
        assert anonymous.get("/hpo/search", params={"q": "fever"}).status_code == 401


def test_a_second_server_with_its_own_home_leaves_the_first_ones_metrics(
    service, clinician, tokens, tmp_path
):
    """BentoML empties ``$BENTOML_HOME/prometheus_multiproc_dir`` when a server starts;
    a server with a private home must not reset the running service's counters."""

    def predictions() -> float:
        samples = metric_samples(httpx.get(f"{service.url}/metrics", timeout=30).text)
        return sum(v for (name, _), v in samples.items() if name == "disease_predictions_total")

    assert clinician.post("/predict", json={"patient": patient()}).status_code == 200
    before = predictions()
    assert before >= 1
    start_service(tmp_path, {"clinician": tokens["clinician"]}, private=True).stop()
    assert clinician.post("/predict", json={"patient": patient()}).status_code == 200
    assert predictions() == before + 1


def test_a_killed_server_keeps_every_acknowledged_entry(trained_store, tokens, tmp_path):
    clinician_only = {"clinician": tokens["clinician"]}
    audit = tmp_path / "audit_log.jsonl"
    first = start_service(tmp_path, clinician_only, private=True)
    try:
        with client(first, tokens["clinician"]) as http:
            acknowledged = [
                http.post("/predict", json={"patient": patient(age=20 + i)}).json()["request_id"]
                for i in range(5)
            ]
    finally:
        first.stop(signal.SIGKILL)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{first.url}/healthz", timeout=5)
    key = audit_key_of(first)
    result = verify_chain(audit, key=key)
    assert result.ok and result.events == {"prediction": 5}
    second = start_service(tmp_path, clinician_only, private=True)  # same trail and key
    try:
        with client(second, tokens["clinician"]) as http:
            assert http.post("/predict", json={"patient": patient()}).status_code == 200
            feedback = http.post(
                "/feedback", json={"request_id": acknowledged[0], "confirmed_code": "J18.9"}
            )
            assert feedback.status_code == 200, feedback.text
    finally:
        second.stop()
    result = verify_chain(audit, key=key)
    assert result.ok, result.error
    assert result.events == {"prediction": 6, "feedback": 1}
    logged = [json.loads(line)["request_id"] for line in audit.read_text().splitlines()[:5]]
    assert logged == acknowledged
