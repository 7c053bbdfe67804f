"""Robustness to missing inputs, SHAP explanations and serving costs of the predictor."""

from __future__ import annotations

import pickle
import time
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from . import metrics as m
from .nodes import common_metrics
from .plots import importance_figure
from .scoring import LABEL_COLUMNS, feature_matrix, score_tables, split_tables

_TREE_ATTRIBUTES = ("model", "model_", "estimator", "estimator_", "classifier", "booster")


#: warehouse tables whose rows are clinical inputs (dropped by the robustness check)
INPUT_TABLES = ("symptoms", "vitals", "labs")


def drop_inputs(tables: dict[str, pd.DataFrame], rate: float, seed: int) -> dict[str, pd.DataFrame]:
    """The tables with each symptom, vital-sign and lab row dropped with probability
    ``rate`` (seeded): inputs the clinician did not record."""
    rng = np.random.default_rng(seed)
    out = dict(tables)
    for name in INPUT_TABLES:
        if name in tables:
            out[name] = tables[name][rng.random(len(tables[name])) >= rate]
    return out


def evaluate_robustness(
    predictor: Any,
    model_input_test: pd.DataFrame,
    prm_evaluation_tables: dict[str, pd.DataFrame],
    model_output_test_predictions: pd.DataFrame,
    params: dict[str, Any],
) -> dict[str, float]:
    """Scores the test split again, through ``predict_tables`` as the service would, with
    ``robustness.missing_rate`` of its recorded inputs (symptom, vital-sign and lab rows)
    dropped at random (seeded), and reports the relative loss of common macro AUROC,
    top-1 and gate AUROC, and the log-loss increase."""
    config = params["robustness"]
    rate = float(config["missing_rate"])
    if not 0 < rate < 1:
        raise ValueError(f"evaluation.robustness.missing_rate must be in (0, 1), got {rate}")
    ids = model_input_test["encounter_id"].astype(str).tolist()
    tables = drop_inputs(split_tables(prm_evaluation_tables, ids), rate, int(params["seed"]))
    kept = sum(len(tables[t]) for t in INPUT_TABLES if t in tables)
    total = sum(len(split_tables(prm_evaluation_tables, ids)[t]) for t in INPUT_TABLES)
    scored = score_tables(
        predictor,
        tables,
        ids,
        top_k=int(params["scoring_top_k"]),
        batch_size=int(params["batch_size"]),
        desc="evaluation: scoring with missing inputs",
    )
    masked = pd.concat(
        [
            model_input_test[list(LABEL_COLUMNS)].reset_index(drop=True),
            scored.reset_index(drop=True),
        ],
        axis=1,
    )
    full = model_output_test_predictions
    bins = int(params["ece_bins"])
    before, _ = common_metrics(full, bins)
    after, _ = common_metrics(masked, bins)

    def relative_loss(a: float, b: float) -> float:
        return float((a - b) / a) if a and np.isfinite(a) and np.isfinite(b) else np.nan

    top1 = [
        m.top_k_accuracy(f["label_disease"].to_numpy(), list(f["ranked_codes"]), 1)
        for f in (full, masked)
    ]
    gate = [
        m.binary_auroc((f["label_category"] == "RARE").to_numpy(float), f["p_rare"].to_numpy(float))
        for f in (full, masked)
    ]
    return {
        "robustness.missing_rate": rate,
        "robustness.inputs_dropped": float(1 - kept / total) if total else np.nan,
        "robustness.common_auroc_missing": after["common.auroc_macro"],
        "robustness.auroc_degradation": relative_loss(
            before["common.auroc_macro"], after["common.auroc_macro"]
        ),
        "robustness.top1_degradation": relative_loss(*top1),
        "robustness.gate_auroc_degradation": relative_loss(*gate),
        "robustness.log_loss_increase": after["common.log_loss"] - before["common.log_loss"],
    }


def tree_model(model: Any) -> Any:
    """The XGBoost estimator inside ``model`` (itself, or one of its usual attributes)."""
    from xgboost import XGBModel

    seen = [model]
    while seen:
        candidate = seen.pop(0)
        if isinstance(candidate, XGBModel):
            return candidate
        seen += [getattr(candidate, a) for a in _TREE_ATTRIBUTES if hasattr(candidate, a)]
    raise TypeError(
        f"evaluation.shap: no XGBoost model found in the common model ({type(model).__name__}); "
        f"looked at attributes {_TREE_ATTRIBUTES}"
    )


