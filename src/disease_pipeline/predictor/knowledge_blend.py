"""Knowledge + learned model: a blend whose weights depend on what was measured.

For a row of modality pattern ``m`` (``symptoms_only``, ``vitals``, ``labs``, ``all``;
see ``feature_knowledge``), the common-disease probabilities are

    P(d) ∝ exp(α_m · K(d) + β_m · log P_model(d))

with ``K`` the catalogue knowledge scorer's log posterior (renormalised over the model's
classes). α, β are chosen per pattern by log loss on held-out training rows (the
calibration split) over a grid; for sparse patterns a floor on α / (α + β) keeps the
knowledge in charge, so the answer is never driven by a model that only learned the
simulator. Patterns with too few rows keep their default weights.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import log_softmax, logsumexp

from disease_pipeline.predictor.feature_knowledge import (
    PATTERNS,
    knowledge_column,
    modality_pattern,
)

#: log-probability floor of the learned model (its calibrated output can be exactly 0)
LOG_FLOOR = np.log(1e-6)


@dataclass
class KnowledgeBlend:
    """Per-pattern weights ``(α, β)`` over the common classes (see module docstring)."""

    classes: list[str]
    weights: dict[str, tuple[float, float]]
    report: dict = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """Knowledge feature column of each class."""
        return [knowledge_column(c) for c in self.classes]

    def knowledge(self, X: pd.DataFrame) -> np.ndarray | None:
        """``(n, n_classes)`` knowledge log posterior over the classes (None when absent)."""
        if not all(c in X.columns for c in self.columns):
            return None
        K = X[self.columns].to_numpy(float)
        return K - logsumexp(K, axis=1, keepdims=True)

    def combine(self, X: pd.DataFrame, proba: np.ndarray) -> np.ndarray:
        """Blended probabilities, rows summing to 1 (``proba`` itself without knowledge)."""
        K = self.knowledge(X)
        if K is None:
            return proba
        patterns = modality_pattern(X)
        out = np.array(proba, dtype=float, copy=True)
        log_p = np.maximum(np.log(np.maximum(proba, 1e-300)), LOG_FLOOR)
        for pattern, (alpha, beta) in self.weights.items():
            rows = patterns == pattern
            if rows.any():
                out[rows] = np.exp(log_softmax(alpha * K[rows] + beta * log_p[rows], axis=1))
        return out


def _nll(K: np.ndarray, log_p: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    z = log_softmax(alpha * K + beta * log_p, axis=1)
    return float(-z[np.arange(len(y)), y].mean())


def fit_knowledge_blend(
    X: pd.DataFrame,
    proba: np.ndarray,
    y: np.ndarray,
    classes: list[str],
    *,
    grid: list[float],
    min_rows: int,
    min_knowledge_share: dict[str, float],
    default_weights: dict[str, tuple[float, float]],
) -> KnowledgeBlend:
    """Choose ``(α, β)`` per modality pattern by log loss on ``(X, proba, y)``.

    Args:
        X: feature rows with the knowledge columns; ``proba`` the calibrated model
            probabilities in ``classes`` order; ``y`` class positions (rows < 0 ignored).
        grid: candidate values of α and of β (both, not both 0).
        min_rows: fewer rows of a pattern keep its ``default_weights``.
        min_knowledge_share: pattern → floor of α / (α + β).
    """
    unknown = sorted(set(default_weights) - set(PATTERNS.values()))
    if unknown:
        raise ValueError(f"knowledge blend: unknown modality patterns {unknown}")
    blend = KnowledgeBlend(list(classes), {p: tuple(w) for p, w in default_weights.items()})
    K = blend.knowledge(X)
    if K is None:
        blend.report = {"skipped": "no knowledge columns in the features"}
        return blend
    keep = y >= 0
    patterns = modality_pattern(X)
    log_p = np.maximum(np.log(np.maximum(proba, 1e-300)), LOG_FLOOR)
    report = {}
    for pattern in PATTERNS.values():
        rows = keep & (patterns == pattern)
        n = int(rows.sum())
        if n < min_rows:
            report[pattern] = {"n_rows": n, "weights": blend.weights.get(pattern), "fitted": False}
            continue
        floor = float(min_knowledge_share.get(pattern, 0.0))
        candidates = [
            (a, b)
            for a, b in itertools.product(grid, grid)
            if a + b > 0 and a / (a + b) >= floor - 1e-12
        ]
        scores = {c: _nll(K[rows], log_p[rows], y[rows], *c) for c in candidates}
        best = min(candidates, key=lambda c: (scores[c], -c[0]))
        blend.weights[pattern] = (float(best[0]), float(best[1]))
        report[pattern] = {
            "n_rows": n,
            "weights": blend.weights[pattern],
            "fitted": True,
            "log_loss": scores[best],
            "log_loss_knowledge_only": _nll(K[rows], log_p[rows], y[rows], 1.0, 0.0),
            "log_loss_model_only": _nll(K[rows], log_p[rows], y[rows], 0.0, 1.0),
        }
    blend.report = report
    return blend
