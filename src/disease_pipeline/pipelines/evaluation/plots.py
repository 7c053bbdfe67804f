"""Evaluation figures, built as ``matplotlib.figure.Figure`` objects (no pyplot state)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve


def confusion_matrix_figure(
    labels: np.ndarray, predicted: np.ndarray, classes: list[str]
) -> Figure:
    """Row-normalised confusion matrix (rows: true class, columns: predicted class)."""
    matrix = confusion_matrix(labels, predicted, labels=classes).astype(float)
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    size = max(5.0, 0.28 * len(classes) + 2)
    figure = Figure(figsize=(size + 1, size))
    axes = figure.add_subplot()
    image = axes.imshow(share, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
    axes.set_yticks(range(len(classes)), classes, fontsize=7)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("Common model — confusion matrix (row share)")
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    return figure


def _curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], kind: str) -> Figure:
    """ROC (``kind="roc"``) or precision-recall (``kind="pr"``) curves of binary tasks."""
    figure = Figure(figsize=(6.5, 6))
    axes = figure.add_subplot()
    for name, (truth, score) in curves.items():
        y = np.asarray(truth)
        if y.size == 0 or y.min() == y.max():
            continue
        if kind == "roc":
            x_values, y_values, _ = roc_curve(y, score)
        else:
            y_values, x_values, _ = precision_recall_curve(y, score)
        axes.plot(x_values, y_values, label=name, linewidth=1.2)
    if kind == "roc":
        axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        axes.set_xlabel("1 - specificity")
        axes.set_ylabel("sensitivity")
        axes.set_title("ROC curves (test split)")
    else:
        axes.set_xlabel("recall")
        axes.set_ylabel("precision")
        axes.set_title("Precision-recall curves (test split)")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.legend(fontsize=7, loc="lower right" if kind == "roc" else "lower left")
    figure.tight_layout()
    return figure


def roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """ROC curves, one per named binary task ``{name: (y, score)}``."""
    return _curves(curves, "roc")


def pr_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """Precision-recall curves, one per named binary task ``{name: (y, score)}``."""
    return _curves(curves, "pr")


def reliability_figure(reliability: dict[str, tuple[np.ndarray, np.ndarray]], bins: int) -> Figure:
    """Reliability diagram: observed frequency against mean confidence per bin."""
    figure = Figure(figsize=(6, 6))
    axes = figure.add_subplot()
    edges = np.linspace(0, 1, bins + 1)
    for name, (raw_confidence, raw_correct) in reliability.items():
        confidence, correct = np.asarray(raw_confidence, float), np.asarray(raw_correct, float)
        index = np.minimum((confidence * bins).astype(int), bins - 1)
        xs, ys = [], []
        for b in range(bins):
            mask = index == b
            if mask.any():
                xs.append(confidence[mask].mean())
                ys.append(correct[mask].mean())
        axes.plot(xs, ys, marker="o", label=name)
    axes.plot(edges, edges, color="grey", linestyle=":")
    axes.set_xlabel("predicted probability")
    axes.set_ylabel("observed frequency")
    axes.set_title("Calibration (test split)")
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def importance_figure(importance: pd.DataFrame, top: int) -> Figure:
    """Horizontal bars of mean |SHAP| for the ``top`` most important features."""
    head = importance.head(top).iloc[::-1]
    figure = Figure(figsize=(7, max(3.0, 0.3 * len(head) + 1)))
    axes = figure.add_subplot()
    names = head["label"] if "label" in head else head["feature"]
    repeated = names.duplicated(keep=False)
    names = names.where(~repeated, names + " (" + head["feature"] + ")")
    axes.barh(names, head["mean_abs_shap"], color="#3b75af")
    axes.set_xlabel("mean |SHAP value| (averaged over classes)")
    axes.set_title("Common model — global feature importance")
    axes.tick_params(axis="y", labelsize=8)
    figure.tight_layout()
    return figure