def mean_abs_shap(values: Any, n_features: int) -> np.ndarray:
    """Mean |SHAP| per feature over rows and classes, whatever shap's output layout:
    (rows, features, classes) in shap 0.51 multiclass, a list per class, or (rows, features)."""
    if isinstance(values, list):
        values = np.stack(values, axis=-1)
    values = np.abs(np.asarray(values, dtype=float))
    if values.ndim == 3 and values.shape[1] != n_features and values.shape[2] == n_features:
        values = np.moveaxis(values, 1, 2)
    axes = (0, 2) if values.ndim == 3 else (0,)
    return values.mean(axis=axes)


def explain_common_model(
    predictor: Any, model_input_test: pd.DataFrame, feature_builder: Any, params: dict[str, Any]
) -> tuple[pd.DataFrame, Figure, dict[str, float]]:
    """Global importance (mean |SHAP| on a seeded sample of the test split) with
    ``shap.TreeExplainer`` on the common model, with the predictor's clinical label of
    each feature when it has them; its bar plot, and the time to explain one
    patient (median over ``shap.timing_patients`` single-row calls)."""
    import shap

    config = params["shap"]
    features = feature_matrix(model_input_test, list(feature_builder.feature_names), "test")
    sample = features.sample(
        n=min(int(config["sample_size"]), len(features)), random_state=int(params["seed"])
    )
    common = predictor.common_model
    names = list(getattr(common, "feature_names", sample.columns))
    # the matrix the trees see (e.g. imputed when the model was trained on SMOTE data)
    model_inputs = common.inputs if hasattr(common, "inputs") else lambda X: X[names]
    started = time.perf_counter()
    explainer = shap.TreeExplainer(tree_model(common))
    build_seconds = time.perf_counter() - started
    values = explainer.shap_values(model_inputs(sample))
    labels = getattr(predictor, "feature_labels", None) or {}
    importance = pd.DataFrame(
        {
            "feature": names,
            "label": [labels.get(name, name) for name in names],
            "mean_abs_shap": mean_abs_shap(values, len(names)),
        }
    ).sort_values("mean_abs_shap", ascending=False, ignore_index=True)
    timings = []
    for i in range(min(int(config["timing_patients"]), len(sample))):
        started = time.perf_counter()
        explainer.shap_values(model_inputs(sample.iloc[[i]]))
        timings.append(time.perf_counter() - started)
    figure = importance_figure(importance, int(config["top_features"]))
    return (
        importance,
        figure,
        {
            "explain.seconds_per_patient": float(np.median(timings)) if timings else np.nan,
            "explain.explainer_build_seconds": float(build_seconds),
            "explain.sample_size": float(len(sample)),
        },
    )


def measure_serving_costs(predictor: Any, params: dict[str, Any]) -> dict[str, float]:
    """Pickled size; single-patient latency of ``predict_records`` (the serving path:
    feature building, models, calibration, explanation) over ``latency.repeats`` calls after
    a warm-up; batch throughput on ``latency.batch_size`` copies of the example record."""
    from disease_pipeline.records import PatientRecord

    config = params["latency"]
    try:
        record = PatientRecord.model_validate(config["record"])
    except ValueError as error:
        raise ValueError(
            f"evaluation.latency.record is not a valid PatientRecord: {error}"
        ) from error
    size = len(pickle.dumps(predictor, protocol=pickle.HIGHEST_PROTOCOL))
    predictor.predict_records([record], top_k=int(params["top_k"][-1]))
    timings = []
    for _ in range(int(config["repeats"])):
        started = time.perf_counter()
        predictor.predict_records([record], top_k=int(params["top_k"][-1]))
        timings.append(time.perf_counter() - started)
    batch = [
        record.model_copy(update={"encounter_id": f"latency-{i}"})
        for i in range(int(config["batch_size"]))
    ]
    started = time.perf_counter()
    predictor.predict_records(batch, top_k=int(params["top_k"][-1]))
    batch_seconds = time.perf_counter() - started
    return {
        "serving.model_size_mb": size / 1e6,
        "serving.latency_ms_p50": float(np.percentile(timings, 50) * 1000),
        "serving.latency_ms_p95": float(np.percentile(timings, 95) * 1000),
        "serving.throughput_per_s": float(len(batch) / batch_seconds),
    }
