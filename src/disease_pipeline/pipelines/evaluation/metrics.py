"""Classification and calibration metrics on plain arrays (no Kedro, no models).

Conventions: ``labels`` is a 1-D array of class names, ``proba`` an (n, k) array whose
columns follow ``classes``; a per-class figure is NaN when it is undefined (a class with
no positive or no negative case in the sample), and macro averages skip NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score


def one_hot(labels: np.ndarray, classes: list[str]) -> np.ndarray:
    """(n, k) 0/1 matrix; a label outside ``classes`` gives an all-zero row."""
    labels = np.asarray(labels)
    return (labels[:, None] == np.asarray(classes)[None, :]).astype(float)


def binary_auroc(y: np.ndarray, score: np.ndarray) -> float:
    """AUROC of a binary 0/1 target, NaN when only one class is present."""
    y = np.asarray(y, dtype=float)
    if y.size == 0 or y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, score))


def binary_auprc(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision of a binary 0/1 target, NaN without positives or negatives."""
    y = np.asarray(y, dtype=float)
    if y.size == 0 or y.min() == y.max():
        return float("nan")
    return float(average_precision_score(y, score))


def per_class_table(labels: np.ndarray, proba: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """One row per class: support, AUROC and AUPRC (one-vs-rest), and precision, F1,
    sensitivity and specificity of the arg-max prediction."""
    truth = one_hot(labels, classes)
    predicted = one_hot(np.asarray(classes)[np.argmax(proba, axis=1)], classes)
    rows = []
    for j, name in enumerate(classes):
        y, p = truth[:, j], predicted[:, j]
        tp, fp = float((y * p).sum()), float(((1 - y) * p).sum())
        fn, tn = float((y * (1 - p)).sum()), float(((1 - y) * (1 - p)).sum())
        precision = tp / (tp + fp) if tp + fp else float("nan")
        sensitivity = tp / (tp + fn) if tp + fn else float("nan")
        specificity = tn / (tn + fp) if tn + fp else float("nan")
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
        rows.append(
            {
                "class": name,
                "support": int(y.sum()),
                "auroc": binary_auroc(y, proba[:, j]),
                "auprc": binary_auprc(y, proba[:, j]),
                "precision": precision,
                "f1": f1,
                "sensitivity": sensitivity,
                "specificity": specificity,
            }
        )
    return pd.DataFrame(rows)


def macro(table: pd.DataFrame, column: str) -> float:
    """Mean of a per-class column over the classes where it is defined."""
    values = table[column].astype(float)
    return float(values.mean()) if values.notna().any() else float("nan")


def top_k_accuracy(labels: np.ndarray, ranked: list[list[str]], k: int) -> float:
    """Share of cases whose true label is among the first ``k`` codes of their ranking."""
    if len(labels) == 0:
        return float("nan")
    hits = [label in list(codes)[:k] for label, codes in zip(labels, ranked, strict=True)]
    return float(np.mean(hits))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int) -> float:
    """ECE with ``bins`` equal-width bins: sum over bins of |accuracy - confidence|,
    weighted by the share of cases in the bin."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    if confidence.size == 0:
        return float("nan")
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def top_label_ece(labels: np.ndarray, proba: np.ndarray, classes: list[str], bins: int) -> float:
    """ECE of the arg-max class (confidence = its probability)."""
    predicted = np.asarray(classes)[np.argmax(proba, axis=1)]
    return expected_calibration_error(proba.max(axis=1), predicted == np.asarray(labels), bins)


def binary_ece(y: np.ndarray, score: np.ndarray, bins: int) -> float:
    """ECE of a probability of the positive class against 0/1 outcomes."""
    return expected_calibration_error(score, y, bins)


def brier_score(labels: np.ndarray, proba: np.ndarray, classes: list[str]) -> float:
    """Multi-class Brier score: mean over cases of the squared distance to the one-hot truth."""
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(np.sum((proba - one_hot(labels, classes)) ** 2, axis=1)))


def threshold_for_sensitivity(y: np.ndarray, score: np.ndarray, target: float) -> float:
    """The highest threshold ``t`` such that flagging ``score >= t`` finds at least
    ``target`` of the positives. NaN without positives."""
    positives = np.sort(np.asarray(score, dtype=float)[np.asarray(y) == 1])[::-1]
    if positives.size == 0:
        return float("nan")
    needed = int(np.ceil(target * positives.size - 1e-9))
    return float(positives[max(needed, 1) - 1])


def binary_at_threshold(y: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    """Sensitivity, specificity, precision and share flagged when ``score >= threshold``."""
    y = np.asarray(y).astype(bool)
    flagged = np.asarray(score, dtype=float) >= threshold
    tp, fp = float((flagged & y).sum()), float((flagged & ~y).sum())
    fn, tn = float((~flagged & y).sum()), float((~flagged & ~y).sum())
    return {
        "threshold": float(threshold),
        "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
        "specificity": tn / (tn + fp) if tn + fp else float("nan"),
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "flagged_share": float(flagged.mean()) if flagged.size else float("nan"),
        "positives": int(y.sum()),
    }


def log_loss(labels: np.ndarray, proba: np.ndarray, classes: list[str]) -> float:
    """Mean negative log-probability of the true class (clipped at 1e-15)."""
    if len(labels) == 0:
        return float("nan")
    p_true = (proba * one_hot(labels, classes)).sum(axis=1)
    return float(-np.mean(np.log(np.clip(p_true, 1e-15, 1.0))))


def macro_disease_auroc(labels: np.ndarray, scores: dict[str, np.ndarray]) -> tuple[float, int]:
    """Macro one-vs-rest AUROC of the diseases ``scores`` names (disease → one score per
    case), over the diseases with both positive and negative cases.
    Returns ``(macro AUROC, number of diseases evaluated)``."""
    aurocs = [binary_auroc(labels == disease, score) for disease, score in scores.items()]
    aurocs = [a for a in aurocs if np.isfinite(a)]
    return (float(np.mean(aurocs)) if aurocs else float("nan")), len(aurocs)


def listed_disease_macro_auroc(
    labels: np.ndarray,
    ranked: list[list[str]],
    probabilities: list[list[float]],
    diseases: np.ndarray,
) -> tuple[float, int]:
    """:func:`macro_disease_auroc` over ``diseases``, scoring each case by the disease's
    probability in its listed differential and 0 when the disease is not listed (a lower
    bound: unlisted candidates tie at the bottom)."""
    listed = [
        dict(zip(codes, probs, strict=True))
        for codes, probs in zip(ranked, probabilities, strict=True)
    ]
    scores = {
        disease: np.fromiter((item.get(disease, 0.0) for item in listed), float, len(listed))
        for disease in np.unique(diseases)
    }
    return macro_disease_auroc(labels, scores)
