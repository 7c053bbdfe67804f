"""Hardening of the service without a server: batching, token file, rate limit, deny by
default, audit chain key and full writes, feedback audited before commit, metrics route
templates, body size limit and security headers (ASGI), the OpenAPI contract."""

from __future__ import annotations

import asyncio
import os
import stat
import threading

import pytest

from disease_pipeline.serving import audit as audit_module
from disease_pipeline.serving.audit import AuditLog, AuditWriteError, verify_chain
from disease_pipeline.serving.auth import (
    BearerAuthMiddleware,
    Denied,
    Principal,
    RateLimiter,
    TokenTable,
    bootstrap_token,
    main,
)
from disease_pipeline.serving.batching import MicroBatcher
from disease_pipeline.serving.contract import ROUTE_STATUSES, complete_spec
from disease_pipeline.serving.feedback import WarehouseBusyError, feedback_row, record_feedback
from disease_pipeline.serving.guard import UNMATCHED, GuardMiddleware, route_template
from disease_pipeline.serving.process import write_config
from disease_pipeline.serving.tokens import add_token, hash_token, revoke_tokens
from tests.conftest import PROJECT_ROOT
from tests.serving.test_auth import make_config

# ---- adaptive batching -------------------------------------------------------------


def test_concurrent_calls_are_merged_and_each_gets_its_own_answer():
    calls: list[list[int]] = []
    gate = threading.Event()

    def run(items):
        calls.append(list(items))
        gate.wait(5)  # the first call holds the model while the others queue
        return [ValueError(f"bad {i}") if i == 3 else i * 10 for i in items]

    async def burst():
        batcher = MicroBatcher(run, max_batch_size=4)
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 7)]
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(first, *rest, return_exceptions=True), batcher

    results, batcher = asyncio.run(burst())
    assert calls == [[0], [1, 2, 3, 4], [5, 6]]  # idle: at once; busy: merged, capped
    assert batcher.batch_sizes == [1, 4, 2]
    assert results[:3] == [0, 10, 20] and results[4:] == [40, 50, 60]
    assert isinstance(results[3], ValueError)  # only the faulty item fails


# ---- tokens ------------------------------------------------------------------------


