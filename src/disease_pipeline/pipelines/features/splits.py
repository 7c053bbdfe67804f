"""Patient-grouped, time-ordered splits, cross-validation folds and the split report."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from disease_pipeline.core.columns import FEEDBACK_ENCOUNTER_PREFIX
from disease_pipeline.predictor.features import FeatureBuilder

logger = logging.getLogger(__name__)

SPLITS = ("train", "calibration", "test")
DROPPED = "dropped"


def split_encounters(labels: pd.DataFrame, split_params: dict) -> pd.DataFrame:
    """Assign each labelled encounter to ``train``, ``calibration`` or ``test``.

    The period cut-offs are quantiles of the patients' first-encounter dates at the
    cumulative ``fractions``; each patient goes to the period of their first encounter,
    so no patient is in two splits. With ``strict_periods``, a patient's later encounters that
    fall after the end of their period are ``dropped``, so train precedes calibration,
    which precedes test.

    Encounters labelled by clinician feedback (ids ``feedback-…``) go to the split
    ``feedback_split`` names (``train`` by default, so new labels train the next model)
    and do not move the period cut-offs; ``time`` treats them like the exports.

    Returns:
        ``encounter_id, patient_id, start, split`` for every labelled encounter.
    """
    target = split_params.get("feedback_split", "train")
    if target not in (*SPLITS, "time"):
        raise ValueError(
            f"features.split.feedback_split: one of {(*SPLITS, 'time')}, got {target!r}"
        )
    feedback = labels["encounter_id"].astype(str).str.startswith(FEEDBACK_ENCOUNTER_PREFIX)
    if target != "time" and feedback.any():
        exports = split_encounters(labels[~feedback], {**split_params, "feedback_split": "time"})
        extra = labels.loc[feedback, ["encounter_id", "patient_id"]].assign(
            start=pd.to_datetime(labels.loc[feedback, "start"], utc=True), split=target
        )
        logger.info("splits: %d feedback encounters to %s", len(extra), target)
        return pd.concat([exports, extra], ignore_index=True)
    fractions = split_params.get("fractions") or {}
    if set(fractions) != set(SPLITS) or any(f <= 0 for f in fractions.values()):
        raise ValueError(f"features.split.fractions: need positive {SPLITS}, got {fractions}")
    if not np.isclose(sum(fractions.values()), 1.0):
        raise ValueError(f"features.split.fractions: must sum to 1, got {fractions}")
    start = pd.to_datetime(labels["start"], utc=True)
    first = start.groupby(labels["patient_id"]).min()
    cut_train = first.quantile(fractions["train"])
    cut_calibration = first.quantile(fractions["train"] + fractions["calibration"])
    by_patient = pd.Series(
        np.select([first < cut_train, first < cut_calibration], ["train", "calibration"], "test"),
        index=first.index,
    )
    split = labels["patient_id"].map(by_patient)
    if split_params.get("strict_periods", True):
        end = split.map({"train": cut_train, "calibration": cut_calibration})
        split = split.where(~(start >= end), DROPPED)
    assignment = labels[["encounter_id", "patient_id"]].assign(start=start, split=split.to_numpy())
    counts = assignment["split"].value_counts()
    empty = [s for s in SPLITS if counts.get(s, 0) == 0]
    if empty:
        raise ValueError(
            f"features.split: split(s) {empty} are empty with fractions {fractions} "
            f"({len(labels)} labelled encounters)"
        )
    logger.info("splits: %s", counts.to_dict())
    return assignment


def split_feature_matrix(
    feat_encounters: pd.DataFrame, assignment: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Row subsets of ``feat_encounters``: train, calibration and test (time-ordered)."""
    split = feat_encounters["encounter_id"].map(assignment.set_index("encounter_id")["split"])
    return tuple(
        feat_encounters[split.to_numpy() == name]
        .sort_values(["start", "encounter_id"])
        .reset_index(drop=True)
        for name in SPLITS
    )


def assign_cv_folds(train: pd.DataFrame, n_folds: int, seed: int) -> pd.DataFrame:
    """Stratified (by ``label_disease``) group (by ``patient_id``) k-fold inside train.

    Returns:
        ``encounter_id, fold`` (0 … ``n_folds`` - 1).
    """
    patients = train["patient_id"].nunique()
    if not 2 <= n_folds <= patients:
        raise ValueError(
            f"features.split.cv_folds: {n_folds} folds need 2 ≤ folds ≤ {patients} train patients"
        )
    rare_classes = int((train["label_disease"].value_counts() < n_folds).sum())
    if rare_classes:
        logger.info("%d classes have fewer train cases than %d folds", rare_classes, n_folds)
    folds = np.full(len(train), -1)
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # expected with rare diseases; logged above
        warnings.filterwarnings("ignore", message="The least populated class")
        for fold, (_, held_out) in enumerate(
            splitter.split(train, train["label_disease"], groups=train["patient_id"])
        ):
            folds[held_out] = fold
    return pd.DataFrame({"encounter_id": train["encounter_id"].to_numpy(), "fold": folds})


def _describe(frame: pd.DataFrame) -> dict:
    start = pd.to_datetime(frame["start"], utc=True)
    return {
        "encounters": len(frame),
        "patients": int(frame["patient_id"].nunique()),
        "start_min": start.min().isoformat() if len(frame) else None,
        "start_max": start.max().isoformat() if len(frame) else None,
        "label_category": frame["label_category"].value_counts().sort_index().to_dict(),
        "label_severity": frame["label_severity"].value_counts().sort_index().to_dict(),
        "label_disease": frame["label_disease"].value_counts().sort_index().to_dict(),
    }


def split_report(
    *,
    train: pd.DataFrame,
    calibration: pd.DataFrame,
    test: pd.DataFrame,
    assignment: pd.DataFrame,
    cv_folds: pd.DataFrame,
    registry_cases: pd.DataFrame,
    builder: FeatureBuilder,
) -> dict:
    """Sizes, date ranges and class counts per split (JSON-ready)."""
    splits = dict(zip(SPLITS, (train, calibration, test), strict=True))
    seen = set(train["label_disease"])
    return {
        "labelled_encounters": len(assignment),
        "dropped_out_of_period": int((assignment["split"] == DROPPED).sum()),
        "registry_cases": len(registry_cases),
        "feature_count": len(builder.feature_names),
        "splits": {name: _describe(frame) for name, frame in splits.items()},
        "classes_not_in_train": {
            name: sorted(set(frame["label_disease"]) - seen)
            for name, frame in splits.items()
            if name != "train"
        },
        "cv_fold_sizes": {
            str(k): int(v) for k, v in cv_folds["fold"].value_counts().sort_index().items()
        },
    }
