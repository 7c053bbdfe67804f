"""The catalog says everything (docs/architecture.md, "Dataset names and layers").

A matrix over every dataset that a registered pipeline reads or writes:

- it is declared in the ``base`` catalog, by name or by a dataset factory pattern
  (in-memory hand-offs too, as ``kedro.io.MemoryDataset``) — never left to Kedro's
  implicit MemoryDataset;
- it has a kedro-viz ``layer`` from ``LAYER_PREFIXES``;
- its name starts with its layer's prefix (``<layer>_<name>``; the longest prefix wins,
  so ``model_input_…`` is never read as ``model_…``);
- nobody throws it away: a dataset no registered pipeline reads is persisted, not a
  MemoryDataset.

Per registered pipeline: a MemoryDataset it reads is written in the same run, and data
flow down the layers — no node writes a layer earlier than one it reads (the order
kedro-viz draws), apart from the exceptions named in ``FLOW_EXCEPTIONS``. Per
environment: an override names a dataset of ``base`` and keeps its layer.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro.io.catalog_config_resolver import CatalogConfigResolver

from disease_pipeline import settings
from disease_pipeline.pipeline_registry import register_pipelines
from disease_pipeline.pipelines.anonymization.hooks import KEY_DATASET, AnonymizationKeyHook
from tests.conftest import PROJECT_ROOT

CONF = PROJECT_ROOT / "conf"

#: kedro-viz layer → the prefix of its datasets' names, in data-flow order
LAYER_PREFIXES = {
    "raw": "raw_",
    "intermediate": "int_",
    "primary": "prm_",
    "feature": "feat_",
    "model_input": "model_input_",
    "models": "model_",
    "model_output": "model_output_",
    "reporting": "reporting_",
    "registry": "registry_",
}
LAYER_ORDER = list(LAYER_PREFIXES)

#: datasets a hook registers instead of the catalog, with the reason
HOOK_DATASETS = {
    KEY_DATASET: "the HMAC key: AnonymizationKeyHook resolves it from credentials or the "
    "environment, so the secret is never in a catalog file",
}

#: (input dataset, output layer) pairs allowed to flow up the layers, with the reason
FLOW_EXCEPTIONS = {
    ("registry_state", "reporting"): "retrain_check reads the registry's aliases to decide "
    "(kedro-viz draws retrain_check without layer bands, tests/test_viz.py)",
    ("feat_trained_builder", "primary"): "retrain_check computes the content key of the "
    "feedback and the exports with the last trained FeatureBuilder, to keep feedback that "
    "repeats an exported encounter out of prm_feedback_encounters (the loop feeds back)",
}

MEMORY_TYPES = {"MemoryDataset", "kedro.io.MemoryDataset", "kedro.io.memory_dataset.MemoryDataset"}


def catalog_config(env: str = "base") -> dict[str, dict]:
    """The catalog entries of ``env`` merged over ``base`` (YAML anchors left out)."""
    args = settings.CONFIG_LOADER_ARGS
    config = OmegaConfigLoader(str(CONF), env=env, **args)["catalog"]
    return {name: entry for name, entry in config.items() if not name.startswith("_")}


@cache
def base_catalog() -> tuple[dict[str, dict], CatalogConfigResolver]:
    config = catalog_config("base")
    return config, CatalogConfigResolver(config, default_runtime_patterns={"{default}": {}})


def declaration(name: str) -> dict | None:
    """The ``base`` catalog's entry for ``name``: its own, or a dataset factory pattern's
    (resolved); None when only Kedro's implicit MemoryDataset would take it."""
    config, resolver = base_catalog()
    if name in config:
        return config[name]
    if resolver.match_dataset_pattern(name) is not None:
        return resolver.resolve_pattern(name)
    return None


def layer_of(entry: dict | None) -> str | None:
    return (((entry or {}).get("metadata") or {}).get("kedro-viz") or {}).get("layer")


def prefix_layer(name: str) -> str | None:
    """The layer whose prefix starts ``name`` (the longest one)."""
    matches = [layer for layer, prefix in LAYER_PREFIXES.items() if name.startswith(prefix)]
    return max(matches, key=lambda layer: len(LAYER_PREFIXES[layer]), default=None)


def is_memory(entry: dict) -> bool:
    return entry.get("type") in MEMORY_TYPES


@cache
def pipelines() -> dict:
    return register_pipelines()


def exchanged(pipeline) -> set[str]:
    """The datasets ``pipeline`` reads or writes (parameters left out)."""
    return {d for d in pipeline.datasets() if d != "parameters" and not d.startswith("params:")}


@cache
def read_anywhere() -> frozenset[str]:
    return frozenset(d for p in pipelines().values() for n in p.nodes for d in n.inputs)