def test_token_file_is_private_revocable_and_one_line_per_token(tmp_path):
    config = make_config(tmp_path)
    table = TokenTable(config)
    first = add_token(config.tokens_file, "dr_a", "clinician", {"clinician"})
    second = add_token(config.tokens_file, "dr_b", "clinician", {"clinician"})
    assert stat.S_IMODE(config.tokens_file.stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tokens")]  # no leftovers
    assert table.authorize("POST", "/predict", f"Bearer {first}") == Principal("dr_a", "clinician")
    assert main(["revoke-token", "--user", "dr_a", "--config", str(_write(tmp_path))]) == 0
    assert table.authorize("POST", "/predict", f"Bearer {first}").status == 401
    assert isinstance(table.authorize("POST", "/predict", f"Bearer {second}"), Principal)
    # revoking by hand: delete the line; the file stays valid YAML
    lines = config.tokens_file.read_text().splitlines()
    config.tokens_file.write_text("\n".join(line for line in lines if "dr_b" not in line) + "\n")
    assert table.authorize("POST", "/predict", f"Bearer {second}").status == 401
    assert revoke_tokens(config.tokens_file, user="nobody") == 0


def _write(tmp_path):
    """A serving.yml whose token file is the one of ``make_config(tmp_path)``."""
    return write_config(tmp_path, {}, base=PROJECT_ROOT / "conf" / "base" / "serving.yml")


def test_a_broken_token_file_refuses_with_503_not_500(tmp_path):
    config = make_config(tmp_path)
    token = add_token(config.tokens_file, "dr_a", "clinician", {"clinician"})
    table = TokenTable(config)
    config.tokens_file.write_text("tokens:\n  - {user: dr_a, role: [\n")
    refused = table.authorize("POST", "/predict", f"Bearer {token}")
    assert isinstance(refused, Denied) and refused.status == 503


def test_expired_tokens_are_refused(tmp_path):
    config = make_config(tmp_path)
    live = add_token(config.tokens_file, "dr_a", "clinician", {"clinician"}, days=1)
    dead = add_token(config.tokens_file, "dr_b", "clinician", {"clinician"}, days=-1)
    table = TokenTable(config)
    assert isinstance(table.authorize("POST", "/predict", f"Bearer {live}"), Principal)
    refused = table.authorize("POST", "/predict", f"Bearer {dead}")
    assert refused.status == 401 and "expired" in refused.message


def test_first_token_goes_to_a_private_file(tmp_path):
    config = make_config(tmp_path)
    token = bootstrap_token(config)
    assert config.first_token_file.read_text().strip() == token
    assert stat.S_IMODE(config.first_token_file.stat().st_mode) == 0o600
    assert token not in config.tokens_file.read_text()


def test_routes_without_a_permission_entry_are_refused(tmp_path):
    config = make_config(tmp_path, [{"user": "r", "role": "admin", "sha256": hash_token("t")}])
    table = TokenTable(config)
    for method, path in [("GET", "/secret_debug"), ("DELETE", "/predict"), ("GET", "/predict")]:
        refused = table.authorize(method, path, "Bearer t")
        assert isinstance(refused, Denied) and refused.status == 403, (method, path)


def test_each_token_has_its_own_rate_limit(tmp_path):
    limiter = RateLimiter(per_second=1.0, burst=2)
    assert [limiter.wait_s("a", now=0.0) for _ in range(3)][:2] == [0.0, 0.0]
    assert limiter.wait_s("a", now=0.0) > 0  # spent
    assert limiter.wait_s("b", now=0.0) == 0.0  # another token is unaffected
    assert limiter.wait_s("a", now=2.0) == 0.0  # refilled
    config = make_config(
        tmp_path,
        [{"user": "r", "role": "admin", "sha256": hash_token("t")}],
        rate_per_second=0.01,
        rate_burst=1,
    )
    table = TokenTable(config)
    assert isinstance(table.authorize("POST", "/predict", "Bearer t"), Principal)
    limited = table.authorize("POST", "/predict", "Bearer t")
    assert limited.status == 429 and limited.retry_after >= 1


# ---- audit -------------------------------------------------------------------------


def test_the_audit_chain_is_keyed(tmp_path):
    path = tmp_path / "audit.jsonl"
    AuditLog(path, key=b"k" * 32).append([{"event": "prediction"}, {"event": "prediction"}])
    assert verify_chain(path, key=b"k" * 32).ok
    assert not verify_chain(path).ok  # the key is needed
    assert not verify_chain(path, key=b"x" * 32).ok
    # a forger without the key re-chains an edited entry with plain SHA-256: refused
    lines = path.read_text().splitlines()
    import json

    from disease_pipeline.serving.audit import entry_hash

    first = json.loads(lines[0])
    first.pop("chain")
    first["event"] = "nothing"
    first["hash"] = entry_hash(first)
    second = json.loads(lines[1])
    path.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n")
    assert not verify_chain(path, key=b"k" * 32).ok


def test_short_writes_are_completed_and_failed_writes_cut_cleanly(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, key=b"k" * 32)
    log.append([{"event": "prediction"}])
    real_write = os.write

    def short_write(fd, data):  # the kernel may write less than asked
        return real_write(fd, bytes(data[:7]))

    monkeypatch.setattr(audit_module.os, "write", short_write)
    log.append([{"event": "prediction", "pad": "x" * 200}])
    calls = []

    def disk_full(fd, data):
        calls.append(1)
        if len(calls) == 1:
            return real_write(fd, bytes(data[:10]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit_module.os, "write", disk_full)
    with pytest.raises(AuditWriteError):
        log.append([{"event": "prediction"}])
    monkeypatch.setattr(audit_module.os, "write", real_write)
    result = verify_chain(path, key=b"k" * 32)
    assert result.ok and result.entries == 2  # the partial entry was cut off
    log.append([{"event": "prediction"}])
    assert verify_chain(path, key=b"k" * 32).entries == 3


def test_feedback_is_audited_before_it_is_committed(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, key=b"k" * 32)
    prediction = {"model_version": "1", "top": [["J18.9", 0.7]]}
    row = feedback_row("r" * 32, "J18.9", "Ana Ruiz 555-201-3344", prediction, user="u", role="c")
    assert row["notes"] is None  # free text is not stored by default
    seen = []

    class Store:
        def append(self, stored):
            seen.append(verify_chain(path, key=b"k" * 32).events)
            raise WarehouseBusyError("locked")

    with pytest.raises(WarehouseBusyError):
        record_feedback(log, Store(), row, 1.0)
    assert seen == [{"feedback": 1}]  # the entry existed when the commit was attempted
    assert verify_chain(path, key=b"k" * 32).events == {"feedback": 1, "feedback_not_stored": 1}


# ---- guard: metrics, body size, headers; contract ----------------------------------


def test_metrics_routes_are_templates_and_unknown_paths_are_pooled():
    assert route_template("/predict") == "/predict"
    assert route_template("/ui/static/app.js") == "/ui/static/{file}"
    assert {route_template(f"/random/{i}") for i in range(50)} == {UNMATCHED}


def _asgi(app, path: str, body: bytes, headers=()):
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": list(headers)}
    asyncio.run(app(scope, receive, send))
    return sent


async def _ok(scope, receive, send):
    message = await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": message["body"]})


def test_oversized_bodies_get_413_and_answers_carry_security_headers():
    guard = GuardMiddleware(_ok, max_body_bytes=10)
    declared = _asgi(guard, "/predict", b"x" * 11, [(b"content-length", b"11")])
    assert declared[0]["status"] == 413
    streamed = _asgi(guard, "/predict", b"x" * 11)  # no Content-Length
    assert streamed[0]["status"] == 413
    fine = _asgi(guard, "/predict", b"x" * 5)
    headers = dict(fine[0]["headers"])
    assert fine[0]["status"] == 200 and fine[1]["body"] == b"x" * 5
    assert headers[b"cache-control"] == b"no-store"
    assert headers[b"x-content-type-options"] == b"nosniff"
    csp = headers[b"content-security-policy"].decode()
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp


def test_the_openapi_document_lists_every_status_and_the_error_schema():
    spec = {
        "paths": {
            path: {method.lower(): {"responses": {"200": {}, 500: {}}}}
            for method, path in ROUTE_STATUSES
        }
    }
    spec["paths"]["/healthz"] = {"get": {"responses": {"200": {}}}}
    done = complete_spec(spec)
    assert "ErrorBody" in done["components"]["schemas"]
    predict = done["paths"]["/predict"]["post"]["responses"]
    assert {"200", "400", "401", "403", "413", "422", "429", "503"} <= set(predict)
    assert "500" not in predict
    assert "404" in done["paths"]["/feedback"]["post"]["responses"]
    assert set(done["paths"]["/healthz"]["get"]["responses"]) == {"200", "429", "503"}


def test_the_auth_middleware_sends_retry_after_on_429(tmp_path):
    config = make_config(
        tmp_path,
        [{"user": "r", "role": "admin", "sha256": hash_token("t")}],
        rate_per_second=0.01,
        rate_burst=1,
    )
    middleware = BearerAuthMiddleware(_ok)
    middleware.tokens = TokenTable(config)
    header = [(b"authorization", b"Bearer t")]
    assert _asgi(middleware, "/predict", b"{}", header)[0]["status"] == 200
    limited = _asgi(middleware, "/predict", b"{}", header)[0]
    assert limited["status"] == 429 and dict(limited["headers"])[b"retry-after"]
