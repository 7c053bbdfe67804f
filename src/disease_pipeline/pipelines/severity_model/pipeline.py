"""``kedro run --pipeline=severity_model``: severity model and its selection report."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from disease_pipeline.pipelines.severity_model.nodes import (
    compare_severity_models,
    fit_severity_model,
    report_severity_model_selection,
    split_severity_rows,
)

PARAMS = "params:severity_model"


def create_pipeline(**kwargs) -> Pipeline:
    """Compare multiclass and ordinal candidates on validation, refit the winner."""
    return Pipeline(
        [
            Node(
                split_severity_rows,
                ["model_input_train", PARAMS],
                ["model_input_severity_fit", "model_input_severity_validation"],
                name="split_severity_rows",
            ),
            Node(
                compare_severity_models,
                ["model_input_severity_fit", "model_input_severity_validation", PARAMS],
                "model_severity_comparison",
                name="compare_severity_models",
            ),
            Node(
                fit_severity_model,
                ["model_input_train", "model_severity_comparison", PARAMS],
                "model_severity",
                name="fit_severity_model",
            ),
            Node(
                report_severity_model_selection,
                "model_severity_comparison",
                "reporting_severity_model_selection",
                name="report_severity_model_selection",
            ),
        ]
    )
