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
                ["prm_monitoring_window_log", "prm_monitoring_window"],
                name="select_window",
            ),
            Node(
                live_features,
                ["prm_monitoring_window_log", "feat_builder", "params:monitor"],
                "model_input_monitoring_live",
                name="live_features",
            ),
            Node(
                reference_modality,
                ["model_input_train", "prm_vitals", "prm_labs"],
                "model_input_monitoring_reference",
                name="reference_modality",
            ),
            Node(
                feature_drift,
                [
                    "model_input_monitoring_reference",
                    "model_input_monitoring_live",
                    "feat_builder",
                    "params:monitor",
                ],
                ["reporting_monitoring_feature_drift", "reporting_monitoring_drift_by_modality"],
                name="monitor_feature_drift",
            ),
            Node(
                evidently_report,
                [
                    "model_input_monitoring_reference",
                    "model_input_monitoring_live",
                    "reporting_monitoring_feature_drift",
                    "prm_monitoring_window",
                    "params:monitor",
                ],
                [
                    "reporting_monitoring_evidently",
                    "reporting_monitoring_evidently_summary",
                    "reporting_monitoring_evidently_run",
                ],
                name="monitor_evidently_report",
            ),
            Node(
                prediction_drift,
                ["prm_monitoring_window_log", "model_output_test_predictions", "params:monitor"],
                "reporting_monitoring_prediction_drift",
                name="prediction_drift",
            ),
            Node(
                labelled_predictions,
                ["prm_monitoring_window_log", "prm_feedback"],
                "model_output_monitoring_labelled",
                name="labelled_predictions",
            ),
            Node(
                reference_predictions,
                ["model_output_test_predictions", "params:monitor.top_k"],
                "model_output_monitoring_reference",
                name="reference_predictions",
            ),
            Node(
                performance,
                [
                    "model_output_monitoring_labelled",
                    "model_output_monitoring_reference",
                    "params:monitor",
                ],
                ["reporting_monitoring_performance", "reporting_monitoring_subgroups"],
                name="live_performance",
            ),
            Node(
                challenger_comparison,
                [
                    "prm_monitoring_window_log",
                    "prm_prediction_log_shadow",
                    "prm_feedback",
                    "params:monitor",
                ],
                "reporting_monitoring_challenger",
                name="challenger_comparison",
            ),
            Node(
                service_health,
                ["prm_monitoring_window_log", "prm_monitoring_window"],
                "reporting_monitoring_health",
                name="service_health",
            ),
            Node(
                summarise_monitoring,
                [
                    "prm_monitoring_window",
                    "reporting_monitoring_feature_drift",
                    "reporting_monitoring_drift_by_modality",
                    "reporting_monitoring_evidently_summary",
                    "reporting_monitoring_prediction_drift",
                    "reporting_monitoring_performance",
                    "reporting_monitoring_health",
                    "reporting_monitoring_challenger",
                    "params:monitor",
                ],
                ["reporting_monitoring_summary", "reporting_monitoring_mlflow_metrics"],
                name="summarise_monitoring",
            ),
            Node(
                render_report,
                ["reporting_monitoring_summary", "reporting_monitoring_subgroups"],
                "reporting_monitoring_report",
                name="render_monitoring_report",
            ),
        ]
    )
