"""Probability arithmetic shared by the predictor and the edge runtime, numpy only.

The full predictor (:mod:`disease_pipeline.predictor.classifiers`, ``calibrators``,
``red_flags``) and the edge runtime (:mod:`disease_pipeline.edge`) finish their
probabilities with these functions, so both give the same answer by construction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from disease_pipeline.core.levels import SEVERITY_LEVELS

#: probability floor before renormalising
EPS = 1e-6
#: catalogue urgency tier of a disease that makes the severity "critical" (else "high")
CRITICAL_TIER = 5


def ordinal_probabilities(above: np.ndarray, n_levels: int) -> np.ndarray:
    """``(n, n_levels)`` level probabilities from ``(n, n_levels - 1)`` estimates of
    P(y > level k) (Frank & Hall, 2001), made monotone over k first."""
    above = np.minimum.accumulate(above, axis=1)
    proba = np.empty((len(above), n_levels))
    proba[:, 0] = 1.0 - above[:, 0]
    for k in range(1, n_levels - 1):
        proba[:, k] = above[:, k - 1] - above[:, k]
    proba[:, -1] = above[:, -1]
    proba = np.clip(proba, 0.0, None)
    return proba / proba.sum(axis=1, keepdims=True)


def normalise(proba: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Rows floored at :data:`EPS` and renormalised; a row that cannot be (not finite)
    is replaced by its ``fallback`` row."""
    proba = np.clip(proba, EPS, 1.0)
    total = proba.sum(axis=1, keepdims=True)
    out = proba / total
    bad = ~np.isfinite(total[:, 0])
    out[bad] = fallback[bad]
    return out


def respect_critical(
    severity: dict[str, Any], low_cap: float, tier: int, plausibility: float
) -> None:
    """Move the share ``plausibility`` (knowledge posterior of the flagged diseases) of
    P(low) and P(moderate) to "critical" for a tier-5 disease, else "high"; cap P(low)
    at ``low_cap`` (the excess to "moderate"); the level is the most probable of
    moderate/high/critical."""
    probabilities = dict(severity["probabilities"])
    target = "critical" if tier >= CRITICAL_TIER else "high"
    share = float(np.clip(plausibility, 0.0, 1.0))
    for level in ("low", "moderate"):
        moved = share * probabilities[level]
        probabilities[level] -= moved
        probabilities[target] += moved
    excess = probabilities["low"] - low_cap
    if excess > 0:
        probabilities["low"] = low_cap
        probabilities["moderate"] += excess
    severity["probabilities"] = probabilities
    severity["level"] = max(SEVERITY_LEVELS[1:], key=lambda level: probabilities[level])
