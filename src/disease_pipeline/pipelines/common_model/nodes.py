"""Nodes of ``common_model``: the common-disease XGBoost model and the gate model P(rare).

Selection (imbalance strategy, Optuna search, logistic-regression baseline) runs on the
latest part of the training period; the chosen configuration is then refitted on every
COMMON training row.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.json_types import json_types
from disease_pipeline.pipelines.common_model.selection import (
    STRATEGIES,
    Slices,
    baseline_metrics,
    fit_on_slices,
    optuna_search,
    training_arrays,
)
from disease_pipeline.pipelines.common_model.training import (
    balanced_sample_weight,
    best_rounds,
    check_metric,
    classification_metrics,
    encode,
    feature_columns,
    fit_xgb,
    is_better,
    prior_correction,
    subsample_rows,
    time_validation_split,
)
from disease_pipeline.predictor.classifiers import ConstantClassifier, TreeClassifier

logger = logging.getLogger(__name__)

GATE_CLASSES = ["COMMON", "RARE"]


def split_common_rows(
    model_input_train: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """COMMON training rows cut in time: the fit slice (at most ``selection_max_rows``,
    sampled per disease) and the validation slice (latest ``validation_fraction``)."""
    common = model_input_train[model_input_train["label_category"] == "COMMON"]
    if common["label_disease"].nunique() < 2:
        raise ValueError("model_input_train: fewer than two COMMON diseases to classify")
    fit, validation = time_validation_split(
        common, float(params["validation_fraction"]), "common_model"
    )
    fit = subsample_rows(
        fit, int(params["selection_max_rows"]), "label_disease", int(params["seed"])
    )
    logger.info("common_model: selection on %d fit / %d validation rows", len(fit), len(validation))
    return fit, validation


def compare_imbalance_strategies(
    fit: pd.DataFrame, validation: pd.DataFrame, params: dict[str, Any]
) -> dict[str, Any]:
    """Fit XGBoost (default parameters) once per ``imbalance.strategies`` entry and keep
    the best on validation by ``selection_metric``: a later strategy replaces an earlier
    one only when it is better by more than ``imbalance.min_improvement`` (so the first,
    cheaper strategy wins ties). Returns the logged comparison."""
    metric = check_metric(params["selection_metric"], "common_model.selection_metric")
    strategies = list(params["imbalance"]["strategies"])
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise ValueError(
            f"common_model.imbalance.strategies: {strategies!r}; choose from {list(STRATEGIES)}"
        )
    slices = Slices.from_frames(fit, validation, "label_disease")
    results, chosen = {}, None
    for strategy in strategies:
        arrays = training_arrays(
            strategy,
            slices.X_fit,
            slices.y_fit,
            imbalance=params["imbalance"],
            seed=int(params["seed"]),
        )
        _, results[strategy] = fit_on_slices(slices, arrays, params["xgboost"], int(params["seed"]))
        logger.info("common_model imbalance %-13s %s", strategy, _fmt(results[strategy]))
        margin = float(params["imbalance"].get("min_improvement", 0.0))
        if chosen is None or is_better(
            metric, results[strategy][metric], results[chosen][metric], margin
        ):
            chosen = strategy
    logger.info("common_model: imbalance strategy %r chosen by validation %s", chosen, metric)
    return {"metric": metric, "chosen": chosen, "strategies": results}


def tune_common_model(
    fit: pd.DataFrame,
    validation: pd.DataFrame,
    imbalance: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """Optuna TPE search (seeded, ``tuning.n_trials`` / ``tuning.timeout_seconds``) with the
    chosen imbalance strategy. The default parameters stay when no trial beats them."""
    metric = imbalance["metric"]
    slices = Slices.from_frames(fit, validation, "label_disease")
    arrays = training_arrays(
        imbalance["chosen"],
        slices.X_fit,
        slices.y_fit,
        imbalance=params["imbalance"],
        seed=int(params["seed"]),
    )
    started = time.perf_counter()
    search = optuna_search(slices, arrays, params, metric)
    default = imbalance["strategies"][imbalance["chosen"]]
    best_params, best_metrics, source = {}, default, "defaults"
    if search["n_trials"] and is_better(metric, search["best_metrics"][metric], default[metric]):
        best_params, best_metrics, source = search["best_params"], search["best_metrics"], "optuna"
    logger.info(
        "common_model: %d Optuna trials in %.0f s; keeping %s (%s=%.4f)",
        search["n_trials"],
        time.perf_counter() - started,
        source,
        metric,
        best_metrics[metric],
    )
    return {
        **search,
        "seconds": round(time.perf_counter() - started, 2),
        "chosen": source,
        "params": {**params["xgboost"], **best_params, "n_estimators": best_metrics["best_rounds"]},
        "validation_metrics": best_metrics,
    }


def evaluate_baseline(
    fit: pd.DataFrame, validation: pd.DataFrame, params: dict[str, Any]
) -> dict[str, float]:
    """Validation metrics of the logistic-regression baseline (same rows as XGBoost)."""
    slices = Slices.from_frames(fit, validation, "label_disease")
    metrics = baseline_metrics(slices, params["baseline"])
    logger.info("common_model baseline (logistic regression) %s", _fmt(metrics))
    return metrics


def fit_common_model(
    model_input_train: pd.DataFrame,
    imbalance: dict[str, Any],
    tuning: dict[str, Any],
    params: dict[str, Any],
    query_rows: pd.DataFrame | None = None,
) -> TreeClassifier:
    """Refit the chosen strategy and parameters on every COMMON training row, for the
    number of rounds early stopping picked on validation. ``query_rows``
    (``query_rows.build_common_query_rows``: symptom-only patients of perturbed copies
    of the catalogue) are added to the fitted rows."""
    common = model_input_train[model_input_train["label_category"] == "COMMON"]
    features = feature_columns(common)
    if query_rows is not None and len(query_rows):
        extra = query_rows.reindex(columns=[*features, "label_disease", "label_category"])
        logger.info("common_model: %d query-style rows added to the fit", len(extra))
        common = pd.concat(
            [common[[*features, "label_disease", "label_category"]], extra], ignore_index=True
        )
    classes = sorted(str(c) for c in common["label_disease"].unique())
    y = encode(common["label_disease"], classes)
    arrays = training_arrays(
        imbalance["chosen"],
        common[features].to_numpy(np.float32),
        y,
        imbalance=params["imbalance"],
        seed=int(params["seed"]),
    )
    started = time.perf_counter()
    model = fit_xgb(
        arrays.X,
        arrays.y,
        tuning["params"],
        seed=int(params["seed"]),
        sample_weight=arrays.sample_weight,
    )
    logger.info(
        "common_model: %d classes, %d rows, %d rounds fitted in %.0f s",
        len(classes),
        len(arrays.y),
        tuning["params"]["n_estimators"],
        time.perf_counter() - started,
    )
    return TreeClassifier(
        feature_names=features,
        classes_=np.asarray(classes),
        model=model,
        fill_values=arrays.fill_values,
        prior_factor=arrays.prior_factor,
    )


def report_common_model_selection(
    imbalance: dict[str, Any], tuning: dict[str, Any], baseline: dict[str, float]
) -> dict[str, Any]:
    """The selection report (``reporting_common_model_selection``): imbalance comparison,
    Optuna trials, and XGBoost beside the baseline on the same validation rows."""
    return json_types(
        {
            "selection_metric": imbalance["metric"],
            "imbalance": imbalance,
            "tuning": {k: v for k, v in tuning.items() if k != "validation_metrics"},
            "validation": {
                "xgboost": tuning["validation_metrics"],
                "baseline_logistic_regression": baseline,
            },
        }
    )


def fit_gate_model(
    model_input_train: pd.DataFrame,
    params: dict[str, Any],
    query_rows: pd.DataFrame | None = None,
) -> tuple[TreeClassifier | ConstantClassifier, dict[str, Any]]:
    """Binary XGBoost P(RARE) over every training encounter, class-weighted (then corrected
    back to the observed rare share). Rounds are chosen by early stopping on the latest
    ``validation_fraction`` when both classes occur there; the report has its metrics.
    ``query_rows`` (``query_rows.build_gate_query_rows``: phenotypes, age and sex only)
    are added to the fitted rows, never to the validation rows."""
    gate, seed = params["gate"], int(params["seed"])
    features = feature_columns(model_input_train)
    extra = (
        query_rows.reindex(columns=[*features, "label_category"])
        if query_rows is not None and len(query_rows)
        else model_input_train.iloc[:0][[*features, "label_category"]]
    )
    y_all = encode(model_input_train["label_category"], GATE_CLASSES)
    if (y_all < 0).any():
        bad = sorted(set(model_input_train["label_category"][y_all < 0].astype(str)))
        raise ValueError(f"model_input_train.label_category: unexpected values {bad}")
    counts = np.bincount(y_all, minlength=2)
    if counts.min() == 0:
        prior = (counts + 0.5) / (counts.sum() + 1.0)
        logger.warning("gate_model: only one category in train %s; constant prior", counts)
        model = ConstantClassifier(features, np.asarray(GATE_CLASSES), prior=prior)
        return model, {"constant_prior": prior.tolist(), "train_counts": counts.tolist()}
    power = float(gate["class_weight_power"])
    report: dict[str, Any] = {"train_counts": counts.tolist()}
    xgb_params = dict(gate["xgboost"])
    report["query_rows"] = np.bincount(
        encode(extra["label_category"], GATE_CLASSES), minlength=2
    ).tolist()
    fit, validation = time_validation_split(
        model_input_train, float(params["validation_fraction"]), "common_model"
    )
    fit = pd.concat([fit, extra], ignore_index=True)
    y_fit = encode(fit["label_category"], GATE_CLASSES)
    y_val = encode(validation["label_category"], GATE_CLASSES)
    if len(np.unique(y_fit)) == 2 and len(np.unique(y_val)) == 2:
        weight = balanced_sample_weight(y_fit, 2, power)
        model = fit_xgb(
            fit[features].to_numpy(np.float32),
            y_fit,
            xgb_params,
            seed=seed,
            sample_weight=weight,
            validation=(validation[features].to_numpy(np.float32), y_val),
        )
        factor = prior_correction(np.bincount(y_fit), np.bincount(y_fit, weights=weight))
        wrapped = TreeClassifier(features, np.asarray(GATE_CLASSES), model, None, factor)
        report["validation"] = classification_metrics(
            y_val, wrapped.predict_proba(validation[features])
        )
        xgb_params["n_estimators"] = best_rounds(model)
        logger.info("gate_model validation %s", _fmt(report["validation"]))
    rows = pd.concat([model_input_train[[*features, "label_category"]], extra], ignore_index=True)
    y_rows = encode(rows["label_category"], GATE_CLASSES)
    weight = balanced_sample_weight(y_rows, 2, power)
    model = fit_xgb(
        rows[features].to_numpy(np.float32),
        y_rows,
        xgb_params,
        seed=seed,
        sample_weight=weight,
    )
    report["n_estimators"] = int(xgb_params["n_estimators"])
    factor = prior_correction(np.bincount(y_rows, minlength=2), np.bincount(y_rows, weights=weight))
    return TreeClassifier(features, np.asarray(GATE_CLASSES), model, None, factor), json_types(
        report
    )


def _fmt(metrics: dict[str, float]) -> str:
    return " ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
    )
