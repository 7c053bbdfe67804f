"""Bootstrap intervals against known sampling behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from disease_pipeline.pipelines.evaluation import intervals as iv


def test_interval_of_a_mean_covers_the_value_and_shrinks_with_more_cases():
    rng = np.random.default_rng(0)
    widths = []
    for n in (100, 1600):
        hits = (rng.uniform(size=n) < 0.6).astype(float)
        fig = iv.mean_figure("top1", hits, n_boot=400, seed=1, level=0.95)
        assert fig["top1.ci_low"] < fig["top1"] < fig["top1.ci_high"]
        widths.append(fig["top1.ci_high"] - fig["top1.ci_low"])
        # close to the normal approximation 2 * 1.96 * sqrt(p (1 - p) / n)
        assert widths[-1] == pytest.approx(2 * 1.96 * np.sqrt(0.24 / n), rel=0.2)
    assert widths[1] < widths[0] / 3


def test_intervals_are_seeded():
    hits = np.arange(50) % 3 == 0
    a = iv.mean_figure("x", hits, n_boot=100, seed=7, level=0.95)
    assert a == iv.mean_figure("x", hits, n_boot=100, seed=7, level=0.95)
    assert a != iv.mean_figure("x", hits, n_boot=100, seed=8, level=0.95)


def test_paired_difference_cancels_shared_cases():
    rng = np.random.default_rng(0)
    shared = (rng.uniform(size=400) < 0.5).astype(float)
    better = shared.copy()
    better[np.flatnonzero(shared == 0)[:20]] = 1.0  # 20 more hits, nothing lost
    paired = iv.paired_mean_difference("d", better, shared, n_boot=300, seed=0, level=0.95)
    assert paired["d"] == pytest.approx(0.05)
    assert paired["d.ci_low"] > 0  # paired: the interval excludes zero
    # unpaired intervals of the two means overlap widely
    a = iv.mean_figure("a", better, n_boot=300, seed=0, level=0.95)
    b = iv.mean_figure("b", shared, n_boot=300, seed=1, level=0.95)
    assert a["a.ci_low"] < b["b.ci_high"]


def test_fast_auroc_equals_sklearn_with_ties():
    rng = np.random.default_rng(3)
    y = rng.uniform(size=300) < 0.3
    score = np.round(rng.uniform(size=300) + 0.5 * y, 1)  # many ties
    assert iv.fast_auroc(y, score) == pytest.approx(roc_auc_score(y, score))
    assert np.isnan(iv.fast_auroc(np.zeros(5, bool), np.ones(5)))


def test_hits_from_probabilities_use_the_stable_order():
    proba = np.array([[0.2, 0.5, 0.3], [0.4, 0.4, 0.2]])
    hits = iv.hits_from_proba(np.array(["A", "A"]), proba, ["A", "B", "C"], 1)
    assert hits.tolist() == [0.0, 1.0]
    assert iv.hits_from_proba(np.array(["Z"]), proba[:1], ["A", "B", "C"], 3).tolist() == [0.0]


def test_resampled_macro_auroc_equals_sorting_each_resample():
    rng = np.random.default_rng(5)
    classes = ["A", "B", "C"]
    labels = np.asarray(classes)[rng.integers(0, 3, 200)]
    proba = np.round(rng.dirichlet(np.ones(3), 200), 2)  # ties
    statistic = iv.resampled_macro_auroc(labels, proba, classes)
    for draw in (np.arange(200), *iv.resamples(200, 5, seed=0)):
        expected = iv.macro_auroc(labels[draw], proba[draw], classes)
        assert statistic(draw) == pytest.approx(expected)
