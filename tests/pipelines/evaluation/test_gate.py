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


INTERVAL_GATE = {
    "criteria": {
        "top1": {"metric": "common.top1", "op": ">=", "threshold": 0.5, "bound": "interval"},
        "ece": {"metric": "common.ece", "op": "<=", "threshold": 0.1, "bound": "interval"},
    }
}


def test_an_interval_criterion_compares_the_lower_or_upper_bound():
    metrics = {
        "common.top1": 0.6,
        "common.top1.ci_low": 0.55,
        "common.top1.ci_high": 0.65,
        "common.ece": 0.05,
        "common.ece.ci_low": 0.03,
        "common.ece.ci_high": 0.08,
    }
    assert apply_acceptance_gate(metrics, INTERVAL_GATE)["approved"] is True
    # the point values still pass, but the lower bound of top-1 does not
    verdict = apply_acceptance_gate(metrics | {"common.top1.ci_low": 0.45}, INTERVAL_GATE)
    assert verdict["failed"] == ["top1"]
    assert "common.top1.ci_low = 0.45" in verdict["reason"]
    # the upper bound of the ECE interval is what counts for "<="
    verdict = apply_acceptance_gate(metrics | {"common.ece.ci_high": 0.12}, INTERVAL_GATE)
    assert verdict["failed"] == ["ece"]
    row = verdict["criteria"][1]
    assert (row["value"], row["compared_value"]) == (0.05, 0.12)
    assert "[0.03, 0.12]" in verdict_markdown(verdict)


def test_an_interval_criterion_without_its_interval_fails():
    verdict = apply_acceptance_gate({"common.top1": 0.9, "common.ece": 0.01}, INTERVAL_GATE)
    assert verdict["approved"] is False
    assert set(verdict["failed"]) == {"top1", "ece"}


def test_evidence_reported_when_missing_is_named_not_available_and_does_not_pass():
    gate = {
        "criteria": {
            "auroc_common": GATE["criteria"]["auroc_common"],
            "unseen": {
                "metric": "registry.unseen.hybrid_vs_resnik_one_sided.top3_diff",
                "op": ">=",
                "threshold": 0.0,
                "bound": "interval",
                "when_missing": "report",
            },
        }
    }
    verdict = apply_acceptance_gate({"common.auroc_macro": 0.9}, gate)
    assert verdict["approved"] is True
    assert verdict["not_available"] == ["unseen"]
    row = verdict["criteria"][1]
    assert row["status"] == "not available" and row["passed"] is False
    assert "not available: unseen" in verdict["reason"]
    assert "*not available*" in verdict_markdown(verdict)
    # once the figure exists it decides like any other
    metrics = {
        "common.auroc_macro": 0.9,
        "registry.unseen.hybrid_vs_resnik_one_sided.top3_diff": 0.02,
        "registry.unseen.hybrid_vs_resnik_one_sided.top3_diff.ci_low": -0.01,
        "registry.unseen.hybrid_vs_resnik_one_sided.top3_diff.ci_high": 0.05,
    }
    assert apply_acceptance_gate(metrics, gate)["failed"] == ["unseen"]
