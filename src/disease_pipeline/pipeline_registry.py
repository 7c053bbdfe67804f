"""Project pipelines.

Every folder under ``pipelines/`` exposing ``create_pipeline`` is a pipeline of the
same name. ``train`` chains the stages a data scientist runs, from raw records to a
packaged, approved model. Discovery is explicit (not ``find_pipelines``) because
Kedro 1.7 only imports the folders named on the command line, and ``train`` is a
composition, not a folder.

Each pipeline's nodes are put in a Kedro namespace named after its folder, so kedro-viz
draws one collapsible box per pipeline and a node's registered name is
``<folder>.<node name>`` (``rare_model.validate_rare_model``; ``--nodes``,
``--from-nodes`` and hooks see that name). The namespace only groups: datasets and
parameters keep the catalog's names (``prefix_datasets_with_namespace=False``), so a
pipeline reads and writes exactly what it did without one.
"""

from __future__ import annotations

import importlib
import pkgutil

from kedro.pipeline import Pipeline, pipeline

#: Stages of ``kedro run --pipeline=train``, in data-flow order.
TRAIN_STAGES = (
    "ingestion",
    "anonymization",
    "features",
    "common_model",
    "rare_model",
    "severity_model",
    "calibration",
    "evaluation",
    "drift",
    "packaging",
    "bento_packaging",
)


def namespaced(name: str, nodes: Pipeline) -> Pipeline:
    """``nodes`` in the namespace ``name``, its datasets and parameters not renamed."""
    return pipeline(nodes, namespace=name, prefix_datasets_with_namespace=False)


def discover_pipelines() -> dict[str, Pipeline]:
    """``create_pipeline()`` of every sub-package of ``disease_pipeline.pipelines``, in
    the namespace of the sub-package's name."""
    package = importlib.import_module("disease_pipeline.pipelines")
    found: dict[str, Pipeline] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.ispkg:
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            found[info.name] = namespaced(info.name, module.create_pipeline())
    return found


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = discover_pipelines()
    pipelines["train"] = sum(
        (pipelines[name] for name in TRAIN_STAGES if name in pipelines), Pipeline([])
    )
    if "retrain" in pipelines:
        # the training stages up to drift, then the challenger's registration and comparison
        retrain_stages = TRAIN_STAGES[: TRAIN_STAGES.index("packaging")]
        pipelines["retrain"] = (
            sum((pipelines[name] for name in retrain_stages if name in pipelines), Pipeline([]))
            + pipelines["retrain"]
        )
    pipelines["__default__"] = pipelines["train"]
    return pipelines
