"""The registry puts every pipeline in a Kedro namespace named after its folder (kedro-viz
draws one collapsible box per pipeline) and renames nothing but the nodes: datasets,
parameters and the data flow are those of each folder's ``create_pipeline()``."""

from __future__ import annotations

import importlib
import warnings

import pytest

from disease_pipeline.pipeline_registry import (
    TRAIN_STAGES,
    discover_pipelines,
    register_pipelines,
)


@pytest.fixture(scope="module")
def discovered():
    return discover_pipelines()


@pytest.fixture(scope="module")
def registered():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipelines = register_pipelines()
    return pipelines, [str(w.message) for w in caught if "Namespace" in str(w.message)]


def folder_pipeline(name: str):
    """The folder's own pipeline, without the registry's namespace."""
    return importlib.import_module(f"disease_pipeline.pipelines.{name}").create_pipeline()


def test_every_pipeline_is_one_namespace_named_after_its_folder(discovered):
    assert {"ingestion", "rare_model", "screen", "simulate", "retrain"} <= set(discovered)
    for name, pipeline in discovered.items():
        assert {node.namespace for node in pipeline.nodes} == {name}, name


def test_the_namespace_renames_the_nodes_and_nothing_else(discovered):
    for name, pipeline in discovered.items():
        own = {node.name: node for node in folder_pipeline(name).nodes}
        registered = {node.name: node for node in pipeline.nodes}
        assert set(registered) == {f"{name}.{node}" for node in own}, name
        for node in own.values():
            copy = registered[f"{name}.{node.name}"]
            assert (copy.inputs, copy.outputs, copy.tags, copy.func) == (
                node.inputs,
                node.outputs,
                node.tags,
                node.func,
            ), copy.name
        assert pipeline.all_inputs() == folder_pipeline(name).all_inputs(), name
        assert pipeline.all_outputs() == folder_pipeline(name).all_outputs(), name


def test_train_and_retrain_are_their_stages_boxes(registered, discovered):
    pipelines, interrupted = registered
    assert not interrupted, interrupted  # each stage's nodes form one unbroken box
    train = pipelines["train"]
    assert {node.namespace for node in train.nodes} == set(TRAIN_STAGES)
    assert set(train.nodes) == {node for name in TRAIN_STAGES for node in discovered[name].nodes}
    stages = TRAIN_STAGES[: TRAIN_STAGES.index("packaging")]
    assert {node.namespace for node in pipelines["retrain"].nodes} == {*stages, "retrain"}
    assert pipelines["__default__"].nodes == train.nodes


def test_train_stages_the_bento_after_registering_the_champion(registered):
    """``bento_packaging`` stages the registry's ``@champion``: it reads
    ``reporting_champion_registration``, which the registering node writes, so it runs
    after the registration whatever the nodes' names."""
    order = [node.name for node in registered[0]["train"].nodes]
    assert order.index("bento_packaging.stage_champion_in_bentoml") > order.index(
        "packaging.register_champion"
    )
