"""Model selection of the common-disease model: imbalance strategy, Optuna search, baseline.

Works on a :class:`Slices` (fit and validation arrays over the same classes) so the
strategies, the Optuna trials and the baseline are compared on identical rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer

from disease_pipeline.pipelines.common_model.training import (
    HIGHER_IS_BETTER,
    balanced_sample_weight,
    best_rounds,
    classification_metrics,
    encode,
    feature_columns,
    fit_xgb,
    prior_correction,
    smote_resample,
)
from disease_pipeline.predictor.classifiers import TreeClassifier

logger = logging.getLogger(__name__)

STRATEGIES = ("smote", "class_weights", "none")


@dataclass
class Slices:
    """Fit and validation arrays; validation rows of classes unseen in fit are dropped."""

    features: list[str]
    classes: list[str]
    X_fit: np.ndarray
    y_fit: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray

    @classmethod
    def from_frames(cls, fit: pd.DataFrame, validation: pd.DataFrame, label: str) -> Slices:
        """Arrays of ``fit`` / ``validation`` over the classes of ``fit[label]``."""
        features = feature_columns(fit)
        classes = sorted(str(c) for c in fit[label].unique())
        y_val = encode(validation[label], classes)
        keep = y_val >= 0
        return cls(
            features=features,
            classes=classes,
            X_fit=fit[features].to_numpy(np.float32),
            y_fit=encode(fit[label], classes),
            X_val=validation.loc[keep, features].to_numpy(np.float32),
            y_val=y_val[keep],
        )


@dataclass
class TrainingArrays:
    """What an imbalance strategy feeds to XGBoost, and how to undo its prior shift."""

    X: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray | None
    fill_values: np.ndarray | None
    prior_factor: np.ndarray | None

    def validation(self, X_val: np.ndarray) -> np.ndarray:
        """Validation matrix as the trees see it (gaps filled for SMOTE)."""
        if self.fill_values is None:
            return X_val
        return np.where(np.isnan(X_val), self.fill_values, X_val).astype(np.float32)


def training_arrays(
    strategy: str, X: np.ndarray, y: np.ndarray, *, imbalance: dict, seed: int
) -> TrainingArrays:
    """Training arrays of ``strategy`` (``smote``, ``class_weights`` or ``none``).

    Raises:
        ValueError: an unknown strategy.
    """
    n_classes = int(y.max()) + 1
    counts = np.bincount(y, minlength=n_classes)
    if strategy == "class_weights":
        weight = balanced_sample_weight(y, n_classes, float(imbalance["class_weight_power"]))
        effective = np.bincount(y, weights=weight, minlength=n_classes)
        return TrainingArrays(X, y, weight, None, prior_correction(counts, effective))
    if strategy == "smote":
        X_res, y_res, fill_values = smote_resample(
            X,
            y,
            float(imbalance["smote_target_ratio"]),
            int(imbalance["smote_k_neighbors"]),
            seed,
        )
        effective = np.bincount(y_res, minlength=n_classes)
        return TrainingArrays(X_res, y_res, None, fill_values, prior_correction(counts, effective))
    if strategy == "none":
        return TrainingArrays(X, y, None, None, None)
    raise ValueError(f"common_model.imbalance.strategies: unknown strategy {strategy!r}")


def fit_on_slices(
    slices: Slices, arrays: TrainingArrays, xgb_params: dict, seed: int
) -> tuple[TreeClassifier, dict[str, float]]:
    """Fit on the fit slice with early stopping on validation; validation metrics."""
    started = time.perf_counter()
    model = fit_xgb(
        arrays.X,
        arrays.y,
        xgb_params,
        seed=seed,
        sample_weight=arrays.sample_weight,
        validation=(arrays.validation(slices.X_val), slices.y_val),
    )
    wrapped = TreeClassifier(
        feature_names=slices.features,
        classes_=np.asarray(slices.classes),
        model=model,
        fill_values=arrays.fill_values,
        prior_factor=arrays.prior_factor,
    )
    metrics = classification_metrics(slices.y_val, wrapped.predict_proba(slices.X_val))
    metrics["best_rounds"] = best_rounds(model)
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    return wrapped, metrics


def suggest_params(trial: Any, space: dict[str, list], log_scale: list[str]) -> dict[str, Any]:
    """XGBoost parameters of one Optuna trial: ``space`` maps name → [low, high]
    (integers when both bounds are integers), log-uniform for names in ``log_scale``.

    Raises:
        ValueError: a bound pair is malformed.
    """
    out = {}
    for name, bounds in space.items():
        if not isinstance(bounds, list | tuple) or len(bounds) != 2 or bounds[0] > bounds[1]:
            raise ValueError(
                f"common_model.tuning.search_space.{name}: expected [low, high], got {bounds!r}"
            )
        low, high = bounds
        if isinstance(low, int) and isinstance(high, int):
            out[name] = trial.suggest_int(name, low, high, log=name in log_scale)
        else:
            out[name] = trial.suggest_float(name, float(low), float(high), log=name in log_scale)
    return out


def optuna_search(
    slices: Slices, arrays: TrainingArrays, params: dict, metric: str
) -> dict[str, Any]:
    """Seeded TPE search over ``params["tuning"]["search_space"]`` with the bounded budget
    ``n_trials`` / ``timeout_seconds``. Returns the trials and the best one."""
    import optuna

    tuning, seed = params["tuning"], int(params["seed"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if HIGHER_IS_BETTER[metric] else "minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
    )

    def objective(trial: optuna.Trial) -> float:
        suggested = suggest_params(trial, tuning["search_space"], tuning.get("log_scale", []))
        _, metrics = fit_on_slices(slices, arrays, {**params["xgboost"], **suggested}, seed)
        trial.set_user_attr("metrics", metrics)
        logger.info("optuna trial %d: %s=%.4f %s", trial.number, metric, metrics[metric], suggested)
        value = metrics[metric]
        return value if np.isfinite(value) else (-np.inf if HIGHER_IS_BETTER[metric] else np.inf)

    n_trials = int(tuning["n_trials"])
    if n_trials > 0:
        study.optimize(
            objective,
            n_trials=n_trials,
            timeout=float(tuning["timeout_seconds"]),
            show_progress_bar=n_trials > 1,
        )
    trials = [
        {
            "number": t.number,
            "value": t.value,
            "params": t.params,
            "best_rounds": t.user_attrs["metrics"]["best_rounds"],
        }
        for t in study.trials
        if t.state == optuna.trial.TrialState.COMPLETE
    ]
    if not trials:
        return {"n_trials": 0, "trials": []}
    best = study.best_trial
    return {
        "n_trials": len(trials),
        "trials": trials,
        "best_params": best.params,
        "best_metrics": best.user_attrs["metrics"],
    }


def baseline_metrics(slices: Slices, baseline: dict) -> dict[str, float]:
    """Validation metrics of a standardised, median-imputed multinomial logistic regression.

    ``baseline["blas_threads"]`` (default 1) caps the BLAS threads of the fit: OpenBLAS
    threads spin while they wait, and on a busy 2-core machine two of them made the fit
    ~10x slower in wall time than one (scripts/benchmark_train.py)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    model = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=float(baseline["C"]), max_iter=int(baseline["max_iter"])),
    )
    with threadpool_limits(limits=int(baseline.get("blas_threads", 1)), user_api="blas"):
        model.fit(slices.X_fit, slices.y_fit)
    proba = np.zeros((len(slices.X_val), len(slices.classes)))
    proba[:, model.classes_] = model.predict_proba(slices.X_val)
    metrics = classification_metrics(slices.y_val, proba)
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    return metrics
