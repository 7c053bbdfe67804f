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
#: relative margin a floor must exceed a probability by to raise it (``protect``)
PROTECT_RTOL = 1e-9
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


def protect(proba: np.ndarray, floor: np.ndarray, positions: list[int]) -> np.ndarray:
    """``proba`` (rows summing to 1) with the columns ``positions`` raised to at least
    ``floor`` (same shape as ``proba``; the knowledge posterior of the knowledge blend's
    must-not-miss diseases); the other columns give up the added mass in proportion to
    their probabilities (all of it, down to 0, when they hold less). Rows are then
    renormalised (only a row whose raised columns alone exceed 1 changes). The added mass
    is taken from the small probabilities themselves, never as ``1 − (sum near 1)``,
    whose rounding residue would swamp them."""
    if not positions:
        return proba
    out = proba.copy()
    before = proba[:, positions]
    # raised only beyond rounding (equal posteriors must not move the other classes)
    raised = np.where(
        floor[:, positions] > before * (1.0 + PROTECT_RTOL), floor[:, positions], before
    )
    added = (raised - before).sum(axis=1)
    out[:, positions] = raised
    kept = np.ones(proba.shape[1], dtype=bool)
    kept[positions] = False
    rest = proba[:, kept].sum(axis=1)
    left = np.maximum(rest - added, 0.0)
    scale = np.divide(left, rest, out=np.zeros_like(rest), where=rest > 0)
    out[:, kept] *= scale[:, None]
    return out / out.sum(axis=1, keepdims=True)
