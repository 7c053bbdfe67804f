"""Knowledge + learned model: a blend whose weights depend on what was measured.

For a row of modality pattern ``m`` (``symptoms_only``, ``vitals``, ``labs``, ``all``;
see ``feature_knowledge``), the common-disease probabilities are

    P(d) ∝ exp(α_m · K(d) + β_m · log P_model(d))

with ``K`` the catalogue knowledge scorer's log posterior (renormalised over the model's
classes). α, β are chosen per pattern on held-out training rows (the calibration
split) over a grid: among the pairs whose top-3 accuracy is within a tolerance of the
best, the one of lowest log loss; for sparse patterns a floor on α / (α + β) keeps the
knowledge in charge, so the answer is never driven by a model that only learned the
simulator. Patterns with too few rows keep their default weights.

Time-critical diseases (the catalogue's ``must_not_miss``) are ``protected`` on the sparse
patterns (``protected_patterns``): their blended probability never falls below their
knowledge posterior (the other classes then share what is left). The learned model may
raise sepsis or a pulmonary embolism, never talk the differential out of one that the
findings keep plausible: trained on the simulator, it has learned, for instance, that
septic patients almost always come with vital signs, and would otherwise push sepsis out
of the top 10 of a symptoms-only query.
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
from disease_pipeline.predictor.probabilities import protect

#: log-probability floor of the learned model (its calibrated output can be exactly 0)
LOG_FLOOR = np.log(1e-6)


@dataclass
class KnowledgeBlend:
    """Per-pattern weights ``(α, β)`` (see module docstring) over ``classes``: the learned
    model's classes first, then the catalogue diseases it never saw (``extra``), which
    the knowledge alone can put in the differential."""

    model_classes: list[str]
    weights: dict[str, tuple[float, float]]
    extra: list[str] = field(default_factory=list)
    report: dict = field(default_factory=dict)
    #: classes never ranked below their knowledge posterior (must-not-miss diseases)
    protected: list[str] = field(default_factory=list)
    #: modality patterns on which ``protected`` applies
    protected_patterns: list[str] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        """Every class of the blended differential (model classes first)."""
        return [*self.model_classes, *self.extra]

    @property
    def columns(self) -> list[str]:
        """Knowledge feature column of each class."""
        return [knowledge_column(c) for c in self.classes]

    def knowledge(self, X: pd.DataFrame) -> np.ndarray | None:
        """``(n, n_classes)`` knowledge log posterior over the classes (None when absent)."""
        positions = X.columns.get_indexer(self.columns)
        if (positions < 0).any():
            return None
        values = X.to_numpy()
        if values.dtype == object:  # label or key columns beside the features
            values = X.iloc[:, positions].to_numpy(dtype=float)
        else:
            values = values[:, positions].astype(float)
        K = values
        return K - logsumexp(K, axis=1, keepdims=True)

    def model_log_proba(self, proba: np.ndarray, K: np.ndarray) -> np.ndarray:
        """The model's log probabilities over :attr:`classes`: its own classes keep their
        share ``1 − m``, the classes it never saw get their knowledge posterior (total m)."""
        log_p = np.maximum(np.log(np.maximum(proba, 1e-300)), LOG_FLOOR)
        if not self.extra:
            return log_p
        extra = K[:, len(self.model_classes) :]
        unseen = np.clip(np.exp(extra).sum(axis=1, keepdims=True), 0.0, 1.0 - 1e-9)
        return np.hstack([log_p + np.log1p(-unseen), extra])

    def combine(self, X: pd.DataFrame, proba: np.ndarray) -> np.ndarray:
        """Blended probabilities over :attr:`classes`, rows summing to 1 (without the
        knowledge columns: ``proba`` itself, zeros for the extra classes)."""
        K = self.knowledge(X)
        if K is None:
            return np.hstack([proba, np.zeros((len(proba), len(self.extra)))])
        patterns = modality_pattern(X)
        log_p = self.model_log_proba(proba, K)
        out = np.exp(log_p)
        for pattern, (alpha, beta) in self.weights.items():
            rows = patterns == pattern
            if rows.any():
                out[rows] = np.exp(log_softmax(alpha * K[rows] + beta * log_p[rows], axis=1))
        positions = self.protected_positions()
        rows = np.isin(patterns, getattr(self, "protected_patterns", []))
        if positions and rows.any():
            out[rows] = protect(out[rows], np.exp(K[rows]), positions)
        return out

    def protected_positions(self) -> list[int]:
        """Columns of the protected classes (blends pickled before protection: none)."""
        position = {c: j for j, c in enumerate(self.classes)}
        return [position[c] for c in getattr(self, "protected", []) if c in position]


def _nll(K: np.ndarray, log_p: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    z = log_softmax(alpha * K + beta * log_p, axis=1)
    return float(-z[np.arange(len(y)), y].mean())


def _top3(K: np.ndarray, log_p: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    z = alpha * K + beta * log_p
    truth = z[np.arange(len(y)), y]
    return float(((z > truth[:, None]).sum(axis=1) < 3).mean())


def fit_knowledge_blend(
    X: pd.DataFrame,
    proba: np.ndarray,
    y: np.ndarray,
    classes: list[str],
    *,
    extra: list[str] = (),
    grid: list[float],
    min_rows: int,
    min_knowledge_share: dict[str, float],
    top3_tolerance: float = 0.005,
    scales: tuple[float, ...] = (1.0,),
    default_weights: dict[str, tuple[float, float]],
    protected: list[str] = (),
    protected_patterns: list[str] = (),
) -> KnowledgeBlend:
    """Choose ``(α, β)`` per modality pattern by log loss on ``(X, proba, y)``.

    Args:
        X: feature rows with the knowledge columns; ``proba`` the calibrated model
            probabilities in ``classes`` order; ``y`` class positions (rows < 0 ignored).
        extra: catalogue diseases the model never saw (ranked by the knowledge alone).
        grid: candidate values of α and of β (both, not both 0).
        min_rows: fewer rows of a pattern keep its ``default_weights``.
        min_knowledge_share: pattern → floor of α / (α + β).
        top3_tolerance: the weights are chosen among those whose top-3 accuracy is within
            this of the best (the ranking first), by log loss (then calibration).
        scales: factors tried on the chosen (α, β) together, by log loss (a temperature:
            it changes neither the ranking nor the knowledge share).
        protected: classes never ranked below their knowledge posterior on rows of the
            ``protected_patterns`` (applied by ``combine``, not part of the weights' choice).
    """
    unknown = sorted(set(default_weights) - set(PATTERNS.values()))
    if unknown:
        raise ValueError(f"knowledge blend: unknown modality patterns {unknown}")
    blend = KnowledgeBlend(
        list(classes),
        {p: tuple(w) for p, w in default_weights.items()},
        [c for c in extra if c not in set(classes)],
    )
    blend.protected = [c for c in protected if c in set(blend.classes)]
    blend.protected_patterns = [p for p in protected_patterns if p in set(PATTERNS.values())]
    K = blend.knowledge(X)
    if K is None:
        blend.report = {"skipped": "no knowledge columns in the features"}
        return blend
    keep = y >= 0
    patterns = modality_pattern(X)
    log_p = blend.model_log_proba(proba, K)
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
        top3 = {c: _top3(K[rows], log_p[rows], y[rows], *c) for c in candidates}
        ranked = [c for c in candidates if top3[c] >= max(top3.values()) - top3_tolerance]
        best = min(ranked, key=lambda c: (scores[c], -c[0]))
        # one common scale of (α, β) for calibration: the ranking and the share are kept
        scale = min(
            scales, key=lambda t: _nll(K[rows], log_p[rows], y[rows], t * best[0], t * best[1])
        )
        best = (scale * best[0], scale * best[1])
        scores[best] = _nll(K[rows], log_p[rows], y[rows], *best)
        top3[best] = _top3(K[rows], log_p[rows], y[rows], *best)
        blend.weights[pattern] = (float(best[0]), float(best[1]))
        report[pattern] = {
            "n_rows": n,
            "weights": blend.weights[pattern],
            "fitted": True,
            "log_loss": scores[best],
            "top3": top3[best],
            "top3_knowledge_only": _top3(K[rows], log_p[rows], y[rows], 1.0, 0.0),
            "log_loss_knowledge_only": _nll(K[rows], log_p[rows], y[rows], 1.0, 0.0),
            "log_loss_model_only": _nll(K[rows], log_p[rows], y[rows], 0.0, 1.0),
        }
    blend.report = report
    return blend
