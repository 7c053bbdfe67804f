"""Project pipelines.

Every folder under ``pipelines/`` is found by ``find_pipelines``. ``train`` chains
the stages a data scientist runs, from raw records to a packaged, approved model.
"""

from __future__ import annotations

from kedro.framework.project import find_pipelines
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
)


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = find_pipelines(raise_errors=True)
    pipelines["train"] = sum(
        (pipelines[name] for name in TRAIN_STAGES if name in pipelines), Pipeline([])
    )
    pipelines["__default__"] = pipelines["train"]
    return pipelines
