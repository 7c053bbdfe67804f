"""Metric functions against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from disease_pipeline.pipelines.evaluation import metrics as m
from disease_pipeline.pipelines.evaluation.diagnostics import mean_abs_shap


def test_per_class_table_matches_a_hand_count():
    classes = ["A", "B", "C"]
    labels = np.array(["A", "A", "B", "B", "C", "C"])
    proba = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.3, 0.6, 0.1],  # A predicted as B
            [0.1, 0.8, 0.1],
            [0.2, 0.7, 0.1],
            [0.1, 0.1, 0.8],
            [0.1, 0.2, 0.7],
        ]
    )
    table = m.per_class_table(labels, proba, classes).set_index("class")
    assert table.loc["A", "sensitivity"] == pytest.approx(0.5)
    assert table.loc["B", "sensitivity"] == pytest.approx(1.0)
    assert table.loc["B", "specificity"] == pytest.approx(3 / 4)
    assert table.loc["B", "precision"] == pytest.approx(2 / 3)
    assert table.loc["A", "f1"] == pytest.approx(2 * 1 / (2 * 1 + 0 + 1))
    assert table.loc["C", "auroc"] == pytest.approx(1.0)


def test_a_class_absent_from_the_sample_has_no_auroc_and_is_skipped_by_macro():
    table = m.per_class_table(
        np.array(["A", "B"]), np.array([[0.9, 0.1, 0], [0.2, 0.8, 0]]), ["A", "B", "C"]
    )
    assert np.isnan(table.set_index("class").loc["C", "auroc"])
    assert m.macro(table, "auroc") == pytest.approx(1.0)


def test_threshold_for_sensitivity_is_the_highest_reaching_the_target():
    rng = np.random.default_rng(0)
    y = rng.uniform(size=500) < 0.3
    score = rng.uniform(size=500) + y
    threshold = m.threshold_for_sensitivity(y, score, 0.95)
    assert m.binary_at_threshold(y, score, threshold)["sensitivity"] >= 0.95
    higher = np.min(score[score > threshold])
    assert m.binary_at_threshold(y, score, higher)["sensitivity"] < 0.95
    assert np.isnan(m.threshold_for_sensitivity(np.zeros(3), np.ones(3), 0.95))


def test_ece_is_zero_when_calibrated_and_the_gap_when_overconfident():
    confidence = np.full(1000, 0.7)
    correct = np.arange(1000) < 700
    assert m.expected_calibration_error(confidence, correct, 10) == pytest.approx(0.0)
    assert m.expected_calibration_error(np.full(1000, 0.9), correct, 10) == pytest.approx(0.2)


def test_brier_top_k_and_log_loss():
    classes = ["A", "B"]
    labels = np.array(["A", "B"])
    assert m.brier_score(labels, np.array([[1.0, 0.0], [0.0, 1.0]]), classes) == 0.0
    assert m.brier_score(labels, np.array([[0.5, 0.5], [0.5, 0.5]]), classes) == pytest.approx(0.5)
    assert m.log_loss(labels, np.array([[0.5, 0.5], [0.5, 0.5]]), classes) == pytest.approx(
        np.log(2)
    )
    ranked = [["B", "A"], ["B", "A"]]
    assert m.top_k_accuracy(labels, ranked, 1) == 0.5
    assert m.top_k_accuracy(labels, ranked, 2) == 1.0


def test_mean_abs_shap_accepts_every_layout_of_shap_values():
    values = np.zeros((5, 3, 2))  # shap 0.51 multiclass: (rows, features, classes)
    values[:, 1, :] = -2.0
    expected = [0.0, 2.0, 0.0]
    assert mean_abs_shap(values, 3).tolist() == expected
    assert mean_abs_shap([values[:, :, 0], values[:, :, 1]], 3).tolist() == expected
    assert mean_abs_shap(np.moveaxis(values, 1, 2), 3).tolist() == expected
    assert mean_abs_shap(values[:, :, 0], 3).tolist() == expected


def test_rare_disease_auroc_scores_unlisted_candidates_as_zero():
    labels = np.array(["OMIM:1", "OMIM:1", "OMIM:2", "J18.9"])
    ranked = [["OMIM:1", "J18.9"], ["J18.9"], ["OMIM:1", "OMIM:2"], ["J18.9", "OMIM:2"]]
    probabilities = [[0.7, 0.3], [0.9], [0.6, 0.4], [0.8, 0.2]]
    auroc, n = m.listed_disease_macro_auroc(
        labels, ranked, probabilities, np.array(["OMIM:1", "OMIM:1", "OMIM:2"])
    )
    # OMIM:1 scores (0.7, 0, 0.6, 0), positives 0 and 1: of 4 pairs 2 won, 1 tied
    # -> 0.625; OMIM:2 scores (0, 0, 0.4, 0.2) for positive case 2: 3 of 3 -> 1.0
    assert n == 2
    assert auroc == pytest.approx((0.625 + 1.0) / 2)
