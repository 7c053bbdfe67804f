"""The model pipelines inside the real ``train`` run of the test environment (catalog,
parameters and data of conf/test): every model dataset is written and usable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from disease_pipeline.predictor import DiseasePredictor
from tests.conftest import TEST_DATA_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(pipeline_runner, test_catalog):
    pipeline_runner("simulate")
    pipeline_runner("train")
    return test_catalog


def test_models_calibrators_and_reports_are_written(trained):
    for name in ("common_model", "gate_model", "severity_model", "calibrators", "predictor"):
        assert (TEST_DATA_ROOT / "06_models" / f"{name}.pkl").is_file(), name
    selection = trained.load("reporting_common_model_selection")
    assert selection["imbalance"]["chosen"] in selection["imbalance"]["strategies"]
    assert "baseline_logistic_regression" in selection["validation"]
    ece = trained.load("reporting_calibration_ece")
    assert set(ece) == {"common", "gate", "severity"}
    for name in ece:
        png = Path(TEST_DATA_ROOT / "08_reporting" / "calibration" / f"reliability_{name}.png")
        assert png.stat().st_size > 1000


def test_predictor_scores_the_test_split(trained):
    predictor = trained.load("model_predictor")
    assert isinstance(predictor, DiseasePredictor)
    test = trained.load("model_input_test")
    features = test.set_index("encounter_id")[predictor.feature_names]
    outputs = predictor.predict_features(features, top_k=1000)
    assert len(outputs) == len(test)
    totals = np.asarray([sum(d["probability"] for d in o["differential"]) for o in outputs])
    assert np.allclose(totals, 1)
    [record] = predictor.predict_records(
        [
            {
                "age": 40,
                "sex": "male",
                "symptoms": [{"code": "HP:0001945"}, {"code": "HP:0012735"}],
                "vitals": [{"loinc": "8310-5", "value": 101.3, "unit": "[degF]"}],
            }
        ]
    )
    assert record["explanation"]["target"].endswith(f"({record['differential'][0]['code']})")
    # explanations of the test split: the top candidate's contributions, in clinical words;
    # a class whose trees never split (tiny test-size data) has nothing to say
    explained = predictor.predict_features(features, top_k=3, explain=True)
    with_reasons = [o for o in explained if o["explanation"]["features"]]
    assert len(with_reasons) >= 0.8 * len(explained)
    assert all(
        {"feature", "direction"} <= set(f)
        for o in with_reasons
        for f in o["explanation"]["features"]
    )
