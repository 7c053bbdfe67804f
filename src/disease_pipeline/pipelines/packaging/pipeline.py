"""``kedro run --pipeline=packaging``: register the approved predictor as ``@champion``."""

from kedro.pipeline import Node, Pipeline

from .nodes import champion_registration


def create_pipeline(**kwargs) -> Pipeline:
    """One node; its output dataset (``registry_champion_model``) logs, registers and aliases;
    ``reporting_champion_registration`` records the decision for ``bento_packaging``."""
    return Pipeline(
        [
            Node(
                champion_registration,
                [
                    "model_predictor",
                    "reporting_gate_verdict",
                    "reporting_metrics",
                    "reporting_data_version",
                    "params:packaging",
                ],
                ["registry_champion_model", "reporting_champion_registration"],
                name="register_champion",
            )
        ],
        tags="packaging",
    )
