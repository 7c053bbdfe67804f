"""``kedro run --pipeline=drift``: training data against the latest period (test split)."""

from kedro.pipeline import Node, Pipeline

from .nodes import build_evidently_report, compute_feature_drift, summarise_drift


def create_pipeline(**kwargs) -> Pipeline:
    """PSI/KS per feature, an Evidently report and a JSON summary in 08_reporting."""
    return Pipeline(
        [
            Node(
                compute_feature_drift,
                ["model_input_train", "model_input_test", "feat_builder", "params:drift"],
                "reporting_drift_features",
                name="compute_feature_drift",
            ),
            Node(
                build_evidently_report,
                [
                    "model_input_train",
                    "model_input_test",
                    "reporting_drift_features",
                    "params:drift",
                ],
                ["reporting_drift_report", "reporting_drift_evidently_summary"],
                name="build_evidently_report",
            ),
            Node(
                summarise_drift,
                [
                    "reporting_drift_features",
                    "reporting_drift_evidently_summary",
                    "model_input_train",
                    "model_input_test",
                    "params:drift",
                ],
                ["reporting_drift_summary", "reporting_drift_mlflow_metrics"],
                name="summarise_drift",
            ),
        ]
    )
