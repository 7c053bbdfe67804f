"""The challenger part of ``kedro run --pipeline=retrain``: register, compare, promote.

``pipeline_registry.py`` runs the training stages (ingestion … drift) in front of it, so
``model_predictor``, the gate verdict and the splits are the retrained ones.
"""

from kedro.pipeline import Node, Pipeline

from .nodes import compare_with_champion, prepare_challenger, recent_labelled_traffic


def create_pipeline(**kwargs) -> Pipeline:
    """Challenger registration (the packaging candidate plus the feedback version, to
    alias ``challenger``), the recent labelled traffic, comparison with the champion on
    the frozen set and on that traffic, and the promotion request."""
    return Pipeline(
        [
            Node(
                prepare_challenger,
                {
                    "predictor": "model_predictor",
                    "gate_verdict": "reporting_gate_verdict",
                    "metrics": "reporting_metrics",
                    "data_version": "reporting_data_version",
                    "feedback": "prm_feedback_encounters",
                    "params": "params:packaging",
                },
                "registry_challenger_model",
                name="register_challenger",
            ),
            Node(
                recent_labelled_traffic,
                {
                    "prediction_log": "prm_prediction_log",
                    "feedback": "prm_feedback",
                    "feedback_encounters": "prm_feedback_encounters",
                    "params": "params:retrain",
                },
                "model_input_recent_labelled_traffic",
                name="select_recent_labelled_traffic",
            ),
            Node(
                compare_with_champion,
                {
                    "champion": "registry_champion",
                    "challenger": "registry_challenger_model",
                    "gate_verdict": "reporting_gate_verdict",
                    "frozen": "model_input_frozen_evaluation",
                    "model_input_test": "model_input_test",
                    "model_input_train": "model_input_train",
                    "model_input_calibration": "model_input_calibration",
                    "prm_evaluation_tables": "prm_evaluation_tables",
                    "evaluation_params": "params:evaluation",
                    "params": "params:retrain",
                    "recent": "model_input_recent_labelled_traffic",
                },
                [
                    "registry_challenger_comparison",
                    "registry_promotion",
                    "registry_retrain_mlflow_metrics",
                ],
                name="compare_with_champion",
            ),
        ],
        tags="retrain",
    )
