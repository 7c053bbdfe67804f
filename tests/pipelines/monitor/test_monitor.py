"""``monitor`` on a replay of held-out synthetic encounters through the service's code
path (real predictor, audit trail, prediction log and feedback in DuckDB): an unshifted
week raises no drift flag, a week with an injected shift flags exactly the shifted
features, and the summary keeps the interface retrain_check reads."""

from __future__ import annotations

import json

import pytest

from disease_pipeline.datasets.evidently_workspace import EvidentlyWorkspaceDataset
from disease_pipeline.datasets.warehouse import WarehouseTableDataset
from disease_pipeline.pipelines.monitor import create_pipeline
from disease_pipeline.pipelines.monitor.replay import Replayer
from tests.pipelines.common_model.synthetic import param_entries, run_in_memory
from tests.pipelines.monitor.conftest import (
    monitor_params,
    reference_predictions_of,
    replay_into,
)

pytestmark = pytest.mark.slow


def run_monitor(warehouse, predictor, tables, split, **params) -> dict:
    train, held_out = split
    data = {
        "prm_prediction_log": None
        if warehouse is None
        else WarehouseTableDataset(table="prediction_log", filepath=str(warehouse)).load(),
        "prm_prediction_log_shadow": None,
        "prm_feedback": WarehouseTableDataset(table="feedback", filepath=str(warehouse)).load()
        if params.pop("feedback", True) and warehouse is not None
        else None,
        "feat_builder": predictor.feature_builder,
        "model_input_train": train,
        "prm_vitals": tables["vitals"],
        "prm_labs": tables["labs"],
        "model_output_test_predictions": reference_predictions_of(predictor, tables, held_out),
    } | param_entries("monitor", monitor_params(min_rows=20, min_subgroup_n=10, **params))
    return run_in_memory(create_pipeline(), data)


@pytest.fixture(scope="module")
def unshifted(tmp_path_factory, predictor, predictor_tables, split):
    folder = tmp_path_factory.mktemp("unshifted")
    warehouse, answers = replay_into(folder, predictor, predictor_tables, split[1])
    return run_monitor(warehouse, predictor, predictor_tables, split), answers


def test_summary_interface_for_retraining(unshifted):
    outputs, answers = unshifted
    summary = outputs["reporting_monitoring_summary"]
    json.dumps(summary, allow_nan=False)  # strict JSON: no NaN reaches the file
    predicted = [a for a in answers if isinstance(a, dict)]
    assert summary["n_predictions"] == len(predicted) > 100
    assert summary["window_start"] < summary["window_end"]
    assert summary["challenger"] == {"mode": None}  # the champion answered alone
    drift = summary["drift"]
    assert set(drift["psi"]) == set(drift["ks_pvalue"]) and len(drift["psi"]) > 50
    assert drift["max_psi"] == max(drift["psi"].values())
    perf = summary["performance"]
    assert perf["n_labelled"] == len(predicted)
    for name in ("top1", "top3", "macro_auroc"):
        low, high = perf["intervals"][name]
        assert low <= perf[name] <= high
        assert perf[f"reference_{name}"] is not None
    # the held-out encounters replayed (twice) through the service path: live figures
    # agree with the reference scored directly on them, within the live interval
    for name in ("top1", "top3"):
        low, high = perf["intervals"][name]
        assert low <= perf[f"reference_{name}"] <= high
        assert abs(perf[name] - perf[f"reference_{name}"]) < 0.03
    assert perf["auroc_drop"] == pytest.approx(
        perf["reference_macro_auroc"] - perf["macro_auroc"], abs=1e-3
    )
    health = summary["health"]
    assert health["n_predicted"] == len(predicted)
    assert health["latency_ms"]["p95"] is None  # replayed through /predict_batch only
    assert health["batch_latency_per_patient_ms"]["p95"] > 0
    assert set(outputs["reporting_monitoring_subgroups"]["attribute"]) == {"sex", "age", "modality"}
    assert "<html" in outputs["reporting_monitoring_evidently"].lower()
    assert "monitor.drift.max_psi" in outputs["reporting_monitoring_mlflow_metrics"]


def test_evidently_workspace_keeps_one_run_per_window(unshifted, tmp_path):
    outputs, _ = unshifted
    runs = outputs["reporting_monitoring_evidently_run"]
    assert len(runs) == 1
    dataset = EvidentlyWorkspaceDataset(
        path=str(tmp_path / "workspace"), project="monitoring", watched_features=["age_years"]
    )
    dataset.save(runs)
    dataset.save(runs)
    assert len(dataset.load()) == 2
    dataset.save([])  # a window too small for a report adds nothing
    assert len(dataset.load()) == 2


def test_unshifted_week_raises_no_drift_flag(unshifted):
    outputs, _ = unshifted
    drift = outputs["reporting_monitoring_summary"]["drift"]
    assert drift["drifted_features"] == [], drift["top_psi"]
    assert not [
        a for a in outputs["reporting_monitoring_summary"]["alerts"] if a.startswith("drift")
    ]


def test_shifted_week_flags_exactly_the_shifted_features(
    tmp_path, predictor, predictor_tables, split
):
    def older(record):
        return record.model_copy(update={"age": min((record.age or 40) + 35, 110)})

    warehouse, _ = replay_into(
        tmp_path, predictor, predictor_tables, split[1], shift=older, feedback=False
    )
    outputs = run_monitor(warehouse, predictor, predictor_tables, split, feedback=False)
    summary = outputs["reporting_monitoring_summary"]
    flagged = set(summary["drift"]["drifted_features"])
    assert "age_years" in flagged
    assert all("age" in name for name in flagged), flagged
    assert any(a.startswith("drift") and "age_years" in a for a in summary["alerts"])
    assert summary["performance"]["n_labelled"] == 0
    assert summary["performance"]["top1"] is None and summary["performance"]["auroc_drop"] is None


def test_no_log_yet_reports_an_empty_window(predictor, predictor_tables, split, tmp_path):
    outputs = run_monitor(None, predictor, predictor_tables, split, feedback=False)
    summary = outputs["reporting_monitoring_summary"]
    assert summary["n_predictions"] == 0 and summary["drift"]["max_psi"] is None
    assert summary["health"]["refusal_rate"] is None and summary["alerts"] == []
    assert outputs["reporting_monitoring_evidently_run"] == []
    json.dumps(summary, allow_nan=False)


def test_each_replay_keys_its_pseudonyms_and_audit_chain_afresh(predictor, tmp_path):
    """A replay's prediction-log and audit keys are random per replay (no constant key
    anyone could recompute the digests with)."""
    first = Replayer.create(predictor, tmp_path / "a" / "w.duckdb", tmp_path / "a")
    second = Replayer.create(predictor, tmp_path / "b" / "w.duckdb", tmp_path / "b")
    try:
        assert len(first.log.key) == 32 and first.log.key != second.log.key
        chains = {r.patients.audit._key for r in (first, second)}
        assert len(chains) == 2 and first.log.key not in chains
    finally:
        first.close()
        second.close()
