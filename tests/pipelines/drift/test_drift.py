"""Drift: PSI/KS per feature, flags, the Evidently report and the JSON summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from disease_pipeline.pipelines.drift import create_pipeline
from disease_pipeline.pipelines.drift.nodes import (
    compute_feature_drift,
    kolmogorov_smirnov,
    population_stability_index,
)
from tests.pipelines.evaluation.standin import FEATURES, StandInBuilder, make_split, run_in_memory

PARAMS = {
    "psi_threshold": 0.2,
    "psi_bins": 10,
    "ks_alpha": 0.01,
    "evidently_max_features": 4,
    "evidently_drift_share": 0.5,
    "top_features_in_summary": 5,
}


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=5000)
    assert population_stability_index(reference, rng.normal(size=2000)) < 0.02
    assert population_stability_index(reference, rng.normal(0.8, 1, size=2000)) > 0.2


def test_psi_counts_a_change_in_missingness_and_in_binary_features():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=4000)
    current = rng.normal(size=4000)
    current[: len(current) // 2] = np.nan
    assert population_stability_index(reference, current) > 0.2
    binary_ref = (rng.uniform(size=4000) < 0.1).astype(float)
    assert population_stability_index(binary_ref, binary_ref[::-1]) < 0.01
    assert (
        population_stability_index(binary_ref, (rng.uniform(size=4000) < 0.4).astype(float)) > 0.2
    )


def test_ks_detects_a_shift_and_handles_empty_samples():
    rng = np.random.default_rng(2)
    statistic, pvalue = kolmogorov_smirnov(rng.normal(size=1000), rng.normal(1, 1, size=1000))
    assert statistic > 0.3 and pvalue < 1e-6
    assert np.isnan(kolmogorov_smirnov(np.array([np.nan]), rng.normal(size=10))[0])


def test_only_the_shifted_feature_is_flagged():
    train = make_split(1500, 1, "2021-01-01")
    test = make_split(600, 2, "2023-01-01", shift=1.5)
    table = compute_feature_drift(train, test, StandInBuilder(), PARAMS)
    assert set(table["feature"]) == set(FEATURES)
    assert table.loc[table["drifted"], "feature"].tolist() == ["noise"]
    assert table.iloc[0]["feature"] == "noise"
    assert table.set_index("feature").loc["noise", "ks_drifted"]


def test_a_split_without_a_model_feature_is_rejected_by_name():
    train = make_split(200, 1, "2021-01-01")
    with pytest.raises(ValueError, match="model_input_test lacks .*noise"):
        compute_feature_drift(train, train.drop(columns="noise"), StandInBuilder(), PARAMS)


def test_drift_pipeline_writes_report_and_summary():
    train = make_split(1000, 1, "2021-01-01")
    test = make_split(400, 2, "2023-01-01", shift=1.5)
    out = run_in_memory(
        create_pipeline(),
        {
            "model_input_train": train,
            "model_input_test": test,
            "feature_builder": StandInBuilder(),
            "params:drift": PARAMS,
        },
    )
    summary = out["reporting_drift_summary"]
    assert summary["alert"] is True
    assert [f["feature"] for f in summary["drifted_features"]] == ["noise"]
    assert summary["reference"]["to"] < summary["current"]["from"]
    assert "<html" in out["reporting_drift_report"].lower()
    assert out["reporting_drift_evidently_summary"]["evidently_columns"] == 4
    assert out["reporting_drift_mlflow_metrics"]["drift.n_drifted_psi"]["value"] == 1.0
    assert isinstance(out["reporting_drift_features"], pd.DataFrame)
