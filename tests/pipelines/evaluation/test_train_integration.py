"""Evaluation and drift inside the real ``train`` pipeline (test environment)."""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def catalog(pipeline_runner, test_catalog):
    pipeline_runner("simulate")
    pipeline_runner("train")
    return test_catalog


def test_every_gate_metric_is_computed_on_the_real_predictor(catalog):
    metrics = catalog.load("reporting_metrics")
    verdict = catalog.load("reporting_gate_verdict")
    for criterion in verdict["criteria"]:
        assert criterion["value"] is not None, criterion["criterion"]
        assert math.isfinite(metrics[criterion["metric"]])
    assert metrics["common.n_classes"] >= 2
    assert metrics["cv.folds"] >= 2
    scored = catalog.load("model_output_test_predictions")
    assert len(scored) == len(catalog.load("model_input_test"))
    # per-rare-disease AUROC from untruncated probabilities, never below the lower bound
    rare_labels = set(scored.loc[scored["label_category"] == "RARE", "label_disease"])
    assert {c.removeprefix("p_rare__") for c in scored if c.startswith("p_rare__")} == rare_labels
    assert metrics["differential.rare_diseases_evaluated"] == len(rare_labels)
    assert (
        metrics["differential.rare_macro_auroc"]
        >= metrics["differential.rare_macro_auroc_listed"] - 0.02
    )


def test_model_card_and_shap_refer_to_this_run(catalog):
    card = catalog.load("reporting_model_card")
    assert catalog.load("reporting_data_version")["data_version"] in card
    importance = catalog.load("reporting_shap_importance")
    names = set(catalog.load("predictor").common_model.feature_names)
    assert set(importance["feature"]) == names
    assert importance["mean_abs_shap"].iloc[0] > 0


def test_drift_covers_every_model_feature(catalog):
    summary = catalog.load("reporting_drift_summary")
    assert summary["n_features"] == len(catalog.load("feature_builder").feature_names)
    assert summary["reference"]["to"] <= summary["current"]["from"]
    assert "<html" in catalog.load("reporting_drift_report").lower()
