"""``kedro run --pipeline=calibration``: calibrators, ECE report, reliability diagrams and
the assembled ``predictor``."""

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
                f"{name}_model",
                "params:calibration",
                f"params:calibration.models.{name}",
            ],
            [f"{name}_calibrator", f"{name}_calibration_report", f"reporting_reliability_{name}"],
            name=f"calibrate_{name}_model",
        )
        for name in MODELS
    ]
    nodes += [
        Node(
            collect_calibrators,
            {name: f"{name}_calibrator" for name in MODELS}
            | {f"{name}_report": f"{name}_calibration_report" for name in MODELS},
            ["calibrators", "reporting_calibration_ece"],
            name="collect_calibrators",
        ),
        Node(
            fit_blend,
            [
                "model_input_calibration",
                "common_model",
                "common_calibrator",
                "feature_builder",
                "params:calibration.knowledge_blend",
            ],
            ["knowledge_blend", "reporting_knowledge_blend"],
            name="fit_knowledge_blend",
        ),
        Node(
            assemble_predictor,
            {
                "rare_model": "rare_model",
                "feature_builder": "feature_builder",
                "common_model": "common_model",
                "gate_model": "gate_model",
                "severity_model": "severity_model",
                "calibrators": "calibrators",
                "knowledge_blend": "knowledge_blend",
                "params": "params:calibration",
            },
            "predictor",
            name="assemble_predictor",
        ),
    ]
    return Pipeline(nodes)
