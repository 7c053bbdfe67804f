"""Project pipelines.

Every folder under ``pipelines/`` exposing ``create_pipeline`` is a pipeline of the
same name. ``train`` chains the stages a data scientist runs, from raw records to a
packaged, approved model. Discovery is explicit (not ``find_pipelines``) because
Kedro 1.7 only imports the folders named on the command line, and ``train`` is a
composition, not a folder.
"""

from __future__ import annotations

import importlib
import pkgutil

from kedro.pipeline import Pipeline

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


def discover_pipelines() -> dict[str, Pipeline]:
    """``create_pipeline()`` of every sub-package of ``disease_pipeline.pipelines``."""
    package = importlib.import_module("disease_pipeline.pipelines")
    found: dict[str, Pipeline] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.ispkg:
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            found[info.name] = module.create_pipeline()
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
