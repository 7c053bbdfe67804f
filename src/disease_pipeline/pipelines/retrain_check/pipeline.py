"""``kedro run --pipeline=retrain_check``: decide whether to retrain, and log why."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    build_feedback_encounters,
    build_feedback_labels,
    decide_retraining,
    drop_feedback_duplicates,
)

#: warehouse tables the feedback is compared with (``prm_<table>``, as in ``features``)
WAREHOUSE_TABLES = ("patients", "encounters", "symptoms", "vitals", "labs", "diagnoses")


def create_pipeline(**kwargs) -> Pipeline:
    """Feedback → trusted labels → labelled encounters → without those that repeat an
    exported encounter (the train pipeline's feedback source); labels + monitoring
    summary + registry + duplicate counts → decision."""
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
                ["prm_feedback_encounters_unchecked", "reporting_feedback_unmatched"],
                name="build_feedback_encounters",
            ),
            Node(
                drop_feedback_duplicates,
                {"feedback": "prm_feedback_encounters_unchecked"}
                | {table: f"prm_{table}" for table in WAREHOUSE_TABLES}
                | {
                    "builder": "feat_trained_builder",
                    "registry_sources": "params:features.registry_sources",
                    "chunk_size": "params:features.chunk_size",
                    "params": "params:retrain",
                },
                [
                    "prm_feedback_encounters",
                    "reporting_feedback_duplicates",
                    "reporting_feedback_duplicate_counts",
                ],
                name="drop_feedback_duplicates",
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
                    "duplicates": "reporting_feedback_duplicate_counts",
                },
                ["reporting_retrain_decision", "reporting_retrain_check_mlflow_metrics"],
                name="decide_retraining",
            ),
        ],
        tags="retrain_check",
    )
