"""The real service under concurrent load, against limits and against its own contract:
adaptive batching of concurrent /predict calls, metrics by route template, security
headers, HTTPS with body, rate and concurrency limits, schemathesis on /docs.json."""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from disease_pipeline.serving.process import ServiceProcess, write_config
from disease_pipeline.serving.tokens import hash_token
from tests.serving.conftest import BASE_CONFIG, BENTOML_HOME, client
from tests.serving.test_service_http import metric_samples, patient

pytestmark = [pytest.mark.slow, pytest.mark.server]


@pytest.fixture(scope="module")
def clinician(service, tokens):
    with client(service, tokens["clinician"]) as http:
        yield http


def test_a_patient_gets_the_same_answer_alone_and_inside_a_concurrent_burst(
    service, clinician, tokens
):
    """Concurrent /predict calls are merged into model calls of several patients; each
    answer is the one the patient gets alone (to the last floating-point digits)."""
    target = patient(age=52, sex="male")
    others = [patient(age=20 + i, sex="female" if i % 2 else "male") for i in range(23)]
    alone = clinician.post("/predict", json={"patient": target, "top_k": 5}).json()

    def call(record: dict) -> dict:
        with client(service, tokens["clinician"]) as http:
            response = http.post("/predict", json={"patient": record, "top_k": 5})
            assert response.status_code == 200, response.text
            return response.json()

    with ThreadPoolExecutor(24) as pool:
        burst = list(pool.map(call, [*others[:12], target, *others[12:]]))
    merged = burst[12]
    # the same ranking, severity and explanation; probabilities equal to the last
    # floating-point digits (the predictor's vectorised sums round at the 1e-16 level
    # differently with the number of rows, as /predict_batch does)
    assert [d["code"] for d in merged["differential"]] == [d["code"] for d in alone["differential"]]

    def numbers(answer: dict) -> list[float]:
        return [x for d in answer["differential"] for x in (d["probability"], *d["interval"])]

    assert numbers(merged) == pytest.approx(numbers(alone), rel=1e-12, abs=1e-15)
    assert merged["severity"]["level"] == alone["severity"]["level"]
    assert merged["p_rare"] == pytest.approx(alone["p_rare"], rel=1e-12, abs=1e-15)
    assert merged["explanation"]["target"] == alone["explanation"]["target"]
    samples = metric_samples(httpx.get(f"{service.url}/metrics", timeout=30).text)
    merged_calls = sum(
        value
        for (name, labels), value in samples.items()
        if name == "disease_model_batch_size_bucket"
        and dict(labels) == {"endpoint": "/predict", "le": "1.0"}
    )
    total_calls = sum(
        value
        for (name, labels), value in samples.items()
        if name == "disease_model_batch_size_count" and dict(labels) == {"endpoint": "/predict"}
    )
    assert total_calls > merged_calls, "no model call answered more than one /predict"


def _batch_calls(service) -> tuple[float, float]:
    """(model calls, patients) of /predict_batch so far, from the batch-size histogram."""
    samples = metric_samples(httpx.get(f"{service.url}/metrics", timeout=30).text)
    labels = {"endpoint": "/predict_batch"}
    return tuple(
        sum(v for (n, lab), v in samples.items() if n == name and dict(lab) == labels)
        for name in ("disease_model_batch_size_count", "disease_model_batch_size_sum")
    )


