"""The edge's tree ensembles are XGBoost's, bit for bit (issue 18): margins equal to
``Booster.predict(..., output_margin=True)`` and probabilities equal to
``XGBClassifier.predict_proba``, exactly, on boosters trained here (binary and
multi-class, missing values in training and at prediction, early stopping)."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

import numpy as np
import pytest
import xgboost as xgb

from disease_pipeline.edge.trees import (
    expf,
    leaf_values,
    load_ensemble,
    margins,
    predict_proba,
    sigmoid,
    softmax,
)
from disease_pipeline.edge_export.trees import tree_arrays

N_FEATURES = 12


def _data(seed: int, n: int, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows with a tenth of the values missing, ties on a coarse grid (thresholds hit
    exactly) and labels that depend on several features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    x[:, :4] = np.round(x[:, :4] * 4) / 4
    score = x[:, 0] + 0.5 * x[:, 1] * x[:, 2] - x[:, 5] + rng.normal(scale=0.7, size=n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    x[rng.random(x.shape) < 0.1] = np.nan
    return x, y


def _fit(n_classes: int, **params) -> tuple[xgb.XGBClassifier, np.ndarray]:
    x, y = _data(0, 600, n_classes)
    settings = {"n_estimators": 60, "max_depth": 4, "learning_rate": 0.3, "n_jobs": 1}
    model = xgb.XGBClassifier(**(settings | params))
    if "early_stopping_rounds" in params:
        valid, valid_y = _data(1, 200, n_classes)
        model.fit(x, y, eval_set=[(valid, valid_y)], verbose=False)
    else:
        model.fit(x, y)
    test, _ = _data(2, 1000, n_classes)
    test[:5] = np.nan  # rows with nothing measured
    test[5:10] = np.float32([[-0.25, 0.0, 0.25, 0.5, *[1.0] * (N_FEATURES - 4)]])
    return model, test


def _ensemble(model: xgb.XGBClassifier):
    spec, arrays = tree_arrays(model, N_FEATURES)
    return spec, load_ensemble(spec, {f"m_{k}": v for k, v in arrays.items()}, "m")


MODELS = {
    "binary": {"n_classes": 2},
    "binary, base score given": {"n_classes": 2, "base_score": 0.3},
    "multi-class": {"n_classes": 5},
    "multi-class, deeper, subsampled": {
        "n_classes": 4,
        "max_depth": 6,
        "subsample": 0.8,
        "colsample_bytree": 0.5,
    },
    "binary, early stopping": {
        "n_classes": 2,
        "n_estimators": 300,
        "early_stopping_rounds": 5,
        "learning_rate": 0.5,
    },
}


@pytest.mark.parametrize("case", list(MODELS))
def test_margins_and_probabilities_are_xgboosts_exactly(case):
    params = dict(MODELS[case])
    model, test = _fit(params.pop("n_classes"), **params)
    spec, ensemble = _ensemble(model)
    booster = model.get_booster()
    rounds = spec["n_trees"] // spec["n_groups"]
    reference = booster.predict(
        xgb.DMatrix(test), output_margin=True, iteration_range=(0, rounds)
    ).reshape(len(test), -1)
    got = margins(ensemble, test)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, reference)
    proba = predict_proba(ensemble, test)
    assert proba.dtype == np.float32
    np.testing.assert_array_equal(proba, model.predict_proba(test))
    if "early" in case:
        assert rounds == model.best_iteration + 1 < booster.num_boosted_rounds()


def test_the_comparison_would_see_another_summation_order():
    """Summing the same leaf values in another order (float64, then float32, as a
    float64 accumulator or a pairwise sum would) moves some margins: exact equality
    above is a real check of XGBoost's order, not one any summation passes."""
    model, test = _fit(5, n_estimators=200)
    spec, ensemble = _ensemble(model)
    leaves = leaf_values(ensemble, test).astype(np.float64)
    reference = model.get_booster().predict(xgb.DMatrix(test), output_margin=True)
    other = np.stack(
        [leaves[:, order[order < spec["n_trees"]]].sum(axis=1) for order in ensemble.order],
        axis=1,
    )
    other = (other + ensemble.base_margin).astype(np.float32)
    assert np.abs(other - reference).max() > 0
    np.testing.assert_array_equal(margins(ensemble, test), reference)


def test_one_row_is_answered_as_in_a_batch():
    model, test = _fit(5)
    _, ensemble = _ensemble(model)
    batch = margins(ensemble, test)
    for i in (0, 7, 500):
        np.testing.assert_array_equal(margins(ensemble, test[i : i + 1])[0], batch[i])


def test_expf_is_the_c_librarys():
    """The port of glibc's ``expf`` (what XGBoost's Sigmoid and Softmax call) agrees with
    the C library's own on 200,000 inputs over its whole range, where numpy's float32
    ``exp`` does not."""
    if platform.libc_ver()[0] != "glibc" or ctypes.util.find_library("m") is None:
        pytest.skip("glibc's expf is the reference")
    libm_expf = ctypes.CDLL(ctypes.util.find_library("m")).expf
    libm_expf.restype = ctypes.c_float
    libm_expf.argtypes = [ctypes.c_float]
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            rng.uniform(-110, 90, 150_000),
            rng.uniform(-2, 2, 50_000),
            [0.0, -0.0, 88.7, 88.72283, 88.73, -87.3, -103.97, -103.98, -150.0, np.inf],
        ]
    ).astype(np.float32)
    reference = np.array([libm_expf(float(v)) for v in x], np.float32)
    np.testing.assert_array_equal(expf(x), reference)
    with np.errstate(over="ignore"):
        assert np.sum(np.exp(x) != reference) > 0  # numpy's float32 exp is not enough
    assert np.isnan(expf(np.float32([np.nan])))[0]


def test_sigmoid_and_softmax_are_xgboosts_transforms():
    """Against XGBoost applying its objective's transform to given margins (a model
    without trees contributing: ``base_margin`` carries the margin)."""
    rng = np.random.default_rng(3)
    margin = rng.normal(scale=6, size=(400, 3)).astype(np.float32)
    x = np.zeros((400, 1), np.float32)
    for objective, n_classes in (("binary:logistic", 2), ("multi:softprob", 3)):
        labels = np.arange(400) % n_classes
        model = xgb.XGBClassifier(n_estimators=1, max_depth=1, objective=objective, n_jobs=1)
        model.fit(x, labels)
        given = margin[:, :1] if n_classes == 2 else margin
        matrix = xgb.DMatrix(x, base_margin=given.ravel() if n_classes == 2 else given)
        reference = model.get_booster().predict(matrix, iteration_range=(0, 1))
        leaves = model.get_booster().predict(matrix, output_margin=True, iteration_range=(0, 1))
        if n_classes == 2:
            np.testing.assert_array_equal(sigmoid(leaves), reference)
        else:
            np.testing.assert_array_equal(softmax(leaves), reference)
