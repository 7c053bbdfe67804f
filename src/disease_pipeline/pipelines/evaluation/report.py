"""Evaluation outputs for people: figures, the metrics file, MLflow metrics, the model card."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from disease_pipeline.core.levels import SEVERITY_LEVELS

from . import plots
from .evaluation_report import with_interval
from .metrics import one_hot
from .nodes import severe_score
from .scoring import class_columns, probabilities


def plot_evaluation(
    model_output_test_predictions: pd.DataFrame, params: dict[str, Any]
) -> tuple[Figure, Figure, Figure, Figure]:
    """Confusion matrix of the common model, ROC and precision-recall curves (gate P(rare),
    high/critical alert, common micro-average and the most frequent common diseases) and
    the reliability diagram."""
    test = model_output_test_predictions
    classes = class_columns(test, "common")
    common = test[test["label_category"] == "COMMON"]
    proba = probabilities(common, "common")
    labels = common["label_disease"].to_numpy()
    predicted = np.asarray(classes)[proba.argmax(axis=1)] if len(common) else np.array([])
    confusion = plots.confusion_matrix_figure(labels, predicted, classes)

    truth = one_hot(labels, classes)
    curves = {
        "gate P(rare)": ((test["label_category"] == "RARE").to_numpy(float), test["p_rare"]),
        "severity high/critical": (
            test["label_severity"].isin(["high", "critical"]).to_numpy(float),
            severe_score(test),
        ),
        "common (micro-average)": (truth.ravel(), proba.ravel()),
    }
    frequent = common["label_disease"].value_counts().head(int(params["plots"]["max_classes"]))
    for code in frequent.index:
        j = classes.index(code)
        curves[f"common {code}"] = (truth[:, j], proba[:, j])

    severity = test[test["label_severity"].isin(SEVERITY_LEVELS)]
    severity_proba = probabilities(severity, "severity")
    severity_classes = class_columns(severity, "severity")
    reliability = {
        "common (top class)": (
            proba.max(axis=1) if len(common) else np.array([]),
            predicted == labels,
        ),
        "gate P(rare)": curves["gate P(rare)"][::-1],
        "severity (top level)": (
            severity_proba.max(axis=1) if len(severity) else np.array([]),
            np.asarray(severity_classes)[severity_proba.argmax(axis=1)]
            == severity["label_severity"].to_numpy()
            if len(severity)
            else np.array([]),
        ),
    }
    return (
        confusion,
        plots.roc_figure(curves),
        plots.pr_figure(curves),
        plots.reliability_figure(reliability, int(params["ece_bins"])),
    )


def collect_metrics(*parts: dict[str, float]) -> tuple[dict[str, float], dict[str, dict]]:
    """All metric dicts merged (``reporting_metrics``) and the finite ones in the format of
    kedro-mlflow's ``MlflowMetricsHistoryDataset``."""
    merged: dict[str, float] = {}
    for part in parts:
        overlap = set(merged) & set(part)
        if overlap:
            raise ValueError(f"evaluation: metric names computed twice: {sorted(overlap)}")
        merged |= {key: float(value) for key, value in part.items()}
    mlflow_metrics = {
        key: {"value": value, "step": 0} for key, value in merged.items() if math.isfinite(value)
    }
    return merged, mlflow_metrics


_CARD_METRICS = (
    ("Common cases: top-1 / top-3 / top-10", ("common.top1", "common.top3", "common.top10")),
    ("Common diseases, macro AUROC", "common.auroc_macro"),
    ("Common diseases, macro AUPRC", "common.auprc_macro"),
    ("Common diseases, macro F1", "common.f1_macro"),
    (
        "Differential top-1 / top-3 / top-5",
        ("differential.top1", "differential.top3", "differential.top5"),
    ),
    ("Rare cases: top-5 of the differential", "differential.rare_top5"),
    ("Rare diseases: macro AUROC (one-vs-rest, all test cases)", "differential.rare_macro_auroc"),
    (
        "Rare diseases: macro AUROC among rare cases only",
        "differential.rare_macro_auroc_within_rare",
    ),
    ("Gate P(rare) AUROC", "gate.auroc"),
    (
        "Symptoms-only common cases: top-1 / top-3",
        ("modality.symptoms_only.top1", "modality.symptoms_only.top3"),
    ),
    ("Common top-1: champion minus logistic baseline (paired)", "compare.logistic.top1_diff"),
    ("Common top-3: champion minus knowledge scorer (paired)", "compare.knowledge.top3_diff"),
    ("Rare-case recall at the operating threshold", "gate.rare_recall"),
    ("High/critical severity: sensitivity at the operating threshold", "severity.op.sensitivity"),
    ("High/critical severity: precision there", "severity.op.precision"),
    ("ECE common / gate / severity", ("common.ece", "gate.ece", "severity.ece")),
    ("Worst ECE", "calibration.ece_max"),
    ("Brier score common", "common.brier"),
    ("Cross-validated macro AUROC (mean ± sd)", ("cv.auroc_macro_mean", "cv.auroc_macro_std")),
    ("AUROC loss with 20 % inputs missing (relative)", "robustness.auroc_degradation"),
    ("Largest subgroup AUROC gap (sex, age band)", "subgroup.auroc_gap_max"),
    ("Latency p50 / p95 (ms)", ("serving.latency_ms_p50", "serving.latency_ms_p95")),
    ("Model size (MB)", "serving.model_size_mb"),
    ("SHAP explanation of one patient (s)", "explain.seconds_per_patient"),
)


def write_model_card(
    reporting_metrics: dict[str, float],
    reporting_gate_verdict: dict[str, Any],
    reporting_data_version: dict[str, Any],
    reporting_split_report: dict[str, Any],
    params: dict[str, Any],
) -> str:
    """Markdown model card: data version, intended use, metrics, gate verdict and limits."""
    card = params["model_card"]
    lines = [
        f"# Model card — {card['name']}",
        "",
        "## Intended use",
        card["intended_use"].strip(),
        "",
        "## Data",
        f"- Data version: `{reporting_data_version.get('data_version', 'unknown')}`",
    ]
    splits = reporting_split_report.get("splits", {})
    for split in ("train", "calibration", "test"):
        info = splits.get(split, {})
        if isinstance(info, dict) and info:
            lines.append(
                f"- {split}: {info.get('encounters', '?')} encounters, "
                f"{info.get('patients', '?')} patients, {info.get('start_min', '?')} to "
                f"{info.get('start_max', '?')}"
            )
    lines += [
        "",
        "## Metrics (test split, the latest period)",
        "",
        "Values with their 95 % bootstrap interval where the evaluation computes one; the "
        "baselines beside each figure are in `evaluation.md`.",
        "",
        "| metric | value [95 % CI] |",
        "|---|---|",
    ]
    for title, names in _CARD_METRICS:
        keys = names if isinstance(names, tuple) else (names,)
        values = " / ".join(with_interval(reporting_metrics, k) for k in keys)
        lines.append(f"| {title} | {values} |")
    status = "approved" if reporting_gate_verdict["approved"] else "rejected"
    lines += [
        "",
        f"## Acceptance gate: {status}",
        reporting_gate_verdict["reason"].capitalize() + ". See `gate_verdict.md`.",
        "",
        "## Simulated data: assumptions and limits",
        card["simulator"]["summary"].strip(),
        "",
        *[f"- {item}" for item in card["simulator"]["assumptions"]],
        "",
        "## Limits",
        *[f"- {limit}" for limit in card["limits"]],
        "",
    ]
    return "\n".join(lines)
