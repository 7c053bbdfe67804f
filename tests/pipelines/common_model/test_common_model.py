"""The common-disease and gate models on separable synthetic matrices."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from sklearn.metrics import log_loss

from disease_pipeline.pipelines.common_model import create_pipeline
from disease_pipeline.pipelines.common_model.nodes import (
    compare_imbalance_strategies,
    fit_common_model,
    fit_gate_model,
    split_common_rows,
)
from disease_pipeline.pipelines.common_model.selection import Slices, training_arrays
from disease_pipeline.pipelines.common_model.training import (
    balanced_sample_weight,
    fit_xgb,
    prior_correction,
    time_validation_split,
)
from disease_pipeline.predictor.classifiers import TreeClassifier
from tests.pipelines.common_model.synthetic import (
    COMMON,
    FEATURES,
    load_parameters,
    make_matrix,
    run_training,
)


@pytest.fixture(scope="module")
def params() -> dict:
    return load_parameters("common_model")


@pytest.fixture(scope="module")
def trained(params) -> dict:
    return run_training(create_pipeline(), "common_model", params, make_matrix(1200, seed=1))


@pytest.fixture(scope="module")
def holdout():
    return make_matrix(600, seed=9, start="2024-01-01")


def _prior_log_loss(y_train, y_test, classes) -> float:
    prior = np.array([(np.asarray(y_train) == c).mean() for c in classes])
    return log_loss(y_test, np.tile(prior, (len(y_test), 1)), labels=classes)


def test_common_model_beats_the_class_prior(trained, holdout):
    model = trained["model_common"]
    assert list(model.classes_) == sorted(COMMON)
    rows = holdout[holdout["label_category"] == "COMMON"]
    proba = model.predict_proba(rows)
    assert np.allclose(proba.sum(axis=1), 1)
    model_loss = log_loss(rows["label_disease"], proba, labels=model.classes_)
    prior_loss = _prior_log_loss(
        make_matrix(1200, seed=1).query("label_category == 'COMMON'")["label_disease"],
        rows["label_disease"],
        list(model.classes_),
    )
    assert model_loss < 0.7 * prior_loss
    assert (model.predict(rows) == rows["label_disease"]).mean() > 0.7


def test_gate_model_beats_the_prior_and_keeps_the_rare_share(trained, holdout):
    gate = trained["model_gate"]
    assert list(gate.classes_) == ["COMMON", "RARE"]
    p_rare = gate.predict_proba(holdout)[:, 1]
    y = (holdout["label_category"] == "RARE").to_numpy()
    share = y.mean()
    assert log_loss(y, p_rare) < log_loss(y, np.full(len(y), share))
    # class weights are undone: the mean P(rare) stays near the observed share
    assert abs(p_rare.mean() - share) < 0.03


def test_selection_report_compares_smote_and_weights_and_baseline(trained, caplog):
    report = trained["reporting_common_model_selection"]
    json.dumps(report)  # JSON-ready
    strategies = report["imbalance"]["strategies"]
    assert set(strategies) == {"smote", "class_weights"}
    metric = report["selection_metric"]
    best = max(strategies, key=lambda s: strategies[s][metric])
    assert report["imbalance"]["chosen"] == best
    assert report["tuning"]["n_trials"] >= 1
    validation = report["validation"]
    assert validation["xgboost"]["macro_auroc"] > 0.8
    assert validation["baseline_logistic_regression"]["macro_auroc"] > 0.5


def test_imbalance_choice_is_logged(params, caplog):
    fit, validation = split_common_rows(make_matrix(600, seed=4), params)
    with caplog.at_level(logging.INFO):
        report = compare_imbalance_strategies(fit, validation, params)
    assert f"imbalance strategy '{report['chosen']}' chosen" in caplog.text
    assert "smote" in caplog.text and "class_weights" in caplog.text


def test_smote_imputes_missing_values_and_raises_small_classes(params):
    frame = make_matrix(800, seed=5)
    assert frame["labs_crp_max"].isna().any()
    common = frame[frame["label_category"] == "COMMON"]
    slices = Slices.from_frames(common, common.iloc[:50], "label_disease")
    arrays = training_arrays(
        "smote", slices.X_fit, slices.y_fit, imbalance=params["imbalance"], seed=0
    )
    assert not np.isnan(arrays.X).any()
    before = np.bincount(slices.y_fit)
    after = np.bincount(arrays.y)
    assert after.min() > before.min()
    assert after.max() == before.max()


def test_prior_correction_undoes_class_weights(params):
    frame = make_matrix(3000, seed=6, separation=0.5)
    common = frame[frame["label_category"] == "COMMON"]
    classes = sorted(common["label_disease"].unique())
    y = np.asarray([classes.index(c) for c in common["label_disease"]])
    X = common[FEATURES].to_numpy(np.float32)
    weight = balanced_sample_weight(y, len(classes), 1.0)
    model = fit_xgb(X, y, params["xgboost"] | {"n_estimators": 30}, seed=0, sample_weight=weight)
    factor = prior_correction(np.bincount(y), np.bincount(y, weights=weight))
    raw = TreeClassifier(FEATURES, np.asarray(classes), model)
    corrected = TreeClassifier(FEATURES, np.asarray(classes), model, prior_factor=factor)
    observed = np.bincount(y) / len(y)
    raw_gap = np.abs(raw.predict_proba(common).mean(axis=0) - observed).max()
    corrected_gap = np.abs(corrected.predict_proba(common).mean(axis=0) - observed).max()
    assert corrected_gap < 0.5 * raw_gap


def test_time_split_keeps_patients_on_one_side():
    frame = make_matrix(300, seed=2)
    fit, validation = time_validation_split(frame, 0.3, "common_model")
    assert fit["start"].max() <= validation["start"].min()
    assert not set(fit["patient_id"]) & set(validation["patient_id"])
    with pytest.raises(ValueError, match="common_model.validation_fraction"):
        time_validation_split(frame, 1.5, "common_model")


def test_bad_parameters_and_columns_are_named(params):
    frame = make_matrix(300, seed=3)
    fit, validation = split_common_rows(frame, params)
    with pytest.raises(ValueError, match="common_model.imbalance.strategies"):
        compare_imbalance_strategies(
            fit, validation, params | {"imbalance": params["imbalance"] | {"strategies": ["x"]}}
        )
    with pytest.raises(ValueError, match="common_model.selection_metric"):
        compare_imbalance_strategies(fit, validation, params | {"selection_metric": "auc"})
    with pytest.raises(ValueError, match="not numeric"):
        fit_gate_model(frame.assign(noise="high"), params)


def test_gate_without_rare_cases_falls_back_to_a_prior(params):
    frame = make_matrix(200, seed=8, rare_share=0.0)
    gate, report = fit_gate_model(frame, params)
    p_rare = gate.predict_proba(frame)[:, 1]
    assert np.allclose(p_rare, p_rare[0]) and 0 < p_rare[0] < 0.01
    assert report["train_counts"][1] == 0


def test_query_rows_join_the_common_fit(params):
    """Rows of ``build_common_query_rows`` are fitted beside the training rows: a pattern
    only they carry (here a large ``noise`` value for I10) is learned."""
    train = make_matrix(600, seed=4)
    imbalance = {"chosen": "class_weights"}
    tuning = {"params": {**params["xgboost"], "n_estimators": 20}}
    query = make_matrix(400, seed=5)
    query = query[query["label_category"] == "COMMON"]
    query = query.assign(noise=np.where(query["label_disease"] == "I10", 6.0, 0.0))
    plain = fit_common_model(train, imbalance, tuning, params)
    taught = fit_common_model(train, imbalance, tuning, params, query)
    assert list(taught.classes_) == list(plain.classes_) == sorted(COMMON)
    probe = make_matrix(300, seed=6)
    probe = probe[probe["label_category"] == "COMMON"].assign(noise=6.0)
    i10 = list(taught.classes_).index("I10")
    before = plain.predict_proba(probe)[:, i10].mean()
    after = taught.predict_proba(probe)[:, i10].mean()
    assert after > before + 0.1
    # without query rows (None or empty) the fit is the plain one
    empty = fit_common_model(train, imbalance, tuning, params, query.iloc[:0])
    np.testing.assert_allclose(empty.predict_proba(probe), plain.predict_proba(probe))
