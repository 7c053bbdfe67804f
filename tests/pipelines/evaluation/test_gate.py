"""The acceptance gate decides from the metrics and says why."""

from __future__ import annotations

import pytest

from disease_pipeline.pipelines.evaluation.gate import apply_acceptance_gate, verdict_markdown

GATE = {
    "criteria": {
        "auroc_common": {"metric": "common.auroc_macro", "op": ">=", "threshold": 0.85},
        "latency": {"metric": "serving.latency_ms_p95", "op": "<=", "threshold": 500},
    }
}


def test_all_criteria_met_approves():
    verdict = apply_acceptance_gate({"common.auroc_macro": 0.9, "serving.latency_ms_p95": 20}, GATE)
    assert verdict["approved"] is True
    assert verdict["failed"] == []
    assert [c["passed"] for c in verdict["criteria"]] == [True, True]


def test_one_failed_criterion_rejects_and_is_named():
    verdict = apply_acceptance_gate({"common.auroc_macro": 0.8, "serving.latency_ms_p95": 20}, GATE)
    assert verdict["approved"] is False
    assert verdict["failed"] == ["auroc_common"]
    assert "auroc_common" in verdict["reason"] and "0.8" in verdict["reason"]
    page = verdict_markdown(verdict)
    assert "REJECTED" in page and "**FAIL**" in page


def test_a_missing_or_nan_metric_fails():
    verdict = apply_acceptance_gate({"common.auroc_macro": float("nan")}, GATE)
    assert verdict["approved"] is False
    assert set(verdict["failed"]) == {"auroc_common", "latency"}
    assert all(c["value"] is None for c in verdict["criteria"])


def test_a_malformed_criterion_is_reported_by_name():
    with pytest.raises(ValueError, match="'latency'.*op"):
        apply_acceptance_gate(
            {}, {"criteria": {"latency": {"metric": "x", "op": "<", "threshold": 1}}}
        )
    with pytest.raises(ValueError, match="evaluation.gate.criteria"):
        apply_acceptance_gate({}, {"criteria": {}})
