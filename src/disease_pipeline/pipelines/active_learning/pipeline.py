"""``kedro run --pipeline=active_learning``: prediction log + feedback → review queue."""

from kedro.pipeline import Node, Pipeline

from .nodes import build_review_queue


def create_pipeline(**kwargs) -> Pipeline:
    """One node; the queue is a warehouse table (``prm_review_queue``)."""
    return Pipeline(
        [
            Node(
                build_review_queue,
                [
                    "prm_prediction_log",
                    "prm_feedback",
                    "params:active_learning",
                    "prm_prediction_log_shadow",
                ],
                ["prm_review_queue", "reporting_review_queue_summary"],
                name="build_review_queue",
            )
        ],
        tags="active_learning",
    )
