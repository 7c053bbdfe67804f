"""Gives the anonymisation nodes their HMAC key, and refuses to run without one.

Kedro passes credentials to datasets, never to nodes, and a node does not know
the run environment. ``AnonymizationKeyHook`` learns the environment in
``after_context_created`` and registers ``anonymization_key`` — a read-only dataset
that resolves the key (see :func:`resolve_key`) — in every catalog it sees. Before
a pipeline that needs the key runs, the key is resolved once so a missing key
fails the run before any node, with a clear message.

Register it in ``settings.py``::

    from disease_pipeline.pipelines.anonymization.hooks import AnonymizationKeyHook
    HOOKS = (AnonymizationKeyHook(),)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import AbstractDataset, DatasetError

from disease_pipeline.pipelines.anonymization.pseudonyms import resolve_key

#: Catalog name of the key dataset (a node input of the anonymisation pipeline).
KEY_DATASET = "anonymization_key"


class HmacKeyDataset(AbstractDataset[bytes, bytes]):
    """Read-only dataset returning the HMAC key; never shows the key in ``repr``."""

    def __init__(self, env: str, credentials: Mapping[str, Any] | None = None) -> None:
        """Remember where the key may come from.

        Args:
            env: Kedro run environment; decides whether a local key file may be created.
            credentials: The run's credentials configuration.
        """
        self._env = env
        self._credentials = dict(credentials or {})
        self._key: bytes | None = None

    def load(self) -> bytes:
        """Resolve the key (environment variable, credentials, or the local key file)."""
        return self.resolve()

    def resolve(self) -> bytes:
        """The key (resolved once); ``MissingKeyError`` when there is none."""
        if self._key is None:
            self._key = resolve_key(self._env, self._credentials)
        return self._key

    def save(self, data: bytes) -> None:
        """Refuse: the key is configuration, not data."""
        raise DatasetError(f"'{KEY_DATASET}' is read-only")

    def _describe(self) -> dict[str, Any]:
        return {"env": self._env}


class AnonymizationKeyHook:
    """Registers ``anonymization_key`` in the catalog for the current run environment."""

    def __init__(self) -> None:
        self._env = "local"

    @hook_impl
    def after_context_created(self, context) -> None:
        """Record the run environment (``None`` means the default run env)."""
        self._env = context.env or context.config_loader.default_run_env or "local"

    @hook_impl
    def after_catalog_created(self, catalog, conf_creds: dict[str, Any]) -> None:
        """Add the key dataset unless the catalog configuration defines one."""
        if KEY_DATASET not in catalog:
            catalog[KEY_DATASET] = HmacKeyDataset(self._env, conf_creds)

    @hook_impl
    def before_pipeline_run(self, pipeline, catalog) -> None:
        """Fail fast, before any node, when the pipeline needs a key and none is set."""
        if KEY_DATASET in pipeline.inputs() and KEY_DATASET in catalog:
            dataset = catalog[KEY_DATASET]
            if isinstance(dataset, HmacKeyDataset):
                dataset.resolve()
