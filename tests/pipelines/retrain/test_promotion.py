"""Promotion and rollback move the registry's aliases, tag the versions and append to the
audit trail (a real SQLite MLflow store and a real HMAC-chained trail under tmp_path);
``disease-pipeline promote`` / ``rollback`` do the same through the package's entry point."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from unittest.mock import patch

import mlflow
import pytest
import yaml
from kedro.io.core import DatasetError
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from disease_pipeline.__main__ import main
from disease_pipeline.datasets.champion_model import ChampionModelDataset
from disease_pipeline.pipelines.retrain import promotion
from disease_pipeline.serving.audit import AuditLog, verify_chain

KEY = b"k" * 40
SERVING = Path(__file__).resolve().parents[3] / "conf" / "base" / "serving.yml"


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """A throw-away SQLite store (created once: its schema migration takes seconds)."""
    folder = tmp_path_factory.mktemp("mlflow")
    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("unit", artifact_location=(folder / "art").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_text("model", "model.txt")
    yield uri, run.info.run_id
    mlflow.set_tracking_uri(previous)


@pytest.fixture
def store(tracking, request):
    """Model ``m`` (its own name per test): versions 1, 2, 3; champion 1, challenger 2."""
    uri, run_id = tracking
    client = MlflowClient()
    name = request.node.name
    client.create_registered_model(name)
    for _ in range(3):
        client.create_model_version(name, f"runs:/{run_id}/model.txt", run_id)
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "challenger", "2")
    return client, uri, name


def aliases(client: MlflowClient, name: str) -> dict[str, str]:
    return {a: str(v) for a, v in client.get_registered_model(name).aliases.items()}


def test_promote_then_rollback(store, tmp_path):
    client, _, name = store
    audit = AuditLog(tmp_path / "audit.jsonl", key=KEY)
    record = promotion.promote(client, name, reason="better top-3", user="ops1", audit=audit)
    assert record["champion"] == "2" and record["previous_champion"] == "1"
    assert aliases(client, name) == {"champion": "2", "previous_champion": "1"}
    tags = client.get_model_version(name, "2").tags
    assert tags["promotion.action"] == "promote"
    assert tags["promotion.reason"] == "better top-3"
    assert tags["promotion.by"] == "ops1"
    assert tags["promotion.previous_champion"] == "1"
    assert client.get_model_version(name, "1").tags["promotion.replaced_by"] == "2"

    back = promotion.rollback(client, name, reason="latency alert", user="ops2", audit=audit)
    assert back["champion"] == "1" and back["previous_champion"] == "2"
    assert aliases(client, name) == {"champion": "1", "previous_champion": "2"}
    assert "promotion.rolled_back" in client.get_model_version(name, "2").tags
    audit.close()

    check = verify_chain(tmp_path / "audit.jsonl", key=KEY)
    assert check.ok, check
    entries = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    moves = [e["output"] for e in entries if e["event"] == "model_promotion"]
    assert [(m["action"], m["champion"], m["previous_champion"]) for m in moves] == [
        ("promote", "2", "1"),
        ("rollback", "1", "2"),
    ]


def test_refusals_name_the_problem(store):
    client, _, name = store
    with pytest.raises(promotion.PromotionError, match="already the champion"):
        promotion.promote(client, name, version="1", reason="x", user="u")
    with pytest.raises(promotion.PromotionError, match="no version '9'"):
        promotion.promote(client, name, version="9", reason="x", user="u")
    with pytest.raises(promotion.PromotionError, match="no @previous_champion"):
        promotion.rollback(client, name, reason="x", user="u")
    promotion.promote(client, name, reason="x", user="u")
    with pytest.raises(promotion.PromotionError, match="no @challenger"):
        promotion.promote(client, name, reason="again", user="u")


def test_command_line_promote_and_rollback(store, tmp_path):
    """The CLI against the same store, with the audit trail of a serving configuration."""
    client, uri, name = store
    key_file = tmp_path / "audit_key.txt"
    key_file.write_text("a" * 64)
    config = tmp_path / "serving.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "serving": {
                    **yaml.safe_load(SERVING.read_text())["serving"],
                    "audit_log": str(tmp_path / "audit.jsonl"),
                    "audit_key_file": str(key_file),
                    "audit_key_env": "DISEASE_PIPELINE_TEST_NO_SUCH_VARIABLE",
                }
            }
        )
    )
    base = ["--tracking-uri", uri, "--name", name, "--serving-config", str(config)]

    def cli(*args: str) -> tuple[int, str]:
        """``disease-pipeline <args>`` through the package's entry point (__main__.main)."""
        with patch.object(sys, "argv", ["disease-pipeline", *args]):
            try:
                main()
            except SystemExit as done:
                return int(done.code or 0), ""
        return 0, ""

    code, _ = cli("promote", *base, "--version", "3", "--reason", "hand promotion", "--user", "o")
    assert code == 0
    assert aliases(client, name)["champion"] == "3"
    assert client.get_model_version(name, "3").tags["promotion.by"] == "o"
    code, _ = cli("promote", *base, "--version", "3", "--reason", "again")
    assert code == 1  # ClickException: "already the champion"
    assert cli("rollback", *base, "--reason", "oops")[0] == 0
    assert aliases(client, name)["champion"] == "1"
    check = verify_chain(tmp_path / "audit.jsonl", key=b"a" * 64)
    assert check.ok and check.events.get("model_promotion") == 2, check


def test_a_missing_alias_is_none_but_a_registry_that_cannot_answer_raises(store, monkeypatch):
    """ "No champion yet" must come from the registry itself: a registry that cannot
    answer would otherwise let retrain promote without any comparison."""
    client, uri, name = store
    assert promotion.alias_version(client, name, "champion") == "1"
    assert promotion.alias_version(client, name, "previous_champion") is None
    assert promotion.alias_version(client, "no-such-model", "champion") is None
    champion = ChampionModelDataset(registered_model_name=name)
    assert champion.exists() and not ChampionModelDataset(registered_model_name="nope").exists()
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    mlflow.set_tracking_uri("http://127.0.0.1:9")  # nothing listens there
    try:
        with pytest.raises(MlflowException, match="API request"):
            promotion.alias_version(MlflowClient(), name, "champion")
        with pytest.raises(DatasetError, match="could not answer"):
            champion.exists()
    finally:
        mlflow.set_tracking_uri(uri)
