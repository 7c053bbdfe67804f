"""Nodes of ``severity_model``.

Two candidates, compared on the latest part of the training period:

- ``multiclass``: one XGBoost softmax model, class-weighted, its probabilities corrected
  back to the observed level shares (see ``training.prior_correction``);
- ``cumulative``: the ordinal model of Frank & Hall — one binary XGBoost per threshold
  P(level > k), unweighted — which uses the order low < moderate < high < critical.

The winner by ``selection_metric`` is refitted on every training row with a level.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.core.levels import SEVERITY_LEVELS
from disease_pipeline.json_types import json_types
from disease_pipeline.pipelines.common_model.training import (
    balanced_sample_weight,
    best_rounds,
    check_metric,
    encode,
    feature_columns,
    fit_xgb,
    is_better,
    ordinal_metrics,
    prior_correction,
    subsample_rows,
    time_validation_split,
)
from disease_pipeline.predictor.classifiers import CumulativeOrdinalClassifier, TreeClassifier

logger = logging.getLogger(__name__)

LEVELS = list(SEVERITY_LEVELS)
CANDIDATES = ("multiclass", "cumulative")

SeverityModel = TreeClassifier | CumulativeOrdinalClassifier


def severity_rows(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Rows whose ``label_severity`` is one of :data:`LEVELS` (others are dropped).

    Raises:
        ValueError: fewer than two levels have rows.
    """
    rows = frame[frame["label_severity"].isin(LEVELS)]
    present = [level for level in LEVELS if level in set(rows["label_severity"])]
    if len(present) < 2:
        raise ValueError(
            f"{where}.label_severity: rows for fewer than two levels ({present}); "
            f"expected levels {LEVELS}"
        )
    if len(present) < len(LEVELS):
        logger.warning("%s: no row with level(s) %s", where, sorted(set(LEVELS) - set(present)))
    return rows