def test_a_large_batch_is_predicted_in_bounded_model_calls(service, clinician):
    """A batch above ``model_call_size`` (250) patients is predicted, audited and logged
    in several model calls (its memory is one call's), answering each patient as alone."""
    size = yaml.safe_load(BASE_CONFIG.read_text())["serving"]["model_call_size"]
    patients = [patient(age=1 + i % 90, sex="female" if i % 2 else "male") for i in range(size + 7)]
    calls_before, patients_before = _batch_calls(service)
    response = clinician.post("/predict_batch", json={"patients": patients, "top_k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["count"], body["predicted"]) == (size + 7, size + 7)
    calls_after, patients_after = _batch_calls(service)
    assert (calls_after - calls_before, patients_after - patients_before) == (2, size + 7)
    last = body["predictions"][-1]
    alone = clinician.post("/predict", json={"patient": patients[-1], "top_k": 3}).json()
    assert [d["code"] for d in last["differential"]] == [d["code"] for d in alone["differential"]]
    assert [d["probability"] for d in last["differential"]] == pytest.approx(
        [d["probability"] for d in alone["differential"]], rel=0, abs=1e-12
    )


def test_random_paths_do_not_grow_the_metrics(service):
    with client(service, None) as anonymous:
        anonymous.get("/no/such/path/warm-up")
        before = len(metric_samples(anonymous.get("/metrics").text))
        for _ in range(50):
            anonymous.get(f"/{secrets.token_hex(8)}/{secrets.token_hex(4)}")
        after = metric_samples(anonymous.get("/metrics").text)
    assert len(after) <= before + 4  # at most a new status of the pooled route
    assert not [labels for _, labels in after if any("/" in v and len(v) > 20 for _, v in labels)]


def test_answers_carry_security_headers(service, clinician):
    page = httpx.get(f"{service.url}/ui/", timeout=30)
    answer = clinician.post("/predict", json={"patient": patient()})
    for response in (page, answer):
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"


# ---- a second server: HTTPS with tight limits -------------------------------------------


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture(scope="module")
def tight(trained_store, tmp_path_factory):
    """The service over HTTPS (self-signed certificate) with small limits: 30 kB bodies,
    2 requests in flight, 3 requests per token at once (refilled at 1/s)."""
    folder = tmp_path_factory.mktemp("tight")
    cert_file, key_file = _self_signed(folder)
    tokens = {f"user{i}": secrets.token_urlsafe(16) for i in range(12)}
    entries = [
        {"user": user, "role": "clinician", "sha256": hash_token(t)} for user, t in tokens.items()
    ]
    config = write_config(
        folder,
        {},
        base=BASE_CONFIG,
        max_body_bytes=30_000,
        max_concurrency=2,
        rate_per_second=1,
        rate_burst=3,
        ssl={"certfile": str(cert_file), "keyfile": str(key_file)},
    )
    document = yaml.safe_load(config.read_text())
    document["serving"]["tokens"] = entries
    config.write_text(yaml.safe_dump(document))
    server = ServiceProcess(
        config=config,
        log=folder / "serve.log",
        bentoml_home=BENTOML_HOME,
        private_home=folder / "bentoml",
        cwd=Path(__file__).resolve().parents[2],
        scheme="https",
        verify=str(cert_file),
    ).start()
    yield server, list(tokens.values())
    server.stop()


def _https(server, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {token}"},
        verify=server.verify,
        timeout=60,
    )


def test_https_with_a_self_signed_certificate(tight):
    server, tokens = tight
    with _https(server, tokens[0]) as http:
        assert http.post("/predict", json={"patient": patient()}).status_code == 200
    with pytest.raises(httpx.HTTPError):  # plain HTTP is not served
        httpx.get(server.url.replace("https", "http") + "/healthz", timeout=5)


def test_oversized_bodies_are_refused_with_413(tight):
    server, tokens = tight
    with _https(server, tokens[1]) as http:
        big = {"patients": [patient()] * 200}
        response = http.post("/predict_batch", json=big)
        assert response.status_code == 413 and "larger" in response.json()["error"]


def test_each_token_is_rate_limited(tight):
    server, tokens = tight
    with _https(server, tokens[2]) as http:
        statuses = [http.get("/hpo/search", params={"q": "fever"}) for _ in range(6)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited and int(limited[0].headers["retry-after"]) >= 1
    with _https(server, tokens[3]) as other:  # another token is not affected
        assert other.get("/hpo/search", params={"q": "fever"}).status_code == 200


def test_requests_in_flight_are_bounded(tight):
    server, tokens = tight
    batch = {"patients": [patient(age=20 + i) for i in range(40)], "top_k": 5}

    def call(token: str) -> int:
        with _https(server, token) as http:
            return http.post("/predict_batch", json=batch).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(call, tokens[4:12]))
    assert 429 in statuses and 200 in statuses, statuses


# ---- the contract ------------------------------------------------------------------------


#: the routes schemathesis drives (the audit export writes to the trail; probes are trivial)
CONTRACT_PATHS = "^/(predict|predict_batch|feedback|model_info|hpo/search|fhir/predict)$"


def test_the_api_keeps_its_openapi_contract(service, tokens):
    """Generated requests for every documented operation (25 each, fixed seed): no 5xx,
    only documented status codes, bodies matching the documented schemas."""
    schema = schemathesis.openapi.from_url(f"{service.url}/docs.json")
    operations = [
        result.ok() for result in schema.include(path_regex=CONTRACT_PATHS).get_all_operations()
    ]
    assert len(operations) == 6
    headers = {"Authorization": f"Bearer {tokens['admin']}"}
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    for operation in operations:

        @settings(
            max_examples=25,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def conforms(case) -> None:
            case.call_and_validate(headers=headers, checks=checks)

        conforms()
