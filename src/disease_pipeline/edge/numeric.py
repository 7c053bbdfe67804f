"""The few scipy.special functions the predictor uses, in numpy (same formulas)."""

from __future__ import annotations

import numpy as np


def logsumexp(a: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    """log(sum(exp(a))) along ``axis``, shifted by the maximum."""
    peak = np.max(a, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    out = np.log(np.sum(np.exp(a - peak), axis=axis, keepdims=True)) + peak
    return out if keepdims else np.squeeze(out, axis=axis)


def log_softmax(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """``a`` minus its log-sum-exp along ``axis``."""
    return a - logsumexp(a, axis=axis, keepdims=True)


def softmax(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp of :func:`log_softmax`, computed as scipy does (shifted exponentials)."""
    shifted = np.exp(a - np.max(a, axis=axis, keepdims=True))
    return shifted / np.sum(shifted, axis=axis, keepdims=True)


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 − p))."""
    return np.log(p / (1.0 - p))


def expit(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(−x))."""
    return 1.0 / (1.0 + np.exp(-x))
