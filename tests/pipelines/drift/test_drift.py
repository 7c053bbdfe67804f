"""Drift: PSI/KS per feature, flags, the Evidently report and the JSON summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from disease_pipeline.pipelines.drift import create_pipeline
from disease_pipeline.pipelines.drift.nodes import (
    compute_feature_drift,
    feature_psi,
    kolmogorov_smirnov,
    population_stability_index,
    psi_pvalue,
)
from tests.pipelines.evaluation.standin import FEATURES, StandInBuilder, make_split, run_in_memory

PARAMS = {
    "psi_threshold": 0.2,
    "psi_bins": 10,
    "psi_alpha": 0.01,
    "psi_min_observed": 30,
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


def test_sampling_noise_of_a_small_window_is_not_flagged_a_real_shift_is():
    rng = np.random.default_rng(3)
    reference, same = rng.normal(size=80), rng.normal(size=40)
    # two small samples of one distribution: the PSI alone crosses 0.2 ...
    assert population_stability_index(reference, same) > 0.2
    # ... but the chi-square test on its bins finds nothing a sample this small rules out
    assert psi_pvalue(reference, same) > 0.05
    assert psi_pvalue(reference, rng.normal(2.0, 1, size=40)) < 1e-6
    train = make_split(80, 1, "2021-01-01")
    test = make_split(40, 2, "2023-01-01")
    table = compute_feature_drift(train, test, StandInBuilder(), PARAMS)
    noisy = table[table["psi"] > PARAMS["psi_threshold"]]
    assert len(noisy) and not table["drifted"].any(), table
    shifted = compute_feature_drift(
        train, make_split(40, 2, "2023-01-01", shift=3.0), StandInBuilder(), PARAMS
    )
    assert shifted.loc[shifted["drifted"], "feature"].tolist() == ["noise"]


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
            "feat_builder": StandInBuilder(),
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


def test_a_rare_binary_value_seen_a_few_times_is_not_significant_a_common_one_is():
    reference = np.zeros(300)
    few = np.zeros(100)
    few[:4] = 1.0  # a finding 4 of 100 live patients report, never seen in the reference
    assert population_stability_index(reference, few) > 0.2  # floored reference bin
    assert psi_pvalue(reference, few) > 1e-4  # exact test: not beyond the noise of 100
    many = np.zeros(100)
    many[:30] = 1.0
    assert psi_pvalue(reference, many) < 1e-10


def test_a_shift_of_a_rarely_measured_lab_shows_in_full_and_so_does_its_measuring_rate():
    rng = np.random.default_rng(4)

    def lab(n: int, measured: float, scale: float) -> np.ndarray:
        values = rng.lognormal(0.0, 0.8, size=n) * scale  # widely spread, as across diseases
        values[rng.uniform(size=n) > measured] = np.nan
        return values

    reference = lab(3000, 0.2, 1.0)
    doubled = lab(1000, 0.2, 2.0)
    assert population_stability_index(reference, doubled) < 0.2  # diluted by the missing bin
    psi, pvalue, part = feature_psi(reference, doubled)
    assert part == "values" and psi > 0.4 and pvalue < 1e-8
    psi, pvalue, part = feature_psi(reference, lab(1000, 0.6, 1.0))  # measured 3x as often
    assert part == "missingness" and psi > 0.2 and pvalue < 1e-10
    psi, pvalue, part = feature_psi(reference, lab(1000, 0.2, 1.0))
    assert psi < 0.1 and pvalue > 1e-4
    few = lab(100, 0.1, 2.0)  # about 10 values: too few for the values part
    assert feature_psi(reference, few, min_observed=30)[2] == "missingness"
