"""Calibration: methods lower the ECE of a miscalibrated model; the pipeline assembles
the predictor."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from disease_pipeline.pipelines.calibration import create_pipeline
from disease_pipeline.pipelines.calibration.nodes import calibrate_model
from disease_pipeline.pipelines.common_model import create_pipeline as common_pipeline
from disease_pipeline.pipelines.severity_model import create_pipeline as severity_pipeline
from disease_pipeline.predictor.bundle import DiseasePredictor
from disease_pipeline.predictor.calibrators import (
    Calibrator,
    expected_calibration_error,
    make_calibrator,
)
from tests.pipelines.common_model.synthetic import (
    FEATURES,
    REGISTRY_COLUMNS,
    load_parameters,
    make_matrix,
    param_entries,
    run_in_memory,
    without_query_rows,
)

CLASSES = ["A", "B", "C", "D"]


def miscalibrated(n: int, seed: int, sharpness: float = 3.0):
    """True probabilities, labels drawn from them, and an overconfident model's output."""
    rng = np.random.default_rng(seed)
    truth = rng.dirichlet(np.full(len(CLASSES), 0.8), size=n)
    y = np.asarray([rng.choice(len(CLASSES), p=p) for p in truth])
    logits = sharpness * np.log(truth + 1e-9)
    overconfident = np.exp(logits - logits.max(axis=1, keepdims=True))
    return truth, y, overconfident / overconfident.sum(axis=1, keepdims=True)


class OverconfidentModel:
    """A 'model' whose probabilities are stored in the frame's p_* columns."""

    classes_ = np.asarray(CLASSES)
    feature_names: list[str] = []

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[[f"p_{c}" for c in CLASSES]].to_numpy()


@pytest.fixture(scope="module")
def params() -> dict:
    return load_parameters("calibration")


def test_ece_is_small_when_calibrated_and_large_when_overconfident():
    truth, y, sharp = miscalibrated(4000, seed=0)
    calibrated = expected_calibration_error(truth, y, 10)
    overconfident = expected_calibration_error(sharp, y, 10)
    assert calibrated < 0.03
    assert overconfident > 0.1
    assert expected_calibration_error(truth, y, 10, "classwise") < 0.02


@pytest.mark.parametrize("method", ["isotonic", "platt", "temperature"])
def test_each_method_lowers_ece_on_held_out_rows(method):
    _, y, sharp = miscalibrated(4000, seed=1)
    fit, held = slice(0, 2000), slice(2000, None)
    calibrator = make_calibrator(method).fit(sharp[fit], y[fit])
    calibrated = calibrator.transform(sharp[held])
    assert np.allclose(calibrated.sum(axis=1), 1)
    before = expected_calibration_error(sharp[held], y[held], 10)
    after = expected_calibration_error(calibrated, y[held], 10)
    assert after < 0.5 * before


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="calibration.methods"):
        make_calibrator("beta")


def test_calibrate_model_chooses_by_cross_fitted_ece(params):
    _, y, sharp = miscalibrated(1500, seed=2)
    frame = pd.DataFrame(sharp, columns=[f"p_{c}" for c in CLASSES])
    frame["label_x"] = np.asarray(CLASSES)[y]
    frame["patient_id"] = [f"p{i // 2}" for i in range(len(frame))]
    target = {"label_column": "label_x", "ece": "top_label", "title": "toy"}
    calibrator, report, figure = calibrate_model(frame, OverconfidentModel(), params, target)
    assert set(report["ece"]) == {"none", "isotonic", "platt", "temperature"}
    assert report["chosen"] != "none"
    assert report["ece"][report["chosen"]] == min(report["ece"].values())
    assert report["ece"][report["chosen"]] < 0.5 * report["ece"]["none"]
    assert calibrator.method == report["chosen"]
    assert isinstance(figure, Figure)


def test_too_few_rows_leave_the_model_uncalibrated(params):
    _, y, sharp = miscalibrated(10, seed=3)
    frame = pd.DataFrame(sharp, columns=[f"p_{c}" for c in CLASSES])
    frame["label_x"] = np.asarray(CLASSES)[y]
    frame["patient_id"] = "p"
    target = {"label_column": "label_x", "ece": "top_label", "title": "toy"}
    calibrator, report, _ = calibrate_model(frame, OverconfidentModel(), params, target)
    assert report["chosen"] == "none" and type(calibrator) is Calibrator


def test_intervals_contain_the_probability_and_narrow_with_evidence():
    rng = np.random.default_rng(4)
    few = Calibrator().set_evidence(rng.uniform(size=(20, 2)), 10)
    many = Calibrator().set_evidence(rng.uniform(size=(20000, 2)), 10)
    p = np.array([0.01, 0.3, 0.5, 0.97])
    for calibrator in (few, many):
        low, high = calibrator.interval(p)
        assert np.all((low <= p) & (p <= high)) and np.all((low >= 0) & (high <= 1))
    assert np.all(np.diff(many.interval(p), axis=0) < np.diff(few.interval(p), axis=0))


class ColumnsBuilder:
    """Feature builder stand-in: the synthetic matrix already holds the features."""

    feature_names = FEATURES

    def transform(self, tables):  # pragma: no cover - not used here
        raise NotImplementedError


@pytest.fixture(scope="module")
def calibration_outputs(params) -> dict:
    train = make_matrix(900, seed=21)
    models = run_in_memory(
        common_pipeline() + severity_pipeline(),
        {"model_input_train": train, "feat_builder": None}
        | {"feat_registry_cases": pd.DataFrame(columns=REGISTRY_COLUMNS)}
        | param_entries("common_model", without_query_rows(load_parameters("common_model")))
        | param_entries("severity_model", load_parameters("severity_model")),
    )
    data = {
        "model_input_calibration": make_matrix(500, seed=22, start="2023-06-01"),
        "model_common": models["model_common"],
        "model_gate": models["model_gate"],
        "model_severity": models["model_severity"],
        "feat_builder": ColumnsBuilder(),
        "model_rare": None,  # no rare-disease ranker: the rare slot stays one candidate
    } | param_entries("calibration", params)
    return run_in_memory(create_pipeline(), data)


def test_pipeline_outputs_calibrators_report_figures_and_predictor(calibration_outputs):
    out = calibration_outputs
    assert set(out["model_calibrators"]) == {"common", "gate", "severity"}
    report = out["reporting_calibration_ece"]
    json.dumps(report)
    for name in ("common", "gate", "severity"):
        assert report[name]["chosen"] in report[name]["ece"]
        assert isinstance(out[f"reporting_reliability_{name}"], Figure)
    predictor = pickle.loads(pickle.dumps(out["model_predictor"]))
    assert isinstance(predictor, DiseasePredictor)
    X = make_matrix(50, seed=23).set_index("encounter_id")[FEATURES]
    outputs = predictor.predict_features(X, top_k=100)
    assert len(outputs) == 50
    for item in outputs:
        assert abs(sum(d["probability"] for d in item["differential"]) - 1) < 1e-9
