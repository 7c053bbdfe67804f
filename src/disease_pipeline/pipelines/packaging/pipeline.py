"""``kedro run --pipeline=packaging``: register the approved predictor as ``@champion``."""

from kedro.pipeline import Node, Pipeline

from .nodes import prepare_champion_candidate


def create_pipeline(**kwargs) -> Pipeline:
    """One node; its output dataset (``models_champion``) logs, registers and aliases."""
    return Pipeline(
        [
            Node(
                prepare_champion_candidate,
                [
                    "predictor",
                    "reporting_gate_verdict",
                    "reporting_metrics",
                    "reporting_data_version",
                    "params:packaging",
                ],
                "models_champion",
                name="register_champion",
            )
        ],
        tags="packaging",
    )
