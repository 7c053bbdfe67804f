"""``kedro run --pipeline=monitor``: a window of the prediction log and the feedback →
drift, live performance, service health (data/08_reporting/monitoring, MLflow)."""

from kedro.pipeline import Node, Pipeline

from .challenger import challenger_comparison
from .nodes import (
    evidently_report,
    feature_drift,
    prediction_drift,
    reference_modality,
    service_health,
)
from .performance import labelled_predictions, performance, reference_predictions
from .report import render_report, summarise_monitoring
from .window import live_features, select_window


def create_pipeline(**kwargs) -> Pipeline:
    """Window → features → drift / performance / health → summary, report, metrics."""
    return Pipeline(
        [
            Node(
                select_window,
                ["prm_prediction_log", "params:monitor"],
                ["monitor_window_log", "monitor_window"],
                name="select_window",
            ),
            Node(
                live_features,
                ["monitor_window_log", "feature_builder", "params:monitor"],
                "monitor_live_features",
                name="live_features",
            ),
            Node(
                reference_modality,
                ["model_input_train", "prm_vitals", "prm_labs"],
                "monitor_reference_features",
                name="reference_modality",
            ),
            Node(
                feature_drift,
                [
                    "monitor_reference_features",
                    "monitor_live_features",
                    "feature_builder",
                    "params:monitor",
                ],
                ["reporting_monitoring_feature_drift", "reporting_monitoring_drift_by_modality"],
                name="monitor_feature_drift",
            ),
            Node(
                evidently_report,
                [
                    "monitor_reference_features",
                    "monitor_live_features",
                    "reporting_monitoring_feature_drift",
                    "monitor_window",
                    "params:monitor",
                ],
                [
                    "reporting_monitoring_evidently",
                    "monitor_evidently_summary",
                    "reporting_monitoring_evidently_run",
                ],
                name="monitor_evidently_report",
            ),
            Node(
                prediction_drift,
                ["monitor_window_log", "model_output_test_predictions", "params:monitor"],
                "monitor_prediction_drift",
                name="prediction_drift",
            ),
            Node(
                labelled_predictions,
                ["monitor_window_log", "prm_feedback"],
                "monitor_labelled",
                name="labelled_predictions",
            ),
            Node(
                reference_predictions,
                ["model_output_test_predictions", "params:monitor.top_k"],
                "monitor_reference_predictions",
                name="reference_predictions",
            ),
            Node(
                performance,
                ["monitor_labelled", "monitor_reference_predictions", "params:monitor"],
                ["monitor_performance", "reporting_monitoring_subgroups"],
                name="live_performance",
            ),
            Node(
                challenger_comparison,
                [
                    "monitor_window_log",
                    "prm_prediction_log_shadow",
                    "prm_feedback",
                    "params:monitor",
                ],
                "monitor_challenger",
                name="challenger_comparison",
            ),
            Node(
                service_health,
                ["monitor_window_log", "monitor_window"],
                "monitor_health",
                name="service_health",
            ),
            Node(
                summarise_monitoring,
                [
                    "monitor_window",
                    "reporting_monitoring_feature_drift",
                    "reporting_monitoring_drift_by_modality",
                    "monitor_evidently_summary",
                    "monitor_prediction_drift",
                    "monitor_performance",
                    "monitor_health",
                    "monitor_challenger",
                    "params:monitor",
                ],
                ["monitoring_summary", "reporting_monitoring_mlflow_metrics"],
                name="summarise_monitoring",
            ),
            Node(
                render_report,
                ["monitoring_summary", "reporting_monitoring_subgroups"],
                "reporting_monitoring_report",
                name="render_monitoring_report",
            ),
        ]
    )
