"""``kedro run --pipeline=retrain_check``: decide whether to retrain, and log why."""

from kedro.pipeline import Node, Pipeline

from .nodes import build_feedback_encounters, build_feedback_labels, decide_retraining


def create_pipeline(**kwargs) -> Pipeline:
    """Feedback → trusted labels → labelled encounters (the train pipeline's feedback
    source); labels + monitoring summary + registry → decision."""
    return Pipeline(
        [
            Node(
                build_feedback_labels,
                ["prm_feedback", "params:retrain"],
                ["prm_feedback_labels", "reporting_feedback_excluded"],
                name="build_feedback_labels",
            ),
            Node(
                build_feedback_encounters,
                ["prm_feedback_labels", "prm_prediction_log"],
                ["prm_feedback_encounters", "reporting_feedback_unmatched"],
                name="build_feedback_encounters",
            ),
            Node(
                decide_retraining,
                {
                    "summary": "reporting_monitoring_summary",
                    "labelled": "prm_feedback_labels",
                    "excluded": "reporting_feedback_excluded",
                    "registry": "registry_state",
                    "params": "params:retrain",
                    "now": "params:retrain.now",
                },
                ["reporting_retrain_decision", "reporting_retrain_check_mlflow_metrics"],
                name="decide_retraining",
            ),
        ],
        tags="retrain_check",
    )
