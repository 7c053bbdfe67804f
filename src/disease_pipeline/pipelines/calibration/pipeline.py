"""``kedro run --pipeline=calibration``: calibrators, ECE report, reliability diagrams and
the assembled ``model_predictor``."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from disease_pipeline.pipelines.calibration.nodes import (
    assemble_predictor,
    calibrate_model,
    collect_calibrators,
    fit_blend,
)

MODELS = ("common", "gate", "severity")


def create_pipeline(**kwargs) -> Pipeline:
    """One calibration node per model, then the calibrators dict and the predictor."""
    nodes = [
        Node(
            calibrate_model,
            [
                "model_input_calibration",
                f"model_{name}",
                "params:calibration",
                f"params:calibration.models.{name}",
            ],
            [
                f"model_calibrator_{name}",
                f"model_calibration_report_{name}",
                f"reporting_reliability_{name}",
            ],
            name=f"calibrate_{name}_model",
        )
        for name in MODELS
    ]
    nodes += [
        Node(
            collect_calibrators,
            {name: f"model_calibrator_{name}" for name in MODELS}
            | {f"{name}_report": f"model_calibration_report_{name}" for name in MODELS},
            ["model_calibrators", "reporting_calibration_ece"],
            name="collect_calibrators",
        ),
        Node(
            fit_blend,
            [
                "model_input_calibration",
                "model_common",
                "model_calibrator_common",
                "feat_builder",
                "params:calibration.knowledge_blend",
            ],
            ["model_knowledge_blend", "reporting_knowledge_blend"],
            name="fit_knowledge_blend",
        ),
        Node(
            assemble_predictor,
            {
                "rare_model": "model_rare",
                "feature_builder": "feat_builder",
                "common_model": "model_common",
                "gate_model": "model_gate",
                "severity_model": "model_severity",
                "calibrators": "model_calibrators",
                "knowledge_blend": "model_knowledge_blend",
                "params": "params:calibration",
            },
            "model_predictor",
            name="assemble_predictor",
        ),
    ]
    return Pipeline(nodes)
