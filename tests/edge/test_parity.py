"""The edge runtime answers as the full predictor: 500 simulated patients, the same
ranked differential (top 5 identical, in fact the whole listed differential), every
listed probability within 1e-4, P(rare) and the severity probabilities within 1e-12
(the boosters' outputs are XGBoost's bit for bit), and the same severity level and
must-not-miss flags."""

from __future__ import annotations

import numpy as np
import pytest

from disease_pipeline.edge.predict import EdgePredictor

TOLERANCE = 1e-4
#: P(rare) and severity: identical boosters, then the same calibrators in numpy
EXACT = 1e-12
TOP = 5


@pytest.fixture(scope="module")
def answers(full_predictor, edge_package, patients):
    full = full_predictor.predict_records(patients, top_k=10, explain=False)
    edge = EdgePredictor.load(edge_package)
    return full, [edge.predict(record, top_k=10) for record in patients]


def test_the_edge_ranks_as_the_full_predictor(answers):
    full, edge = answers
    assert len(full) == len(edge) == 500
    for i, (ref, got) in enumerate(zip(full, edge, strict=True)):
        codes = [e["code"] for e in ref["differential"]]
        assert [e["code"] for e in got["differential"]][:TOP] == codes[:TOP], i
        assert [e["code"] for e in got["differential"]] == codes, i


def test_the_edge_probabilities_are_the_full_predictors(answers):
    full, edge = answers
    worst = 0.0
    for ref, got in zip(full, edge, strict=True):
        probability = {e["code"]: e["probability"] for e in got["differential"]}
        for entry in ref["differential"]:
            worst = max(worst, abs(entry["probability"] - probability[entry["code"]]))
        assert abs(ref["p_rare"] - got["p_rare"]) <= EXACT
        for level, p in ref["severity"]["probabilities"].items():
            assert abs(p - got["severity"]["probabilities"][level]) <= EXACT
        assert got["severity"]["level"] == ref["severity"]["level"]
        flags = [(e["code"], e["must_not_miss"], e["rule_out"]) for e in ref["differential"]]
        assert [
            (e["code"], e["must_not_miss"], e["rule_out"]) for e in got["differential"]
        ] == flags
    assert worst <= TOLERANCE


def test_the_patients_walk_every_path(answers):
    """The comparison covers named rare candidates (the rare hybrid and its encoder),
    the unspecified rare slot, must-not-miss flags and every severity level seen."""
    full, _ = answers
    entries = [e for output in full for e in output["differential"]]
    named_rare = {e["code"] for e in entries if e["category"] == "RARE" and e["code"] != "RARE"}
    assert len(named_rare) >= 20
    assert any(e["code"] == "RARE" for e in entries)
    assert any(e["must_not_miss"] for e in entries)
    assert len({output["severity"]["level"] for output in full}) >= 2


def test_the_edge_models_answer_as_the_full_predictors_bit_for_bit(
    full_predictor, edge_package, patients
):
    """Common, gate and severity models on the patients' feature rows: the edge's
    probabilities (trees walked and summed in numpy, XGBoost's transforms) equal the
    full predictor's models' exactly, before any calibrator could amplify a last bit."""
    edge = EdgePredictor.load(edge_package)
    rows = np.vstack([edge.features.row(edge.rules.patient(record)) for record in patients])
    assert np.isnan(rows).any()  # missing values take the trees' default branches
    for name, classifier in edge.models.items():
        model = getattr(full_predictor, f"{name}_model")
        values = rows[:, classifier.features].astype(np.float32)
        np.testing.assert_array_equal(
            classifier.predict_proba(rows), model.predict_proba(values), err_msg=name
        )


def test_the_onnx_engines_models_answer_as_the_full_predictors_within_1e_5(
    full_predictor, edge_package, patients
):
    """The same with ``engine="onnx"`` (onnxruntime's tree ensembles): float32 tree sums
    in another order, so close rather than equal."""
    edge = EdgePredictor.load(edge_package, engine="onnx")
    rows = np.vstack([edge.features.row(edge.rules.patient(record)) for record in patients])
    for name, classifier in edge.models.items():
        model = getattr(full_predictor, f"{name}_model")
        values = rows[:, classifier.features].astype(np.float32)
        np.testing.assert_allclose(
            classifier.predict_proba(rows),
            model.predict_proba(values),
            rtol=0,
            atol=1e-5,
            err_msg=name,
        )