DATASETS = sorted(set().union(*(exchanged(p) for p in pipelines().values())) - set(HOOK_DATASETS))
PIPELINES = sorted(pipelines())


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_is_declared_in_the_base_catalog(name):
    assert declaration(name) is not None, (
        f"'{name}' is exchanged by a pipeline but not declared in conf/base/catalog_*.yml "
        "(declare in-memory hand-offs as `type: kedro.io.MemoryDataset` with their layer)"
    )


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_has_a_known_kedro_viz_layer(name):
    layer = layer_of(declaration(name))
    assert layer in LAYER_PREFIXES, f"'{name}': metadata.kedro-viz.layer is {layer!r}"


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_name_starts_with_its_layers_prefix(name):
    layer = layer_of(declaration(name))
    assert prefix_layer(name) is not None and prefix_layer(name) == layer, (
        f"'{name}' is in the layer {layer!r}: its name starts with "
        f"'{LAYER_PREFIXES.get(layer, '?')}' (docs/architecture.md, 'Dataset names and layers')"
    )


@pytest.mark.parametrize("name", DATASETS)
def test_a_dataset_nobody_reads_is_persisted(name):
    entry = declaration(name) or {}
    assert name in read_anywhere() or not is_memory(entry), (
        f"'{name}' is written to memory and read by no registered pipeline: it is lost "
        "after the run (persist it, or stop writing it)"
    )


@pytest.mark.parametrize("pipeline_name", PIPELINES)
def test_memory_inputs_are_written_in_the_same_run(pipeline_name):
    pipeline = pipelines()[pipeline_name]
    free = sorted(
        name
        for name in pipeline.inputs()
        if name in DATASETS and is_memory(declaration(name) or {"type": "MemoryDataset"})
    )
    assert not free, f"'{pipeline_name}' reads in-memory datasets it does not write: {free}"


@pytest.mark.parametrize("pipeline_name", PIPELINES)
def test_data_flow_down_the_layers(pipeline_name):
    """A node writes no layer earlier than one it reads (kedro-viz's bands follow the
    flow). Nodes writing ``raw`` are where the data come from (the simulator fabricates its
    hospital in ``int_sim_*`` and exports it as ``raw_*``)."""
    backwards = []
    for node in pipelines()[pipeline_name].nodes:
        outputs = {d: layer_of(declaration(d)) for d in node.outputs if d in DATASETS}
        if "raw" in outputs.values():
            continue
        for source in node.inputs:
            if source not in DATASETS:
                continue
            source_layer = layer_of(declaration(source))
            for target, target_layer in outputs.items():
                if (
                    source_layer in LAYER_ORDER
                    and target_layer in LAYER_ORDER
                    and LAYER_ORDER.index(target_layer) < LAYER_ORDER.index(source_layer)
                    and (source, target_layer) not in FLOW_EXCEPTIONS
                ):
                    backwards.append(f"{node.name}: {source} ({source_layer}) -> {target}")
    assert not backwards, backwards


def test_every_base_dataset_is_exchanged_by_a_pipeline():
    """A declaration no pipeline uses is a leftover (a renamed or removed dataset)."""
    used = set(DATASETS)
    config, resolver = base_catalog()
    unused = sorted(name for name in config if not resolver.is_pattern(name) and name not in used)
    assert not unused, f"declared in conf/base but no registered pipeline reads or writes: {unused}"
    patterns = [name for name in config if resolver.is_pattern(name)]
    for pattern in patterns:
        assert any(resolver.match_dataset_pattern(d) == pattern for d in used), pattern


def test_hook_datasets_are_registered_by_their_hook():
    """The one dataset outside the catalog: ``anonymization_key``, added by its hook."""
    from kedro.io import DataCatalog

    assert not [name for name in HOOK_DATASETS if declaration(name) is not None]
    catalog = DataCatalog()
    AnonymizationKeyHook().after_catalog_created(catalog, {})
    assert set(HOOK_DATASETS) <= set(catalog.keys())
    assert set(HOOK_DATASETS) <= set().union(*(exchanged(p) for p in pipelines().values()))


def environments() -> list[str]:
    """The environments with catalog files of their own (a user's conf/local aside)."""
    return sorted(
        path.name
        for path in CONF.iterdir()
        if path.is_dir() and path.name not in ("base", "local") and any(path.glob("catalog*.yml"))
    )


@pytest.mark.parametrize("env", environments())
def test_environment_overrides_keep_names_and_layers(env):
    """An environment's entry replaces the base entry whole: it must name a base dataset
    and declare the same layer (a stale name after a rename, or a missing layer, fails)."""
    for path in sorted((CONF / env).glob("catalog*.yml")):
        entries = yaml.safe_load(path.read_text()) or {}
        for name, entry in entries.items():
            if name.startswith("_"):
                continue
            assert declaration(name) is not None, f"{path.name}: '{name}' is not a base dataset"
            assert layer_of(entry) == layer_of(declaration(name)), f"{path.name}: '{name}'"


def test_the_naming_table_of_the_docs_is_this_one():
    """docs/architecture.md lists the same layer → prefix table."""
    text = Path(PROJECT_ROOT / "docs" / "architecture.md").read_text()
    for layer, prefix in LAYER_PREFIXES.items():
        assert f"| `{layer}` | `{prefix}…` |" in text, layer