def split_severity_rows(
    model_input_train: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit slice (at most ``selection_max_rows``) and validation slice (latest
    ``validation_fraction``) of the training rows with a severity level."""
    rows = severity_rows(model_input_train, "model_input_train")
    fit, validation = time_validation_split(
        rows, float(params["validation_fraction"]), "severity_model"
    )
    fit = subsample_rows(
        fit, int(params["selection_max_rows"]), "label_severity", int(params["seed"])
    )
    return fit, validation


def _fit_candidate(
    kind: str,
    frame: pd.DataFrame,
    params: dict[str, Any],
    validation: pd.DataFrame | None = None,
    rounds: list[int] | None = None,
) -> tuple[SeverityModel, list[int]]:
    """Fit one candidate; early stopping on ``validation`` when given, else ``rounds``."""
    features = feature_columns(frame)
    X = frame[features].to_numpy(np.float32)
    y = encode(frame["label_severity"], LEVELS)
    seed, xgb_params = int(params["seed"]), dict(params["xgboost"])
    val = None
    if validation is not None:
        val = (
            validation[features].to_numpy(np.float32),
            encode(validation["label_severity"], LEVELS),
        )
    if kind == "multiclass":
        if rounds:
            xgb_params["n_estimators"] = rounds[0]
        # levels without a training row are left out of the trees (probability 0)
        present = np.unique(y)
        local = np.full(len(LEVELS), -1)
        local[present] = np.arange(len(present))
        y_local = local[y]
        weight = balanced_sample_weight(y_local, len(present), float(params["class_weight_power"]))
        if val is not None:
            keep = local[val[1]] >= 0
            val = (val[0][keep], local[val[1][keep]]) if keep.any() else None
        model = fit_xgb(X, y_local, xgb_params, seed=seed, sample_weight=weight, validation=val)
        factor = prior_correction(np.bincount(y_local), np.bincount(y_local, weights=weight))
        wrapped = TreeClassifier(
            features,
            np.asarray(LEVELS),
            model,
            prior_factor=factor,
            output_columns=None if len(present) == len(LEVELS) else present,
        )
        return wrapped, [best_rounds(model)]
    if kind == "cumulative":
        models, used = [], []
        for k in range(len(LEVELS) - 1):
            if rounds:  # 0: the threshold was constant during selection
                xgb_params["n_estimators"] = rounds[k] or int(params["xgboost"]["n_estimators"])
            above = (y > k).astype(int)
            if above.min() == above.max():  # one side only: a smoothed constant
                models.append(float((above.sum() + 0.5) / (len(above) + 1.0)))
                used.append(0)
                continue
            val_k = (val[0], (val[1] > k).astype(int)) if val is not None else None
            if val_k is not None and val_k[1].min() == val_k[1].max():
                val_k = None
            model = fit_xgb(X, above, xgb_params, seed=seed, validation=val_k)
            models.append(model)
            used.append(best_rounds(model))
        return CumulativeOrdinalClassifier(features, np.asarray(LEVELS), models=models), used
    raise ValueError(f"severity_model.candidates: unknown candidate {kind!r}; use {CANDIDATES}")


def compare_severity_models(
    fit: pd.DataFrame, validation: pd.DataFrame, params: dict[str, Any]
) -> dict[str, Any]:
    """Validation metrics of each candidate in ``candidates`` (log loss, macro AUROC,
    quadratic weighted kappa, mean absolute level error); the chosen one and its rounds.
    ``choice`` forces a candidate; ``auto`` keeps the best by ``selection_metric``."""
    metric = check_metric(params["selection_metric"], "severity_model.selection_metric")
    choice = params["choice"]
    if choice != "auto" and choice not in params["candidates"]:
        raise ValueError(
            f"severity_model.choice: {choice!r} must be 'auto' or one of the candidates"
        )
    results, chosen = {}, None
    y_val = encode(validation["label_severity"], LEVELS)
    for kind in params["candidates"]:
        started = time.perf_counter()
        model, rounds = _fit_candidate(kind, fit, params, validation)
        metrics = ordinal_metrics(y_val, model.predict_proba(validation))
        metrics |= {"rounds": rounds, "seconds": round(time.perf_counter() - started, 2)}
        results[kind] = metrics
        logger.info(
            "severity_model %-10s log_loss=%.4f macro_auroc=%.4f kappa=%.4f mae=%.4f",
            kind,
            metrics["log_loss"],
            metrics["macro_auroc"],
            metrics["quadratic_kappa"],
            metrics["mean_abs_level_error"],
        )
        if choice == kind or (
            choice == "auto"
            and (chosen is None or is_better(metric, metrics[metric], results[chosen][metric]))
        ):
            chosen = kind
    helps = None
    if {"multiclass", "cumulative"} <= set(results):
        helps = is_better(metric, results["cumulative"][metric], results["multiclass"][metric])
    logger.info("severity_model: %r chosen (ordinal-aware better: %s)", chosen, helps)
    return {
        "selection_metric": metric,
        "chosen": chosen,
        "ordinal_helps": helps,
        "candidates": results,
    }


def fit_severity_model(
    model_input_train: pd.DataFrame, comparison: dict[str, Any], params: dict[str, Any]
) -> SeverityModel:
    """Refit the chosen candidate on every training row with a level, with the rounds
    early stopping picked on validation."""
    rows = severity_rows(model_input_train, "model_input_train")
    chosen = comparison["chosen"]
    started = time.perf_counter()
    model, _ = _fit_candidate(
        chosen, rows, params, rounds=comparison["candidates"][chosen]["rounds"]
    )
    logger.info(
        "severity_model: %s fitted on %d rows in %.0f s",
        chosen,
        len(rows),
        time.perf_counter() - started,
    )
    return model


def report_severity_model_selection(comparison: dict[str, Any]) -> dict[str, Any]:
    """The comparison as plain JSON (``reporting_severity_model_selection``)."""
    return json_types(comparison)
