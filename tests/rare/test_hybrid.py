"""The learned combination and its temperature."""

from __future__ import annotations

import numpy as np
import pytest

from disease_pipeline.rare.hybrid import fit_temperature, fit_weights, shortlist, softmax

PRIOR = np.array([1.0, 1.0, 0.0])


def _groups(rng, n_patients: int, true_w: np.ndarray, n_candidates: int = 40) -> list:
    groups = []
    for _ in range(n_patients):
        x = rng.normal(size=(n_candidates, len(true_w)))
        p = softmax(x @ true_w, 1.0)
        truth = rng.choice(n_candidates, p=p)
        groups.append(x[np.r_[truth, np.setdiff1d(np.arange(n_candidates), [truth])]])
    return groups


def test_weights_are_recovered_from_enough_patients():
    rng = np.random.default_rng(0)
    true_w = np.array([2.0, 0.0, -1.0])
    weights, _ = fit_weights(_groups(rng, 800, true_w), prior_strength=1.0, prior=PRIOR)
    assert weights == pytest.approx(true_w, abs=0.35)


def test_few_patients_stay_near_the_prior():
    rng = np.random.default_rng(1)
    weights, _ = fit_weights(
        _groups(rng, 3, np.array([0.0, 0.0, 5.0])), prior_strength=50.0, prior=PRIOR
    )
    assert weights == pytest.approx([1.0, 1.0, 0.0], abs=0.3)


def test_temperature_undoes_overconfidence():
    rng = np.random.default_rng(2)
    logits, truths = [], []
    for _ in range(400):
        z = rng.normal(size=30) * 2.0
        truths.append(int(rng.choice(30, p=softmax(z, 1.0))))
        logits.append(3.0 * z)  # the same ranking, three times too sharp
    assert fit_temperature(logits, truths) == pytest.approx(3.0, rel=0.25)


def test_shortlist_puts_the_truth_first_and_keeps_each_component_top():
    x = np.zeros((100, 2))
    x[7, 0] = 5.0
    x[9, 1] = 5.0
    rows = shortlist(x, truth=42, size=3)
    assert rows[0] == 42 and {7, 9} <= set(rows.tolist()) and len(set(rows)) == len(rows)
