"""The evaluation pipeline, real nodes, on a stand-in predictor and synthetic splits."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure

from disease_pipeline.pipelines.evaluation import create_pipeline
from disease_pipeline.pipelines.evaluation.diagnostics import evaluate_robustness
from disease_pipeline.pipelines.evaluation.gate import apply_acceptance_gate
from tests.pipelines.evaluation.standin import (
    INFORMATIVE,
    StandInBuilder,
    StandInPredictor,
    make_split,
    run_in_memory,
)

CONF = Path(__file__).resolve().parents[3] / "conf" / "base" / "parameters_evaluation.yml"


def small_params() -> dict:
    params = yaml.safe_load(CONF.read_text())["evaluation"]
    params["subgroups"]["min_group_size"] = 40
    params["cv"]["xgboost"]["n_estimators"] = 15
    params["shap"]["sample_size"] = 60
    params["latency"] |= {"repeats": 3, "batch_size": 10}
    return params


def inputs(predictor, train, cal, test) -> dict:
    params = small_params()
    return {
        "predictor": predictor,
        "model_input_train": train,
        "model_input_calibration": cal,
        "model_input_test": test,
        "model_input_cv_folds": None,
        "feature_builder": StandInBuilder(),
        "reporting_data_version": {"data_version": "v-test-123"},
        "reporting_split_report": {"splits": {"test": {"encounters": len(test), "patients": 1}}},
        "params:evaluation": params,
        "params:evaluation.gate": params["gate"],
    }


@pytest.fixture(scope="module")
def splits():
    return (
        make_split(900, 1, "2021-01-01"),
        make_split(500, 2, "2022-01-01"),
        make_split(500, 3, "2023-01-01"),
    )


@pytest.fixture(scope="module")
def outputs(splits):
    train, cal, test = splits
    return run_in_memory(create_pipeline(), inputs(StandInPredictor(train), train, cal, test))


def test_scored_test_split_has_one_row_per_encounter_with_probabilities(outputs, splits):
    scored = outputs["model_output_test_predictions"]
    assert scored["encounter_id"].tolist() == splits[2]["encounter_id"].tolist()
    common = scored.filter(like="p_common__")
    assert common.shape[1] == 4
    assert np.allclose(common.sum(axis=1), 1)  # P(d | common)
    assert scored["p_rare"].between(0, 1).all()
    assert scored["ranked_codes"].map(len).eq(min(small_params()["scoring_top_k"], 6)).all()
    assert np.allclose(scored.filter(like="p_severity__").sum(axis=1), 1)
    assert set(scored["sex"]) == {"female", "male"}


def test_metrics_of_a_good_model(outputs):
    metrics = outputs["reporting_metrics"]
    assert metrics["common.auroc_macro"] > 0.9
    assert (
        metrics["differential.top5"] >= metrics["differential.top3"] >= metrics["differential.top1"]
    )
    # the alert threshold is chosen on the calibration split and carries over to test
    assert metrics["severity.op.sensitivity"] > 0.85
    assert 0 < metrics["severity.op.threshold"] < 1
    assert metrics["cv.folds"] == 5
    assert metrics["robustness.auroc_degradation"] > 0
    assert metrics["serving.latency_ms_p95"] > 0
    assert outputs["reporting_mlflow_metrics"]["common.auroc_macro"]["step"] == 0


def test_shap_ranks_informative_features_above_noise(outputs):
    importance = outputs["reporting_shap_importance"].set_index("feature")["mean_abs_shap"]
    assert importance[INFORMATIVE[:4]].min() > importance["noise"]
    assert isinstance(outputs["reporting_shap_plot"], Figure)


def test_verdict_lists_every_configured_criterion_and_card_names_data(outputs):
    verdict = outputs["reporting_gate_verdict"]
    assert [c["criterion"] for c in verdict["criteria"]] == list(small_params()["gate"]["criteria"])
    assert verdict["approved"] == (not verdict["failed"])
    card = outputs["reporting_model_card"]
    assert "v-test-123" in card and "Intended use" in card and "Limits" in card
    for name in ("confusion_matrix", "roc_curves", "pr_curves", "calibration_plot"):
        assert isinstance(outputs[f"reporting_{name}"], Figure)
    assert {"sex", "age_band"} == set(outputs["reporting_subgroup_metrics"]["attribute"])
    assert len(outputs["reporting_temporal_metrics"]) == small_params()["temporal_periods"]


def test_a_model_trained_on_shuffled_labels_scores_at_chance_and_is_rejected(splits):
    train, cal, test = splits
    shuffled = train.copy()
    rng = np.random.default_rng(0)
    for column in ("label_disease", "label_severity"):
        shuffled[column] = rng.permutation(shuffled[column].to_numpy())
    shuffled["label_category"] = np.where(
        shuffled["label_disease"].str.contains(":"), "RARE", "COMMON"
    )
    data = inputs(StandInPredictor(shuffled), train, cal, test)
    out = run_in_memory(create_pipeline().to_outputs("reporting_metrics_test"), data)
    metrics = out["reporting_metrics_test"]
    assert metrics["common.auroc_macro"] < 0.65
    verdict = apply_acceptance_gate(metrics, data["params:evaluation.gate"])
    assert verdict["approved"] is False
    assert "auroc_common" in verdict["failed"]


def test_more_missing_inputs_cost_more(outputs, splits):
    train, _, test = splits
    predictor = StandInPredictor(train)
    params = small_params()
    losses = []
    for rate in (0.05, 0.5):
        config = copy.deepcopy(params)
        config["robustness"]["missing_rate"] = rate
        losses.append(
            evaluate_robustness(
                predictor,
                test,
                StandInBuilder(),
                outputs["model_output_test_predictions"],
                config,
            )["robustness.auroc_degradation"]
        )
    assert 0 <= losses[0] < losses[1]
    with pytest.raises(ValueError, match="missing_rate"):
        params["robustness"]["missing_rate"] = 1.5
        evaluate_robustness(predictor, test, StandInBuilder(), pd.DataFrame(), params)
