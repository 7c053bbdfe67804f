"""``kedro run --pipeline=common_model``: common-disease model, gate model, selection report."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from disease_pipeline.pipelines.common_model.nodes import (
    compare_imbalance_strategies,
    evaluate_baseline,
    fit_common_model,
    fit_gate_model,
    report_common_model_selection,
    split_common_rows,
    tune_common_model,
)
from disease_pipeline.pipelines.common_model.query_rows import (
    build_common_query_rows,
    build_gate_query_rows,
)

PARAMS = "params:common_model"


def create_pipeline(**kwargs) -> Pipeline:
    """Selection on the latest part of train, refit on all of it; the gate beside it."""
    return Pipeline(
        [
            Node(
                split_common_rows,
                ["model_input_train", PARAMS],
                ["model_input_common_fit", "model_input_common_validation"],
                name="split_common_rows",
            ),
            Node(
                compare_imbalance_strategies,
                ["model_input_common_fit", "model_input_common_validation", PARAMS],
                "model_common_imbalance",
                name="compare_imbalance_strategies",
            ),
            Node(
                tune_common_model,
                [
                    "model_input_common_fit",
                    "model_input_common_validation",
                    "model_common_imbalance",
                    PARAMS,
                ],
                "model_common_tuning",
                name="tune_common_model",
            ),
            Node(
                evaluate_baseline,
                ["model_input_common_fit", "model_input_common_validation", PARAMS],
                "model_common_baseline",
                name="evaluate_common_baseline",
            ),
            Node(
                build_common_query_rows,
                ["model_input_train", "feat_builder", PARAMS],
                "model_input_common_query_rows",
                name="build_common_query_rows",
            ),
            Node(
                fit_common_model,
                [
                    "model_input_train",
                    "model_common_imbalance",
                    "model_common_tuning",
                    PARAMS,
                    "model_input_common_query_rows",
                ],
                "model_common",
                name="fit_common_model",
            ),
            Node(
                report_common_model_selection,
                ["model_common_imbalance", "model_common_tuning", "model_common_baseline"],
                "reporting_common_model_selection",
                name="report_common_model_selection",
            ),
            Node(
                build_gate_query_rows,
                ["feat_registry_cases", "feat_builder", PARAMS],
                "model_input_gate_query_rows",
                name="build_gate_query_rows",
            ),
            Node(
                fit_gate_model,
                ["model_input_train", PARAMS, "model_input_gate_query_rows"],
                ["model_gate", "reporting_gate_model_metrics"],
                name="fit_gate_model",
            ),
        ]
    )
