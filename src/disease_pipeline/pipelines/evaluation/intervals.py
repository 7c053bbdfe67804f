"""Bootstrap intervals of evaluation figures (no Kedro, no models).

Encounters are resampled with replacement, ``B`` times, from a seeded generator; a
figure's 95 % interval is the 2.5th and 97.5th percentile of its resampled values
(percentile bootstrap). A paired difference resamples the SAME encounters for both
models, so what the two share (the hard cases) cancels out.

A figure is returned as ``{name: value, name.ci_low: lo, name.ci_high: hi}``, the keys
the acceptance gate reads.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import metrics as m

#: statistic of a resample: the row positions drawn -> one figure
Statistic = Callable[[np.ndarray], float]


def resamples(n: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n)`` row positions drawn with replacement (empty when ``n`` is 0)."""
    if n == 0:
        return np.zeros((n_boot, 0), dtype=int)
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def percentile_interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    """(low, high) percentile interval of the finite ``samples``; NaN when none is."""
    finite = np.asarray(samples, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def figure(name: str, value: float, samples: np.ndarray, level: float) -> dict[str, float]:
    """The figure and its interval under the gate's key names."""
    low, high = percentile_interval(samples, level)
    return {name: float(value), f"{name}.ci_low": low, f"{name}.ci_high": high}


def mean_figure(
    name: str, values: np.ndarray, n_boot: int, seed: int, level: float
) -> dict[str, float]:
    """Mean of per-encounter ``values`` (e.g. 0/1 hits) with its interval (vectorised)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return figure(name, float("nan"), np.array([]), level)
    draws = resamples(values.size, n_boot, seed)
    return figure(name, float(values.mean()), values[draws].mean(axis=1), level)


def statistic_figure(  # noqa: PLR0913 - the statistic and the bootstrap's settings
    name: str,
    statistic: Statistic,
    n: int,
    *,
    n_boot: int,
    seed: int,
    level: float,
    debias: bool = False,
) -> dict[str, float]:
    """Any statistic of ``n`` encounters (given the positions drawn) with its interval.

    ``debias``: for a statistic the resampling itself biases, the interval is shifted by
    the bootstrap's estimate of that bias (mean of the resampled values minus the
    value). Calibration errors are such statistics: a resample repeats rows, which fills
    the probability bins unevenly and raises the error, so on a small split every
    resampled ECE can exceed the observed one and the plain percentile interval would
    not contain it."""
    if n == 0:
        return figure(name, float("nan"), np.array([]), level)
    samples = np.array([statistic(draw) for draw in resamples(n, n_boot, seed)])
    value = statistic(np.arange(n))
    if debias and np.isfinite(value) and np.isfinite(samples).any():
        samples = samples - (float(np.nanmean(samples)) - value)
    return figure(name, value, samples, level)


def paired_mean_difference(
    name: str, a: np.ndarray, b: np.ndarray, *, n_boot: int, seed: int, level: float
) -> dict[str, float]:
    """Mean of ``a − b`` over the same encounters (paired) with its interval."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"{name}: paired figures need one value per encounter for both")
    return mean_figure(name, a - b, n_boot, seed, level)


def hits_at_k(labels: np.ndarray, ranked: list[list[str]], k: int) -> np.ndarray:
    """1.0 where the true label is among the first ``k`` codes of the ranking."""
    return np.array(
        [label in list(codes)[:k] for label, codes in zip(labels, ranked, strict=True)], float
    )


def hits_from_proba(
    labels: np.ndarray, proba: np.ndarray, classes: list[str], k: int
) -> np.ndarray:
    """1.0 where the true label is among the ``k`` most probable ``classes`` (stable order;
    a label outside ``classes`` is a miss)."""
    if len(labels) == 0:
        return np.zeros(0)
    order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    names = np.asarray(classes)[order]
    return (names == np.asarray(labels)[:, None]).any(axis=1).astype(float)


def fast_auroc(y: np.ndarray, score: np.ndarray) -> float:
    """AUROC by the rank-sum formula (ties share their mean rank); NaN with one class."""
    y = np.asarray(y, dtype=bool)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    sorted_scores = np.asarray(score, dtype=float)[order]
    ranks = np.empty(y.size, dtype=float)
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    mean_rank = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(mean_rank, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def resampled_macro_auroc(labels: np.ndarray, proba: np.ndarray, classes: list[str]) -> Statistic:
    """Macro one-vs-rest AUROC of any resample (row positions drawn), as a statistic.

    Each class's scores are sorted once; a resample only re-weights the rows (how often
    each was drawn), so its AUROC is a weighted rank-sum over the fixed order — ties
    share their half — instead of a new sort per class and resample."""
    labels, n = np.asarray(labels), len(labels)
    prepared = []
    for j, name in enumerate(classes):
        order = np.argsort(proba[:, j], kind="mergesort")
        _, group = np.unique(proba[order, j], return_inverse=True)
        prepared.append((order, group, labels[order] == name))

    def statistic(draw: np.ndarray) -> float:
        weights = np.bincount(draw, minlength=n).astype(float)
        values = []
        for order, group, positive in prepared:
            w = weights[order]
            pos = np.bincount(group, w * positive)
            neg = np.bincount(group, w * ~positive)
            denominator = pos.sum() * neg.sum()
            if denominator > 0:
                below = np.cumsum(neg) - neg
                values.append(float(np.sum(pos * (below + 0.5 * neg)) / denominator))
        return float(np.mean(values)) if values else float("nan")

    return statistic


def macro_auroc(labels: np.ndarray, proba: np.ndarray, classes: list[str]) -> float:
    """Macro one-vs-rest AUROC over the classes with positive and negative cases."""
    labels = np.asarray(labels)
    values = [fast_auroc(labels == c, proba[:, j]) for j, c in enumerate(classes)]
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def top_label_ece(labels: np.ndarray, proba: np.ndarray, classes: list[str], bins: int) -> float:
    """ECE of the arg-max class (see :func:`metrics.top_label_ece`); NaN without cases."""
    if len(labels) == 0:
        return float("nan")
    return m.top_label_ece(labels, proba, classes, bins)
