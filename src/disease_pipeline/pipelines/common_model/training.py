"""Training helpers shared by the ``common_model`` and ``severity_model`` pipelines.

Plain functions on frames and arrays: the validation slice (latest part of train),
class weights, SMOTE, XGBoost fitting with early stopping, prior-shift correction and
the selection metrics. No Kedro, no I/O.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.impute import SimpleImputer
from sklearn.metrics import cohen_kappa_score, log_loss, roc_auc_score

from disease_pipeline.core.columns import META_COLUMNS

logger = logging.getLogger(__name__)

#: Selection metrics and whether higher is better.
HIGHER_IS_BETTER = {
    "macro_auroc": True,
    "log_loss": False,
    "top1_accuracy": True,
    "quadratic_kappa": True,
    "mean_abs_level_error": False,
}
#: Keys of the ``xgboost`` parameter block that are not XGBClassifier arguments.
_NOT_XGB_ARGUMENTS = ("early_stopping_rounds",)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The feature columns of a model_input frame (everything but :data:`META_COLUMNS`).

    Raises:
        ValueError: a feature column is not numeric.
    """
    columns = [c for c in frame.columns if c not in META_COLUMNS]
    bad = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise ValueError(f"model_input: feature column(s) {bad[:5]} are not numeric")
    if not columns:
        raise ValueError("model_input: no feature columns")
    return columns


def check_metric(metric: str, where: str) -> str:
    """``metric`` if it is a known selection metric, else a ValueError naming ``where``."""
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"{where}: unknown metric {metric!r}; use one of {list(HIGHER_IS_BETTER)}")
    return metric


def is_better(metric: str, candidate: float, incumbent: float | None, margin: float = 0.0) -> bool:
    """True when ``candidate`` beats ``incumbent`` on ``metric`` by more than ``margin``
    (NaN never wins)."""
    if not np.isfinite(candidate):
        return False
    if incumbent is None or not np.isfinite(incumbent):
        return True
    if HIGHER_IS_BETTER[metric]:
        return candidate > incumbent + margin
    return candidate < incumbent - margin


def time_validation_split(
    frame: pd.DataFrame, fraction: float, where: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Latest ``fraction`` of the rows (by ``start``) as validation slice, the rest to fit.

    Patients with an encounter in the validation slice are removed from the fit slice,
    so no patient is on both sides.

    Raises:
        ValueError: ``fraction`` is outside (0, 1) or a slice would be empty.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"{where}.validation_fraction must be in (0, 1), got {fraction}")
    ordered = frame.sort_values(["start", "encounter_id"], kind="stable")
    n_val = int(round(len(ordered) * fraction))
    validation = ordered.iloc[len(ordered) - n_val :]
    fit = ordered.iloc[: len(ordered) - n_val]
    fit = fit[~fit["patient_id"].isin(set(validation["patient_id"]))]
    if fit.empty or validation.empty:
        raise ValueError(
            f"{where}: {len(frame)} rows are too few for a validation slice of {fraction:.0%}"
        )
    return fit, validation


