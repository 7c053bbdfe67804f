"""Stratified, patient-grouped cross-validation of the common-disease model family.

Uses ``model_input_cv_folds`` (``encounter_id, fold``) when the features pipeline
provides it; otherwise builds folds on ``model_input_train`` with
``StratifiedGroupKFold`` (grouped by patient, stratified by disease). Each fold refits a
quick XGBoost (``params["cv"]["xgboost"]``: few shallow trees) on at most
``cv.max_rows`` sampled cases — the figures show how stable the model family is across
folds, not the tuned model's score.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold
from tqdm.auto import tqdm

from . import metrics as m

logger = logging.getLogger(__name__)


def assign_folds(train: pd.DataFrame, n_folds: int, seed: int) -> np.ndarray:
    """Fold number per row: stratified by ``label_disease``, grouped by ``patient_id``."""
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = np.full(len(train), -1)
    for fold, (_, held_out) in enumerate(
        splitter.split(train, train["label_disease"], groups=train["patient_id"])
    ):
        folds[held_out] = fold
    return folds


def cross_validate_common(
    model_input_train: pd.DataFrame,
    feature_builder: Any,
    model_input_cv_folds: pd.DataFrame | None,
    params: dict[str, Any],
) -> tuple[dict[str, float], pd.DataFrame]:
    """Per-fold macro AUROC, top-1 accuracy and ECE of a quick refit on COMMON train cases;
    the mean and standard deviation over folds."""
    from xgboost import XGBClassifier

    config = params["cv"]
    train = model_input_train[model_input_train["label_category"] == "COMMON"].reset_index(
        drop=True
    )
    counts = train["label_disease"].value_counts()
    train = train[train["label_disease"].isin(counts[counts >= int(config["n_folds"])].index)]
    if len(train) > int(config["max_rows"]):
        train = train.sample(n=int(config["max_rows"]), random_state=int(params["seed"]))
    train = train.reset_index(drop=True)
    if train["label_disease"].nunique() < 2:
        raise ValueError(
            "evaluation.cv: fewer than two common diseases with "
            f"{config['n_folds']} training cases: cannot cross-validate"
        )
    if model_input_cv_folds is not None and len(model_input_cv_folds):
        folds = (
            train["encounter_id"]
            .map(model_input_cv_folds.set_index("encounter_id")["fold"])
            .fillna(-1)
            .astype(int)
            .to_numpy()
        )
        source = "model_input_cv_folds"
    else:
        folds = assign_folds(train, int(config["n_folds"]), int(params["seed"]))
        source = "StratifiedGroupKFold on model_input_train"
    X = train[list(feature_builder.feature_names)].astype(float)
    rows = []
    for fold in tqdm(sorted(set(folds) - {-1}), desc="evaluation: cross-validation", leave=False):
        fit_rows, test_rows = folds != fold, folds == fold
        classes = sorted(train.loc[fit_rows, "label_disease"].unique())
        index = {c: i for i, c in enumerate(classes)}
        model = XGBClassifier(
            **config["xgboost"], random_state=int(params["seed"]), n_jobs=int(params["n_jobs"])
        )
        model.fit(X[fit_rows], train.loc[fit_rows, "label_disease"].map(index))
        proba = model.predict_proba(X[test_rows])
        labels = train.loc[test_rows, "label_disease"].to_numpy()
        table = m.per_class_table(labels, proba, classes)
        rows.append(
            {
                "fold": int(fold),
                "n": int(test_rows.sum()),
                "auroc_macro": m.macro(table, "auroc"),
                "top1": float(np.mean(np.asarray(classes)[proba.argmax(axis=1)] == labels)),
                "ece": m.top_label_ece(labels, proba, classes, int(params["ece_bins"])),
            }
        )
    table = pd.DataFrame(rows).assign(source=source)
    out = {"cv.folds": float(len(table))}
    for column in ("auroc_macro", "top1", "ece"):
        out[f"cv.{column}_mean"] = float(table[column].mean())
        out[f"cv.{column}_std"] = float(table[column].std(ddof=0))
    return out, table
