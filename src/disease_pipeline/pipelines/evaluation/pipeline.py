"""``kedro run --pipeline=evaluation``: metrics, plots, model card and the acceptance gate."""

from kedro.pipeline import Node, Pipeline

from disease_pipeline.pipelines.features.nodes import assemble_feature_tables
from disease_pipeline.pipelines.features.pipeline import WAREHOUSE_TABLES

from .baselines import build_knowledge_baseline, fit_logistic_baseline, score_baselines
from .diagnostics import evaluate_robustness, explain_common_model, measure_serving_costs
from .evaluation_report import write_evaluation_report
from .figures import evaluate_with_intervals
from .gate import apply_acceptance_gate, verdict_markdown
from .nodes import evaluate_predictions, evaluate_subgroups, evaluate_temporal
from .recording_check import check_recording_styles
from .registry_check import check_registry_cases
from .report import collect_metrics, plot_evaluation, write_model_card
from .scoring import score_calibration_split, score_test_split
from .validation import cross_validate_common

PARAMS = "params:evaluation"


def create_pipeline(**kwargs) -> Pipeline:
    """Scores the calibration and test splits with the predictor from their warehouse
    tables (the serving path), computes every figure with its bootstrap interval, the
    baselines and the modality patterns, then lets the gate decide
    (``reporting_gate_verdict``)."""
    nodes = [
        Node(
            assemble_feature_tables,
            inputs={table: f"prm_{table}" for table in WAREHOUSE_TABLES}
            | {"feedback": "prm_feedback_encounters"},
            outputs="prm_evaluation_tables",
            name="assemble_evaluation_tables",
        ),
        Node(
            score_test_split,
            ["model_predictor", "model_input_test", "prm_evaluation_tables", PARAMS],
            "model_output_test_predictions",
            name="score_test_split",
        ),
        Node(
            score_calibration_split,
            ["model_predictor", "model_input_calibration", "prm_evaluation_tables", PARAMS],
            "model_output_calibration_predictions",
            name="score_calibration_split",
        ),
        Node(
            fit_logistic_baseline,
            ["model_input_train", "feat_builder", "params:common_model.baseline", PARAMS],
            "model_logistic_baseline",
            name="fit_logistic_baseline",
        ),
        Node(
            build_knowledge_baseline,
            "params:common_model.knowledge",
            "model_knowledge_baseline",
            name="build_knowledge_baseline",
        ),
        Node(
            score_baselines,
            {
                "model_input_test": "model_input_test",
                "prm_evaluation_tables": "prm_evaluation_tables",
                "logistic": "model_logistic_baseline",
                "knowledge": "model_knowledge_baseline",
                "params": PARAMS,
                "predictor": "model_predictor",
            },
            "model_output_baseline_predictions",
            name="score_baselines",
        ),
        Node(
            evaluate_with_intervals,
            [
                "model_output_test_predictions",
                "reporting_metrics_test",
                "model_output_baseline_predictions",
                "reporting_rare_model_validation",
                PARAMS,
            ],
            ["reporting_metrics_intervals", "reporting_modality_metrics"],
            name="evaluate_with_intervals",
        ),
        Node(
            evaluate_predictions,
            ["model_output_test_predictions", "model_output_calibration_predictions", PARAMS],
            [
                "reporting_metrics_test",
                "reporting_per_class_metrics",
                "reporting_operating_thresholds",
            ],
            name="evaluate_predictions",
        ),
        Node(
            evaluate_temporal,
            ["model_output_test_predictions", PARAMS],
            ["reporting_metrics_temporal", "reporting_temporal_metrics"],
            name="evaluate_temporal",
        ),
        Node(
            evaluate_subgroups,
            ["model_output_test_predictions", PARAMS],
            ["reporting_metrics_subgroups", "reporting_subgroup_metrics"],
            name="evaluate_subgroups",
        ),
        Node(
            cross_validate_common,
            ["model_input_train", "feat_builder", "model_input_cv_folds", PARAMS],
            ["reporting_metrics_cv", "reporting_cv_metrics"],
            name="cross_validate_common",
        ),
        Node(
            evaluate_robustness,
            [
                "model_predictor",
                "model_input_test",
                "prm_evaluation_tables",
                "model_output_test_predictions",
                PARAMS,
            ],
            "reporting_metrics_robustness",
            name="evaluate_robustness",
        ),
        Node(
            explain_common_model,
            ["model_predictor", "model_input_test", "feat_builder", PARAMS],
            ["reporting_shap_importance", "reporting_shap_plot", "reporting_metrics_explain"],
            name="explain_common_model",
        ),
        Node(
            measure_serving_costs,
            ["model_predictor", PARAMS],
            "reporting_metrics_serving",
            name="measure_serving_costs",
        ),
        Node(
            check_registry_cases,
            [
                "model_predictor",
                "feat_registry_cases",
                PARAMS,
                "params:common_model.gate.query_rows",
            ],
            "reporting_metrics_registry_served",
            name="check_registry_cases",
        ),
        Node(
            check_recording_styles,
            ["model_predictor", PARAMS],
            "reporting_metrics_recording",
            name="check_recording_styles",
        ),
        Node(
            plot_evaluation,
            ["model_output_test_predictions", PARAMS],
            [
                "reporting_confusion_matrix",
                "reporting_roc_curves",
                "reporting_pr_curves",
                "reporting_calibration_plot",
            ],
            name="plot_evaluation",
        ),
        Node(
            collect_metrics,
            [
                "reporting_metrics_test",
                "reporting_metrics_intervals",
                "reporting_metrics_temporal",
                "reporting_metrics_subgroups",
                "reporting_metrics_cv",
                "reporting_metrics_robustness",
                "reporting_metrics_explain",
                "reporting_metrics_serving",
                "reporting_metrics_registry_served",
                "reporting_metrics_recording",
            ],
            ["reporting_metrics", "reporting_mlflow_metrics"],
            name="collect_metrics",
        ),
        Node(
            apply_acceptance_gate,
            ["reporting_metrics", "params:evaluation.gate"],
            "reporting_gate_verdict",
            name="apply_acceptance_gate",
        ),
        Node(
            verdict_markdown,
            "reporting_gate_verdict",
            "reporting_gate_verdict_markdown",
            name="render_gate_verdict",
        ),
        Node(
            write_evaluation_report,
            [
                "reporting_metrics",
                "reporting_modality_metrics",
                "reporting_gate_verdict",
                PARAMS,
            ],
            "reporting_evaluation_markdown",
            name="write_evaluation_report",
        ),
        Node(
            write_model_card,
            [
                "reporting_metrics",
                "reporting_gate_verdict",
                "reporting_data_version",
                "reporting_split_report",
                PARAMS,
            ],
            "reporting_model_card",
            name="write_model_card",
        ),
    ]
    return Pipeline(nodes, tags="evaluation")
