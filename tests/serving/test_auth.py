"""Bearer tokens and roles: who may call what, and the messages of refusals."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest
import yaml

from disease_pipeline.serving.auth import (
    Denied,
    Principal,
    TokenTable,
    add_token,
    bootstrap_token,
    hash_token,
)
from disease_pipeline.serving.config import ServingConfig, ServingConfigError, service_key

ROLES = {
    "clinician": ["predict", "predict_batch", "feedback", "hpo_search"],
    "admin": ["predict", "predict_batch", "feedback", "hpo_search", "model_info", "audit_export"],
}


def make_config(tmp_path, tokens=(), roles=None, **overrides) -> ServingConfig:
    raw = {
        "model_tag": "disease_pipeline:latest",
        "top_k": 10,
        "max_top_k": 50,
        "max_batch_size": 100,
        "audit_log": str(tmp_path / "audit.jsonl"),
        "feedback_warehouse": str(tmp_path / "warehouse.duckdb"),
        "feedback_table": "feedback",
        "key_file": str(tmp_path / "key.txt"),
        "tokens_file": str(tmp_path / "tokens.yml"),
        "tokens": list(tokens),
        "roles": roles or ROLES,
        "hpo_search_limit": 10,
        **overrides,
    }
    return ServingConfig.from_dict(raw, source=tmp_path / "serving.yml")


@pytest.fixture
def table(tmp_path) -> TokenTable:
    tokens = [
        {"user": "dr_a", "role": "clinician", "sha256": hash_token("clinician-secret")},
        {"user": "root", "role": "admin", "sha256": hash_token("admin-secret")},
    ]
    return TokenTable(make_config(tmp_path, tokens))


def test_public_paths_need_no_token(table):
    for path in ("/healthz", "/readyz", "/metrics", "/ui/", "/ui/static/app.js"):
        assert table.authorize("GET", path, None) is None


def test_missing_malformed_and_unknown_tokens_get_401(table):
    missing = table.authorize("POST", "/predict", None)
    assert isinstance(missing, Denied) and missing.status == 401
    assert "Authorization: Bearer" in missing.message
    malformed = table.authorize("POST", "/predict", "Basic abc")
    assert malformed.status == 401 and "malformed" in malformed.message
    unknown = table.authorize("POST", "/predict", "Bearer not-a-token")
    assert unknown.status == 401 and "invalid" in unknown.message


def test_roles_decide_access(table):
    clinician = "Bearer clinician-secret"
    assert table.authorize("POST", "/predict", clinician) == Principal("dr_a", "clinician")
    assert isinstance(table.authorize("POST", "/feedback", clinician), Principal)
    refused = table.authorize("GET", "/model_info", clinician)
    assert refused.status == 403
    assert "clinician" in refused.message and "model_info" in refused.message
    assert table.authorize("GET", "/audit/export", clinician).status == 403
    assert table.authorize("GET", "/model_info", "Bearer admin-secret") == Principal(
        "root", "admin"
    )


def test_tokens_added_to_the_file_work_without_restart(tmp_path, table):
    config = make_config(tmp_path)
    live = TokenTable(config)
    token = add_token(config.tokens_file, "dr_b", "clinician", set(ROLES))
    assert token not in config.tokens_file.read_text()
    assert hash_token(token) in config.tokens_file.read_text()
    assert live.authorize("POST", "/predict", f"Bearer {token}") == Principal("dr_b", "clinician")
    document = yaml.safe_load(config.tokens_file.read_text())
    document["tokens"] = []
    config.tokens_file.write_text(yaml.safe_dump(document) + "\n# revoked\n")
    assert live.authorize("POST", "/predict", f"Bearer {token}").status == 401


def test_bad_configuration_names_the_field(tmp_path):
    bad_hash = [{"user": "x", "role": "clinician", "sha256": "abc"}]
    with pytest.raises(ServingConfigError, match=r"tokens\[0\]\.sha256"):
        TokenTable(make_config(tmp_path, bad_hash))
    bad_role = [{"user": "x", "role": "nurse", "sha256": hash_token("t")}]
    with pytest.raises(ServingConfigError, match=r"role: 'nurse'"):
        TokenTable(make_config(tmp_path, bad_role))
    with pytest.raises(ServingConfigError, match="unknown permissions"):
        make_config(tmp_path, roles={"clinician": ["predict", "delete_everything"]})
    with pytest.raises(ServingConfigError, match="top_k"):
        make_config(tmp_path, top_k=0)
    with pytest.raises(ServingConfigError, match=r"serving\.threads"):
        make_config(tmp_path, threads=0)
    assert make_config(tmp_path).threads == 1 and make_config(tmp_path, threads=2).threads == 2
    with pytest.raises(ServingConfigError, match=r"serving\.workers"):
        make_config(tmp_path, workers=-1)
    with pytest.raises(ServingConfigError, match="role 'nurse'"):
        add_token(tmp_path / "t.yml", "x", "nurse", set(ROLES))


def test_a_fresh_install_gets_one_local_token(tmp_path):
    config = make_config(tmp_path)
    token = bootstrap_token(config)
    assert token and TokenTable(config).authorize("POST", "/predict", f"Bearer {token}") == (
        Principal("local", "clinician")
    )
    assert bootstrap_token(config) is None  # tokens exist now
    configured = make_config(
        tmp_path / "x", [{"user": "a", "role": "admin", "sha256": hash_token("t")}]
    )
    assert bootstrap_token(configured) is None


def _first_start(config: ServingConfig) -> tuple[bytes, str | None]:
    return service_key(config), bootstrap_token(config)


def test_workers_starting_together_share_one_key_and_one_first_token(tmp_path):
    """Every worker process runs the service's start-up; on a fresh install they must
    agree on the pseudonym key and create a single access token."""
    config = make_config(tmp_path)
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("fork")) as pool:
        results = list(pool.map(_first_start, [config] * 8))
    assert len({key for key, _ in results}) == 1
    created = [token for _, token in results if token]
    assert len(created) == 1
    stored = yaml.safe_load(config.tokens_file.read_text())["tokens"]
    assert [entry["sha256"] for entry in stored] == [hash_token(created[0])]
