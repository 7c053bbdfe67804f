"""Evaluation of the predictor on the test split: discrimination, calibration, operating
thresholds, temporal stability and subgroup gaps.

Every node reads the scored splits written by :mod:`.scoring` (one row per encounter
with labels and probabilities) and returns plain dicts/DataFrames; metric names are
dotted (``common.auroc_macro``) and are the keys the acceptance gate refers to.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.core.levels import SEVERE_LEVELS

from . import metrics as m
from .scoring import RARE_PREFIX, class_columns, probabilities


def common_metrics(frame: pd.DataFrame, bins: int) -> tuple[dict[str, float], pd.DataFrame]:
    """Common-model metrics on the COMMON cases of ``frame`` and its per-class table."""
    classes = class_columns(frame, "common")
    common = frame[frame["label_category"] == "COMMON"]
    labels, proba = common["label_disease"].to_numpy(), probabilities(common, "common")
    table = m.per_class_table(labels, proba, classes)
    predicted = np.asarray(classes)[np.argmax(proba, axis=1)] if len(common) else np.array([])
    out = {
        "common.n": float(len(common)),
        "common.n_classes": float(len(classes)),
        "common.auroc_macro": m.macro(table, "auroc"),
        "common.auprc_macro": m.macro(table, "auprc"),
        "common.f1_macro": m.macro(table, "f1"),
        "common.sensitivity_macro": m.macro(table, "sensitivity"),
        "common.specificity_macro": m.macro(table, "specificity"),
        "common.accuracy": float(np.mean(predicted == labels)) if len(common) else np.nan,
        "common.ece": m.top_label_ece(labels, proba, classes, bins) if len(common) else np.nan,
        "common.brier": m.brier_score(labels, proba, classes),
        "common.log_loss": m.log_loss(labels, proba, classes),
    }
    return out, table.assign(model="common")


def _severity_metrics(frame: pd.DataFrame, bins: int) -> tuple[dict[str, float], pd.DataFrame]:
    classes = class_columns(frame, "severity")
    rows = frame[frame["label_severity"].isin(classes)]
    labels, proba = rows["label_severity"].to_numpy(), probabilities(rows, "severity")
    table = m.per_class_table(labels, proba, classes)
    out = {
        "severity.n": float(len(rows)),
        "severity.auroc_macro": m.macro(table, "auroc"),
        "severity.f1_macro": m.macro(table, "f1"),
        "severity.ece": m.top_label_ece(labels, proba, classes, bins) if len(rows) else np.nan,
        "severity.brier": m.brier_score(labels, proba, classes),
    }
    return out, table.assign(model="severity")


def severe_score(frame: pd.DataFrame) -> np.ndarray:
    """P(high) + P(critical): the score behind the high/critical severity alert."""
    return sum(frame[f"p_severity__{level}"].to_numpy(float) for level in SEVERE_LEVELS)


def _operating_point(
    prefix: str,
    calibration: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    target: float,
) -> dict[str, float]:
    """Threshold for ``target`` sensitivity chosen on the calibration split and measured on
    test (the operating point the gate judges), plus the same threshold fitted on test."""
    (y_cal, s_cal), (y_test, s_test) = calibration, test
    chosen = m.threshold_for_sensitivity(y_cal, s_cal, target)
    at_chosen = m.binary_at_threshold(y_test, s_test, chosen)
    on_test = m.threshold_for_sensitivity(y_test, s_test, target)
    at_test = m.binary_at_threshold(y_test, s_test, on_test)
    return {
        f"{prefix}.threshold": chosen,
        f"{prefix}.sensitivity": at_chosen["sensitivity"],
        f"{prefix}.specificity": at_chosen["specificity"],
        f"{prefix}.precision": at_chosen["precision"],
        f"{prefix}.flagged_share": at_chosen["flagged_share"],
        f"{prefix}.test_threshold_95": on_test,
        f"{prefix}.test_precision_at_95": at_test["precision"],
    }


def evaluate_predictions(
    model_output_test_predictions: pd.DataFrame,
    model_output_calibration_predictions: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[dict[str, float], pd.DataFrame, dict[str, Any]]:
    """Headline metrics of the test split, the per-class table and the operating thresholds.

    - common model (COMMON test cases, its classes): AUROC/AUPRC/F1/sensitivity/
      specificity per class and macro, accuracy, ECE, Brier, log-loss;
    - differential (all test cases): top-k accuracy for ``params["top_k"]``; on RARE
      cases too; the macro one-vs-rest AUROC of every rare disease with a test case,
      scored by P(rare) · P(d | rare) over all candidates (``differential.rare_macro_auroc``)
      and by its probability in the listed differential, 0 when not listed (a lower
      bound, ``differential.rare_macro_auroc_listed``);
    - gate P(rare): AUROC, AUPRC, ECE, Brier; the threshold giving
      ``params["target_sensitivity"]`` on the calibration split and the rare-case recall,
      specificity and precision it gives on test;
    - severity: per-level table, macro AUROC, ECE, Brier; the high/critical alert
      (P(high)+P(critical)) at the threshold chosen the same way.
    """
    test, cal = model_output_test_predictions, model_output_calibration_predictions
    bins, target = int(params["ece_bins"]), float(params["target_sensitivity"])
    common, common_table = common_metrics(test, bins)
    severity, severity_table = _severity_metrics(test, bins)
    out: dict[str, float] = {"test.n": float(len(test)), **common, **severity}

    labels, ranked = test["label_disease"].to_numpy(), list(test["ranked_codes"])
    rare = (test["label_category"] == "RARE").to_numpy()
    for k in params["top_k"]:
        out[f"differential.top{k}"] = m.top_k_accuracy(labels, ranked, int(k))
        out[f"differential.rare_top{k}"] = m.top_k_accuracy(
            labels[rare], [r for r, flag in zip(ranked, rare, strict=True) if flag], int(k)
        )

    if "ranked_probabilities" in test:
        auroc, _ = m.listed_disease_macro_auroc(
            labels, ranked, list(test["ranked_probabilities"]), labels[rare]
        )
        out["differential.rare_macro_auroc_listed"] = auroc
    rare_columns = [c for c in test.columns if c.startswith(RARE_PREFIX)]
    if rare_columns:
        scores = {c[len(RARE_PREFIX) :]: test[c].to_numpy(float) for c in rare_columns}
        auroc, n_diseases = m.macro_disease_auroc(labels, scores)
        out["differential.rare_macro_auroc"] = auroc
        out["differential.rare_diseases_evaluated"] = float(n_diseases)
        # the harder question: which rare disease, among rare cases only
        out["differential.rare_macro_auroc_within_rare"], _ = m.macro_disease_auroc(
            labels[rare], {d: score[rare] for d, score in scores.items()}
        )

    y_rare, p_rare = rare.astype(float), test["p_rare"].to_numpy(float)
    y_rare_cal = (cal["label_category"] == "RARE").to_numpy(float)
    out |= {
        "gate.n_rare": float(y_rare.sum()),
        "gate.auroc": m.binary_auroc(y_rare, p_rare),
        "gate.auprc": m.binary_auprc(y_rare, p_rare),
        "gate.ece": m.binary_ece(y_rare, p_rare, bins),
        "gate.brier": float(np.mean((p_rare - y_rare) ** 2)) if len(test) else np.nan,
    }
    out |= _operating_point(
        "gate.op", (y_rare_cal, cal["p_rare"].to_numpy(float)), (y_rare, p_rare), target
    )
    out["gate.rare_recall"] = out["gate.op.sensitivity"]

    y_severe = test["label_severity"].isin(SEVERE_LEVELS).to_numpy(float)
    y_severe_cal = cal["label_severity"].isin(SEVERE_LEVELS).to_numpy(float)
    severe = severe_score(test)
    out |= {
        "severity.severe_n": float(y_severe.sum()),
        "severity.severe_auroc": m.binary_auroc(y_severe, severe),
        "severity.severe_sensitivity_argmax": float(
            test.loc[y_severe == 1, "severity_pred"].isin(SEVERE_LEVELS).mean()
        )
        if y_severe.sum()
        else np.nan,
    }
    out |= _operating_point(
        "severity.op", (y_severe_cal, severe_score(cal)), (y_severe, severe), target
    )
    eces = [out["common.ece"], out["gate.ece"], out["severity.ece"]]
    out["calibration.ece_max"] = float(np.nanmax(eces)) if np.isfinite(eces).any() else np.nan
    thresholds = {
        "target_sensitivity": target,
        "chosen_on": "model_input_calibration",
        "p_rare": out["gate.op.threshold"],
        "p_high_or_critical": out["severity.op.threshold"],
    }
    return out, pd.concat([common_table, severity_table], ignore_index=True), thresholds


def evaluate_temporal(
    model_output_test_predictions: pd.DataFrame, params: dict[str, Any]
) -> tuple[dict[str, float], pd.DataFrame]:
    """Stability in time: the test split (the latest period) cut into ``temporal_periods``
    consecutive periods of equal size; common macro AUROC, top-1 and gate AUROC per period."""
    test = model_output_test_predictions.sort_values("start")
    periods = max(1, int(params["temporal_periods"]))
    rows = []
    for index, positions in enumerate(np.array_split(np.arange(len(test)), periods)):
        chunk = test.iloc[positions]
        if chunk.empty:
            continue
        common, _ = common_metrics(chunk, int(params["ece_bins"]))
        rows.append(
            {
                "period": index + 1,
                "from": str(chunk["start"].min()),
                "to": str(chunk["start"].max()),
                "n": len(chunk),
                "common_auroc_macro": common["common.auroc_macro"],
                "top1": m.top_k_accuracy(
                    chunk["label_disease"].to_numpy(), list(chunk["ranked_codes"]), 1
                ),
                "gate_auroc": m.binary_auroc(
                    (chunk["label_category"] == "RARE").to_numpy(float),
                    chunk["p_rare"].to_numpy(float),
                ),
            }
        )
    table = pd.DataFrame(rows)
    auroc = table["common_auroc_macro"] if len(table) else pd.Series(dtype=float)
    out = {
        "temporal.periods": float(len(table)),
        "temporal.common_auroc_min": float(auroc.min()) if auroc.notna().any() else np.nan,
        "temporal.common_auroc_max": float(auroc.max()) if auroc.notna().any() else np.nan,
        "temporal.top1_min": float(table["top1"].min()) if len(table) else np.nan,
    }
    return out, table


def age_band(age: pd.Series, edges: list[float]) -> pd.Series:
    """Age bands ``[a, b)`` from ``edges`` (e.g. 0, 18, 40, 65, 200) as labels ``"18-39"``."""
    labels = [
        f"{int(a)}-{int(b) - 1}" if b < 150 else f"{int(a)}+"
        for a, b in zip(edges, edges[1:], strict=False)
    ]
    bands = pd.cut(age, bins=edges, labels=labels, right=False)
    return bands.cat.add_categories("unknown").fillna("unknown").astype(str)


def evaluate_subgroups(
    model_output_test_predictions: pd.DataFrame, params: dict[str, Any]
) -> tuple[dict[str, float], pd.DataFrame]:
    """Common macro AUROC and top-1 per sex and per age band; the gap is max - min over the
    groups with at least ``subgroups.min_group_size`` cases (smaller groups are listed
    but not compared)."""
    config = params["subgroups"]
    test = model_output_test_predictions.assign(
        age_band=lambda f: age_band(f["age_years"], list(config["age_edges"]))
    )
    rows = []
    for attribute in ("sex", "age_band"):
        for group, chunk in test.groupby(attribute, dropna=False):
            common, _ = common_metrics(chunk, int(params["ece_bins"]))
            rows.append(
                {
                    "attribute": attribute,
                    "group": str(group),
                    "n": len(chunk),
                    "compared": len(chunk) >= int(config["min_group_size"]),
                    "common_auroc_macro": common["common.auroc_macro"],
                    "top1": m.top_k_accuracy(
                        chunk["label_disease"].to_numpy(), list(chunk["ranked_codes"]), 1
                    ),
                }
            )
    table = pd.DataFrame(rows)
    out: dict[str, float] = {}
    for attribute in ("sex", "age_band"):
        compared = table[(table["attribute"] == attribute) & table["compared"]]
        auroc = compared["common_auroc_macro"].dropna()
        out[f"subgroup.{attribute}.groups"] = float(len(auroc))
        out[f"subgroup.{attribute}.auroc_gap"] = (
            float(auroc.max() - auroc.min()) if len(auroc) >= 2 else np.nan
        )
        out[f"subgroup.{attribute}.top1_gap"] = (
            float(compared["top1"].max() - compared["top1"].min()) if len(compared) >= 2 else np.nan
        )
    gaps = [out["subgroup.sex.auroc_gap"], out["subgroup.age_band.auroc_gap"]]
    out["subgroup.auroc_gap_max"] = float(np.nanmax(gaps)) if np.isfinite(gaps).any() else np.nan
    return out, table