def subsample_rows(frame: pd.DataFrame, max_rows: int, label: str, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows, sampled per ``label`` class (every class keeps >= 1 row)."""
    if max_rows <= 0 or len(frame) <= max_rows:
        return frame
    share = max_rows / len(frame)
    parts = [
        group.sample(n=max(1, int(round(len(group) * share))), random_state=seed)
        for _, group in frame.groupby(label, sort=True)
    ]
    return pd.concat(parts).sort_values(["start", "encounter_id"], kind="stable")


def encode(labels: pd.Series | np.ndarray, classes: list[str]) -> np.ndarray:
    """Integer codes of ``labels`` in ``classes`` order; -1 for an unknown label."""
    index = {c: i for i, c in enumerate(classes)}
    return np.asarray([index.get(str(v), -1) for v in labels], dtype=int)


def balanced_sample_weight(y: np.ndarray, n_classes: int, power: float = 1.0) -> np.ndarray:
    """Per-row weights ``(n / (K n_k)) ** power``: 1 = fully balanced, 0 = unweighted."""
    counts = np.bincount(y, minlength=n_classes).astype(float)
    present = counts > 0
    weights = np.ones(n_classes)
    weights[present] = (len(y) / (present.sum() * counts[present])) ** power
    return weights[y]


def smote_resample(
    X: np.ndarray, y: np.ndarray, target_ratio: float, k_neighbors: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median-impute ``X`` (SMOTE needs complete rows), then raise every class with more
    than ``k_neighbors`` rows to ``target_ratio`` x the largest class count.

    Returns the resampled matrix, labels and the per-feature fill values (medians; 0 for
    an all-missing feature), needed again at prediction.
    """
    from imblearn.over_sampling import SMOTE

    imputer = SimpleImputer(strategy="median", keep_empty_features=True).fit(X)
    fill_values = imputer.statistics_.astype(np.float32)
    filled = imputer.transform(X).astype(np.float32)
    counts = np.bincount(y)
    target = int(counts.max() * target_ratio)
    strategy = {int(c): target for c, n in enumerate(counts) if k_neighbors < n < target}
    if not strategy:
        return filled, y, fill_values
    sampler = SMOTE(sampling_strategy=strategy, k_neighbors=k_neighbors, random_state=seed)
    resampled_X, resampled_y = sampler.fit_resample(filled, y)
    logger.info(
        "SMOTE: %d → %d rows (%d classes raised to %d)",
        len(y),
        len(resampled_y),
        len(strategy),
        target,
    )
    return resampled_X.astype(np.float32), resampled_y, fill_values


def prior_correction(observed_counts: np.ndarray, effective_counts: np.ndarray) -> np.ndarray:
    """Multiplicative per-class factors undoing a training prior shift.

    A model fitted where class k carries total weight ``W_k`` (``effective_counts``: summed
    class weights, or row counts after resampling) instead of its observed count ``N_k``
    estimates probabilities proportional to ``p(k|x) W_k / N_k``; multiplying by
    ``N_k / W_k`` and renormalising returns to the observed class balance.
    """
    observed = np.asarray(observed_counts, dtype=float)
    effective = np.asarray(effective_counts, dtype=float)
    factor = np.ones(len(observed))
    ok = (effective > 0) & (observed > 0)
    factor[ok] = observed[ok] / effective[ok]
    return factor / factor[ok].mean() if ok.any() else factor


def xgb_arguments(params: dict[str, Any]) -> dict[str, Any]:
    """XGBClassifier arguments of an ``xgboost`` parameter block."""
    return {k: v for k, v in params.items() if k not in _NOT_XGB_ARGUMENTS}


def fit_xgb(
    X: np.ndarray,
    y: np.ndarray,
    params: dict[str, Any],
    *,
    seed: int,
    sample_weight: np.ndarray | None = None,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
) -> xgb.XGBClassifier:
    """Fit an XGBClassifier; with ``validation`` it stops early after
    ``params["early_stopping_rounds"]`` rounds without improvement of the log loss."""
    arguments = xgb_arguments(params)
    binary = len(np.unique(y)) <= 2
    arguments.setdefault("eval_metric", "logloss" if binary else "mlogloss")
    if validation is not None:
        arguments["early_stopping_rounds"] = int(params.get("early_stopping_rounds") or 20)
    model = xgb.XGBClassifier(random_state=seed, **arguments)
    fit_args: dict[str, Any] = {"sample_weight": sample_weight, "verbose": False}
    if validation is not None:
        fit_args["eval_set"] = [validation]
    model.fit(X, y, **fit_args)
    return model


def best_rounds(model: xgb.XGBClassifier) -> int:
    """Boosting rounds to keep: the early-stopping best iteration + 1, else all rounds."""
    best = getattr(model, "best_iteration", None)
    return int(best) + 1 if best is not None else int(model.get_params()["n_estimators"])


def classification_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Macro one-vs-rest AUROC (over classes with positives and negatives), log loss,
    top-1 accuracy and row count for integer labels ``y`` (rows with ``y < 0`` ignored)."""
    keep = y >= 0
    y, proba = y[keep], proba[keep]
    n_classes = proba.shape[1]
    aurocs = []
    for k in range(n_classes):
        positives = (y == k).sum()
        if 0 < positives < len(y):
            aurocs.append(roc_auc_score(y == k, proba[:, k]))
    clipped = np.clip(proba, 1e-12, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return {
        "macro_auroc": float(np.mean(aurocs)) if aurocs else float("nan"),
        "log_loss": float(log_loss(y, clipped, labels=np.arange(n_classes)))
        if len(y)
        else float("nan"),
        "top1_accuracy": float((proba.argmax(axis=1) == y).mean()) if len(y) else float("nan"),
        "n_rows": int(len(y)),
        "n_classes_scored": len(aurocs),
    }


def ordinal_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """:func:`classification_metrics` plus quadratic weighted kappa and mean absolute
    level error of the most probable level (levels are ordered by column)."""
    out = classification_metrics(y, proba)
    keep = y >= 0
    predicted = proba[keep].argmax(axis=1)
    out["quadratic_kappa"] = float(
        cohen_kappa_score(y[keep], predicted, weights="quadratic", labels=range(proba.shape[1]))
    )
    out["mean_abs_level_error"] = float(np.abs(y[keep] - predicted).mean())
    return out
