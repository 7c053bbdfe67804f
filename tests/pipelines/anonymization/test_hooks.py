"""AnonymizationKeyHook: the run environment decides whether a local key file may be created."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from kedro.io import DataCatalog, DatasetError
from kedro.pipeline import Node, Pipeline

from disease_pipeline.pipelines.anonymization import pseudonyms
from disease_pipeline.pipelines.anonymization.hooks import (
    KEY_DATASET,
    AnonymizationKeyHook,
    HmacKeyDataset,
)
from disease_pipeline.pipelines.anonymization.pseudonyms import (
    KEY_ENV_VAR,
    MissingKeyError,
)
from disease_pipeline.settings import HOOKS

NEEDS_KEY = Pipeline([Node(len, KEY_DATASET, "key_length", name="uses_key")])


def _hooked_catalog(env: str | None, creds: dict) -> tuple[AnonymizationKeyHook, DataCatalog]:
    hook = AnonymizationKeyHook()
    hook.after_context_created(
        SimpleNamespace(env=env, config_loader=SimpleNamespace(default_run_env="local"))
    )
    catalog = DataCatalog()
    hook.after_catalog_created(catalog=catalog, conf_creds=creds)
    return hook, catalog


def test_hook_is_registered_in_settings():
    assert any(isinstance(hook, AnonymizationKeyHook) for hook in HOOKS)


def test_default_environment_gets_the_local_random_key(monkeypatch, tmp_path):
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    monkeypatch.setattr(pseudonyms, "LOCAL_KEY_FILE", tmp_path / "anonymization_key.txt")
    hook, catalog = _hooked_catalog(None, {})
    hook.before_pipeline_run(pipeline=NEEDS_KEY, catalog=catalog)
    stored = (tmp_path / "anonymization_key.txt").read_text().strip().encode()
    assert catalog.load(KEY_DATASET) == stored and len(stored) == 64


def test_production_environment_without_key_fails_before_any_node(monkeypatch):
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    hook, catalog = _hooked_catalog("snowflake", {})
    with pytest.raises(MissingKeyError, match="environment 'snowflake'"):
        hook.before_pipeline_run(pipeline=NEEDS_KEY, catalog=catalog)


def test_production_environment_uses_credentials_key(monkeypatch):
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    hook, catalog = _hooked_catalog("prod", {"anonymization_key": {"key": "s" * 48}})
    hook.before_pipeline_run(pipeline=NEEDS_KEY, catalog=catalog)
    assert catalog.load(KEY_DATASET) == b"s" * 48


def test_pipelines_without_the_key_are_not_blocked(monkeypatch):
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    hook, catalog = _hooked_catalog("prod", {})
    hook.before_pipeline_run(pipeline=Pipeline([Node(len, "x", "y")]), catalog=catalog)


def test_key_dataset_is_read_only_and_does_not_show_the_key():
    dataset = HmacKeyDataset("prod", {"anonymization_key": {"key": "secret" * 8}})
    assert "secret" not in repr(dataset)
    with pytest.raises(DatasetError, match="read-only"):
        dataset.save(b"new key")
