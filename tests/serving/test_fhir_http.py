"""FHIR R4 and CDS Hooks on a real ``bentoml serve`` with the trained test model:
``/fhir/predict``, discovery, the ``patient-view`` service, its feedback and the
EHR's JWT. Cards and discovery are checked against JSON schemas written from the
CDS Hooks 2.0 specification (tests/data/cds_hooks), FHIR answers against the R4B models.
"""

from __future__ import annotations

import copy
import json
import time
import uuid

import duckdb
import httpx
import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.riskassessment import RiskAssessment
from jsonschema import Draft202012Validator, FormatChecker

from disease_pipeline.serving.process import free_port
from tests.conftest import PROJECT_ROOT
from tests.fhir.test_mapping import chest_pain_bundle
from tests.serving.conftest import RARE_CASE, client, phenopacket_patient, start_service
from tests.serving.ehr import SigningEhr, cds_settings

pytestmark = [pytest.mark.slow, pytest.mark.server]

CDS_DATA = PROJECT_ROOT / "tests" / "data" / "cds_hooks"
SERVICE_ID = "disease-pipeline-differential"
HPO = "http://purl.obolibrary.org/obo/hp.owl"


def schema(name: str) -> Draft202012Validator:
    document = json.loads((CDS_DATA / f"{name}.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(document, format_checker=FormatChecker())


def read_cds_feedback(warehouse, card_uuid: str, timeout_s: float = 20.0) -> list[tuple]:
    """The stored feedback rows of one card. The running service's prediction log takes
    the warehouse's write lock for a moment every flush, so a reader retries briefly."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with duckdb.connect(str(warehouse), read_only=True) as con:
                return con.execute(
                    "SELECT outcome, override_reason, user_id, role FROM cds_feedback "
                    "WHERE request_id = ?",
                    [card_uuid.replace("-", "")],
                ).fetchall()
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def violations(name: str, body) -> list[str]:
    return [f"{list(e.path)}: {e.message}" for e in schema(name).iter_errors(body)]


@pytest.fixture(scope="module")
def ehr() -> SigningEhr:
    return SigningEhr()


@pytest.fixture(scope="module")
def fhir_service(trained_store, tokens, ehr, tmp_path_factory):
    """A service trusting the test EHR (its JWK Set), audience = its own URL."""
    folder = tmp_path_factory.mktemp("fhir_serving")
    port = free_port()
    audience = f"http://127.0.0.1:{port}/cds-services"
    settings = cds_settings(ehr, ehr.write_jwks(folder), audience)
    server = start_service(folder, tokens, private=True, port=port, cds_hooks=settings)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def clinician(fhir_service, tokens):
    with client(fhir_service, tokens["clinician"]) as http:
        yield http


def hook_url(server) -> str:
    return f"{server.url}/cds-services/{SERVICE_ID}"


def call_hook(server, ehr: SigningEhr, body: dict, token: str | None = None) -> httpx.Response:
    token = token or ehr.token(f"{server.url}/cds-services")
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.post(hook_url(server), json=body, headers=headers, timeout=60)


def hook_request(bundle: dict, encounter: str | None = None) -> dict:
    """A patient-view call whose prefetch holds the resources of ``bundle``."""
    resources = [e["resource"] for e in bundle["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")

    def searchset(kind: str) -> dict:
        found = [r for r in resources if r["resourceType"] == kind]
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in found],
        }

    context = {"userId": "Practitioner/dr-1", "patientId": patient["id"]}
    if encounter:
        context["encounterId"] = encounter
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": {
            "patient": patient,
            "conditions": searchset("Condition"),
            "observations": searchset("Observation"),
        },
    }


def rare_bundle() -> tuple[dict, str]:
    """The published COL6A2 case as a FHIR bundle: each phenotypic feature an HPO
    Observation (excluded ones ``valueBoolean: false``)."""
    record, disease = phenopacket_patient(RARE_CASE)
    entries = [
        {
            "resource": {
                "resourceType": "Patient",
                "id": "rare-1",
                "gender": "female",
                "birthDate": "2014-01-01",
            }
        },
        {
            "resource": {
                "resourceType": "Encounter",
                "id": "rare-enc",
                "status": "finished",
                "class": {"code": "AMB"},
                "period": {"start": "2024-03-01T10:00:00Z"},
            }
        },
    ]
    for i, symptom in enumerate(record["symptoms"]):
        entries.append(
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": f"hpo-{i}",
                    "status": "final",
                    "code": {"coding": [{"system": HPO, "code": symptom["code"]}]},
                    "valueBoolean": symptom["present"],
                }
            }
        )
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}, disease


def as_predict_record(bundle: dict) -> dict:
    """The chest-pain patient as the page sends it to /predict (the mapped values)."""
    return {
        "patient_id": "p1",
        "encounter_id": "e1",
        "age": 57,
        "sex": "male",
        "encounter_date": "2024-03-01T09:00:00+00:00",
        "symptoms": [
            {"code": "HP:0100749", "severity": 3, "onset_days": 0.1},
            {"code": "415690000", "system": "SNOMEDCT"},
            {"code": "HP:0001945", "present": False},
        ],
        "vitals": [
            {"loinc": "8867-4", "value": 112, "unit": "/min"},
            {"loinc": "8310-5", "value": 98.6, "unit": "[degF]"},
        ],
        "comorbidities": ["E11.9"],
        "note": "Crushing chest pain since this morning.",
    }


def differential(answer: dict) -> list[tuple[str, float]]:
    return [(e["code"], round(e["probability"], 9)) for e in answer["differential"]]


# ---- FHIR in, RiskAssessment out ----------------------------------------------------


def test_the_same_patient_gets_the_same_differential_through_fhir_cds_and_predict(
    fhir_service, clinician, ehr
):
    bundle = chest_pain_bundle()
    fhir = clinician.post("/fhir/predict", json=bundle)
    assert fhir.status_code == 200, fhir.text
    answer = fhir.json()
    RiskAssessment.model_validate(answer["riskAssessment"])
    plain = clinician.post("/predict", json={"patient": as_predict_record(bundle)})
    assert plain.status_code == 200, plain.text
    assert differential(answer["prediction"]) == differential(plain.json())
    risk = answer["riskAssessment"]
    top = answer["prediction"]["differential"][0]
    assert risk["prediction"][0]["outcome"]["coding"][0] == {
        "system": "http://hl7.org/fhir/sid/icd-10",
        "code": top["code"],
        "display": top["name"],
    }
    assert risk["prediction"][0]["probabilityDecimal"] == pytest.approx(
        top["probability"], abs=1e-6
    )
    assert len(risk["prediction"]) == len(answer["prediction"]["differential"])
    assert risk["method"]["coding"][0]["version"] == answer["prediction"]["model"]["version"]
    assert risk["subject"] == {"reference": "Patient/p1"}
    assert (
        risk["prediction"][0]["qualitativeRisk"]["coding"][0]["system"] == "http://snomed.info/sct"
    )
    assert {"reference": "Observation/o-chest"} in risk["basis"]
    cards = call_hook(fhir_service, ehr, hook_request(bundle, encounter="e1"))
    assert cards.status_code == 200, cards.text
    card = cards.json()["cards"][0]
    assert violations("response", cards.json()) == []
    assert card["summary"].startswith(f"Most likely: {top['name']}")
    request_id = card["uuid"].replace("-", "")
    audit = fhir_service.config.parent / "audit_log.jsonl"
    entry = next(json.loads(line) for line in audit.read_text().splitlines() if request_id in line)
    # the prefetch holds no Encounter, so the hook dates the visit at the call (age and
    # season differ from the bundle's 2024 visit): /fhir/predict of the same resources
    undated = copy.deepcopy(bundle)
    undated["entry"] = [e for e in undated["entry"] if e["resource"]["resourceType"] != "Encounter"]
    same_call = clinician.post("/fhir/predict", json=undated)
    assert same_call.status_code == 200, same_call.text
    assert [code for code, _ in entry["output"]["top"]] == [
        c for c, _ in differential(same_call.json()["prediction"])[:3]
    ]


def test_a_rare_disease_case_is_a_rare_prediction_coded_in_its_system(fhir_service, clinician, ehr):
    bundle, disease = rare_bundle()
    answer = clinician.post("/fhir/predict", params={"top_k": 100}, json=bundle)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    codes = [e["code"] for e in body["prediction"]["differential"]]
    assert disease in codes, codes[:10]
    position = codes.index(disease)
    prefix, number = disease.split(":")
    coding = body["riskAssessment"]["prediction"][position]["outcome"]["coding"][0]
    assert coding["code"] == number
    assert (
        coding["system"] == {"OMIM": "https://omim.org", "ORPHA": "https://www.orpha.net"}[prefix]
    )
    basis = {b["reference"] for b in body["riskAssessment"].get("basis", [])}
    assert basis and all(r.startswith("Observation/hpo-") for r in basis)
    cards = call_hook(fhir_service, ehr, hook_request(bundle))
    assert cards.status_code == 200 and violations("response", cards.json()) == []


def test_bad_resources_get_an_operation_outcome_naming_resource_element_and_problem(
    fhir_service, clinician
):
    bundle = chest_pain_bundle()
    bundle["entry"][6]["resource"]["valueQuantity"]["code"] = "furlongs"
    bundle["entry"][3]["resource"]["code"]["coding"][0]["code"] = "HP:9999999"
    refused = clinician.post("/fhir/predict", json=bundle)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/fhir+json")
    outcome = refused.json()
    OperationOutcome.model_validate(outcome)
    located = {(i["location"][0], i["expression"][0], i["code"]) for i in outcome["issue"]}
    assert ("Observation/o-hr", "Observation.valueQuantity.code", "code-invalid") in located
    assert ("Observation/o-chest", "Observation.code.coding[0].code", "code-invalid") in located
    # the audit trail names the elements and why, never the EHR's resource ids
    audit = [
        json.loads(line)
        for line in (fhir_service.config.parent / "audit_log.jsonl").read_text().splitlines()
    ]
    errors = [
        e["output"]["errors"]
        for e in audit
        if e.get("event") == "refused" and e.get("endpoint") == "/fhir/predict"
    ]
    assert ["Observation.valueQuantity.code" in e for e in errors[-1]].count(True) == 1
    assert not any("o-hr" in e or "o-chest" in e or "Patient/" in e for es in errors for e in es)
    not_json = clinician.post(
        "/fhir/predict", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400 and not_json.json()["resourceType"] == "OperationOutcome"
    not_bundle = clinician.post("/fhir/predict", json={"resourceType": "Patient", "id": "x"})
    assert not_bundle.status_code == 400
    assert not_bundle.json()["issue"][0]["expression"] == ["Bundle.resourceType"]
    bad_k = clinician.post("/fhir/predict", params={"top_k": 0}, json=chest_pain_bundle())
    assert bad_k.status_code == 400 and bad_k.json()["issue"][0]["expression"] == ["top_k"]


def test_fhir_predict_needs_a_service_token(fhir_service, ehr):
    anonymous = httpx.post(f"{fhir_service.url}/fhir/predict", json=chest_pain_bundle())
    assert anonymous.status_code == 401
    ehr_jwt = ehr.token(f"{fhir_service.url}/cds-services")
    as_ehr = httpx.post(
        f"{fhir_service.url}/fhir/predict",
        json=chest_pain_bundle(),
        headers={"Authorization": f"Bearer {ehr_jwt}"},
    )
    assert as_ehr.status_code == 401  # the EHR's JWT opens the CDS routes only


# ---- CDS Hooks -----------------------------------------------------------------------


def test_discovery_lists_the_service_with_its_prefetch(fhir_service):
    answer = httpx.get(f"{fhir_service.url}/cds-services")
    assert answer.status_code == 200
    body = answer.json()
    assert violations("discovery", body) == []
    (service,) = body["services"]
    assert (service["id"], service["hook"]) == (SERVICE_ID, "patient-view")
    assert set(service["prefetch"]) == {"patient", "conditions", "observations"}


def test_the_specification_style_examples_get_valid_answers(fhir_service, ehr):
    example = json.loads((CDS_DATA / "patient-view-request.json").read_text())
    assert violations("request", example) == []
    answer = call_hook(fhir_service, ehr, example)
    assert answer.status_code == 200, answer.text
    assert violations("response", answer.json()) == []
    (card,) = answer.json()["cards"]
    assert len(card["summary"]) <= 140 and card["indicator"] in ("info", "warning", "critical")
    assert card["source"]["label"].startswith("disease_pipeline model, version ")
    assert card["links"][0]["url"].startswith(f"{fhir_service.url}/ui/")
    missing = json.loads((CDS_DATA / "patient-view-no-prefetch.json").read_text())
    assert violations("request", missing) == []
    refused = call_hook(fhir_service, ehr, missing)
    assert refused.status_code == 412 and "prefetch" in refused.json()["error"]


def test_unreadable_prefetch_gets_a_card_naming_the_problems(fhir_service, ehr):
    bundle = chest_pain_bundle()
    bundle["entry"][6]["resource"]["valueQuantity"]["code"] = "furlongs"
    answer = call_hook(fhir_service, ehr, hook_request(bundle))
    assert answer.status_code == 200 and violations("response", answer.json()) == []
    (card,) = answer.json()["cards"]
    assert card["summary"].startswith("Differential not computed")
    assert "Observation/o-hr: Observation.valueQuantity.code" in card["detail"]


def test_the_ehr_jwt_is_checked(fhir_service, ehr):
    body = hook_request(chest_pain_bundle())
    audience = f"{fhir_service.url}/cds-services"
    stranger = SigningEhr(kid=ehr.kid)  # same kid, another key: a forged signature
    cases = {
        "bad signature": (stranger.token(audience), "signature"),
        "wrong audience": (ehr.token("https://other.test.invalid/cds-services"), "audience"),
        "expired": (ehr.token(audience, now=time.time() - 900), "expired"),
        "too long-lived": (ehr.token(audience, lifetime_s=3600), "lifetime"),
        "untrusted issuer": (
            SigningEhr(iss="https://rogue.test.invalid").token(audience),
            "issuer",
        ),
        "no jti": (ehr.token(audience, jti=None), "jti"),
    }
    for name, (token, word) in cases.items():
        answer = call_hook(fhir_service, ehr, body, token=token)
        assert answer.status_code == 401, name
        assert word in answer.json()["error"], (name, answer.json())
    token = ehr.token(audience)
    assert call_hook(fhir_service, ehr, body, token=token).status_code == 200
    replay = call_hook(fhir_service, ehr, body, token=token)
    assert replay.status_code == 401 and "replay" in replay.json()["error"]
    no_token = httpx.post(hook_url(fhir_service), json=body)
    assert no_token.status_code == 401


def test_feedback_on_a_card_is_audited_and_stored(fhir_service, ehr):
    answer = call_hook(fhir_service, ehr, hook_request(chest_pain_bundle()))
    card = answer.json()["cards"][0]
    feedback = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
                "outcomeTimestamp": "2024-03-01T10:05:00Z",
            },
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {"reason": {"code": "already-done", "system": "urn:test"}},
                "outcomeTimestamp": "2024-03-01T10:06:00Z",
            },
        ]
    }
    assert violations("feedback", feedback) == []
    token = ehr.token(f"{fhir_service.url}/cds-services")
    stored = httpx.post(
        f"{hook_url(fhir_service)}/feedback",
        json=feedback,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert stored.status_code == 200 and stored.json() == {"stored": 2}
    rows = read_cds_feedback(fhir_service.config.parent / "warehouse.duckdb", card["uuid"])
    assert sorted(rows) == [
        ("accepted", None, "test_ehr", "ehr"),
        ("overridden", "already-done", "test_ehr", "ehr"),
    ]
    audit = (fhir_service.config.parent / "audit_log.jsonl").read_text()
    assert audit.count('"event": "cds_feedback"') + audit.count('"event":"cds_feedback"') >= 2
    unknown = copy.deepcopy(feedback)
    unknown["feedback"][0]["card"] = str(uuid.uuid4())
    token = ehr.token(f"{fhir_service.url}/cds-services")
    refused = httpx.post(
        f"{hook_url(fhir_service)}/feedback",
        json=unknown,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert refused.status_code == 404


def test_simulated_bundles_get_valid_fhir_answers(clinician):
    """Bundles of the simulate pipeline (test size, with its injected faults): each gets a
    valid RiskAssessment or a valid OperationOutcome; none a 5xx."""
    lines = (
        (PROJECT_ROOT / "data" / "test" / "01_raw" / "fhir" / "bundles.ndjson")
        .read_text()
        .splitlines()
    )
    statuses = []
    for line in lines[:40]:
        answer = clinician.post(
            "/fhir/predict", content=line.encode(), headers={"content-type": "application/json"}
        )
        statuses.append(answer.status_code)
        if answer.status_code == 200:
            RiskAssessment.model_validate(answer.json()["riskAssessment"])
        else:
            assert answer.status_code in (400, 422), answer.text
            OperationOutcome.model_validate(answer.json())
    assert statuses.count(200) >= len(statuses) // 2, statuses


def test_fhir_and_cds_calls_are_counted_in_metrics(fhir_service, clinician, ehr):
    # both calls made here, so the counts do not depend on the order of the tests
    assert clinician.post("/fhir/predict", json=chest_pain_bundle()).status_code == 200
    assert call_hook(fhir_service, ehr, hook_request(chest_pain_bundle())).status_code == 200
    text = httpx.get(f"{fhir_service.url}/metrics").text
    assert 'endpoint="/fhir/predict"' in text
    assert 'endpoint="/cds-services/{service}"' in text
