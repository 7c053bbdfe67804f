"""The boosters' ONNX files (the edge's ``onnx`` engine): onnxmltools' tree ensembles
run by onnxruntime agree with XGBoost's margins (``output_margin=True``) and
``predict_proba`` within 1e-5 on boosters trained here (binary and multi-class,
missing values, early stopping, a given base score) — close, not bit for bit, which is
why the runtime's default engine is the numpy port (tests/edge/test_trees.py)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import xgboost as xgb

from disease_pipeline.edge.models import Booster
from disease_pipeline.edge.package import PackageError
from disease_pipeline.edge_export.models import onnx_margin_model, xgboost_onnx
from disease_pipeline.edge_export.trees import iteration_range
from tests.edge.test_trees import MODELS, N_FEATURES, _fit

TOLERANCE = 1e-5


def _session(data: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("case", list(MODELS))
def test_the_onnx_boosters_agree_with_xgboost(case):
    params = dict(MODELS[case])
    n_classes = params.pop("n_classes")
    model, test = _fit(n_classes, **params)
    data = xgboost_onnx(model, N_FEATURES)
    booster = Booster(
        {"trees": {"prefix": "m"}, "onnx": "m.onnx"}, {}, {"m.onnx": _session(data)}, "onnx"
    )
    proba = booster.predict_proba(test)
    assert proba.shape == (len(test), n_classes)
    np.testing.assert_allclose(proba, model.predict_proba(test), rtol=0, atol=TOLERANCE)
    reference = model.get_booster().predict(
        xgb.DMatrix(test), output_margin=True, iteration_range=(0, iteration_range(model))
    )
    raw = _session(onnx_margin_model(data)).run(["probabilities"], {"X": test})[0]
    got = raw[:, 1] if n_classes == 2 else raw
    np.testing.assert_allclose(got, reference, rtol=0, atol=TOLERANCE)


def test_the_onnx_engine_needs_the_onnx_files():
    with pytest.raises(PackageError, match="no ONNX file for the booster 'common'"):
        Booster({"trees": {"prefix": "common"}}, {}, {}, "onnx")
