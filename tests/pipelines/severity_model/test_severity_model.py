"""The severity model: four ordered levels from vitals, labs and scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import log_loss

from disease_pipeline.pipelines.severity_model import create_pipeline
from disease_pipeline.pipelines.severity_model.nodes import (
    LEVELS,
    compare_severity_models,
    fit_severity_model,
    split_severity_rows,
)
from disease_pipeline.predictor.classifiers import CumulativeOrdinalClassifier
from tests.pipelines.common_model.synthetic import load_parameters, make_matrix, run_training


@pytest.fixture(scope="module")
def params() -> dict:
    return load_parameters("severity_model")


@pytest.fixture(scope="module")
def outputs(params) -> dict:
    return run_training(create_pipeline(), "severity_model", params, make_matrix(1000, seed=11))


def test_severity_model_beats_the_level_prior(outputs):
    model = outputs["model_severity"]
    assert list(model.classes_) == LEVELS
    test = make_matrix(500, seed=12, start="2024-01-01")
    proba = model.predict_proba(test)
    assert proba.shape == (500, 4) and np.allclose(proba.sum(axis=1), 1)
    y = test["label_severity"].map(LEVELS.index).to_numpy()
    prior = np.bincount(y, minlength=4) / len(y)
    labels = list(range(4))
    model_loss = log_loss(y, proba, labels=labels)
    assert model_loss < 0.7 * log_loss(y, np.tile(prior, (len(y), 1)), labels=labels)
    assert (proba.argmax(axis=1) == y).mean() > 0.5


def test_report_says_whether_the_ordinal_model_helps(outputs):
    report = outputs["reporting_severity_model_selection"]
    json.dumps(report)
    candidates = report["candidates"]
    assert set(candidates) == {"multiclass", "cumulative"}
    for metrics in candidates.values():
        assert {"log_loss", "macro_auroc", "quadratic_kappa", "mean_abs_level_error"} <= set(
            metrics
        )
    helps = candidates["cumulative"]["log_loss"] < candidates["multiclass"]["log_loss"]
    assert report["ordinal_helps"] == helps
    assert report["chosen"] == ("cumulative" if helps else "multiclass")


def test_cumulative_probabilities_are_a_distribution(params):
    fit, validation = split_severity_rows(make_matrix(600, seed=13), params)
    report = compare_severity_models(fit, validation, params | {"choice": "cumulative"})
    assert report["chosen"] == "cumulative"
    assert len(report["candidates"]["cumulative"]["rounds"]) == 3


def test_forced_choice_must_be_a_candidate(params):
    fit, validation = split_severity_rows(make_matrix(400, seed=14), params)
    with pytest.raises(ValueError, match="severity_model.choice"):
        compare_severity_models(fit, validation, params | {"choice": "ordinal"})


def test_a_level_absent_from_training_gets_probability_zero(params):
    frame = make_matrix(600, seed=15)
    frame = frame[frame["label_severity"] != "critical"]
    fit, validation = split_severity_rows(frame, params)
    for choice in ("multiclass", "cumulative"):
        report = compare_severity_models(fit, validation, params | {"choice": choice})
        assert report["chosen"] == choice
    model = fit_severity_model(frame, report, params)
    proba = model.predict_proba(make_matrix(50, seed=17))
    assert list(model.classes_) == LEVELS and proba.shape == (50, 4)
    assert np.allclose(proba.sum(axis=1), 1) and proba[:, 3].max() < 0.01
    with pytest.raises(ValueError, match="label_severity: rows for fewer than two levels"):
        split_severity_rows(frame[frame["label_severity"] == "low"], params)


def test_ordinal_model_is_monotone_in_acuity(outputs):
    model = outputs["model_severity"]
    frame = make_matrix(400, seed=16)
    proba = model.predict_proba(frame)
    expected_level = proba @ np.arange(4)
    order = np.argsort(frame["news2"].to_numpy())
    low, high = expected_level[order[:100]].mean(), expected_level[order[-100:]].mean()
    assert high > low + 1.0
    if isinstance(model, CumulativeOrdinalClassifier):
        assert len(model.models) == 3
