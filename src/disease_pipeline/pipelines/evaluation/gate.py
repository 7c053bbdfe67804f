"""The acceptance gate (seed §4.5): every criterion, its value, threshold and outcome.

A criterion is ``{"metric": <key of reporting_metrics>, "op": ">=" | "<=", "threshold": x}``
under ``gate.criteria`` in parameters_evaluation.yml. A metric that could not be computed
(missing or NaN) fails its criterion: the gate never approves on missing evidence.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

_OPERATORS = {">=": lambda value, bound: value >= bound, "<=": lambda value, bound: value <= bound}


def apply_acceptance_gate(
    reporting_metrics: dict[str, Any], gate: dict[str, Any]
) -> dict[str, Any]:
    """Verdict of the acceptance gate: ``approved`` is True only if every criterion passes."""
    criteria = gate.get("criteria")
    if not isinstance(criteria, dict) or not criteria:
        raise ValueError("parameters 'evaluation.gate.criteria' must be a non-empty mapping")
    results = []
    for name, criterion in criteria.items():
        for key in ("metric", "op", "threshold"):
            if key not in criterion:
                raise ValueError(f"gate criterion '{name}' lacks '{key}'")
        if criterion["op"] not in _OPERATORS:
            raise ValueError(
                f"gate criterion '{name}': op must be one of {sorted(_OPERATORS)}, "
                f"got {criterion['op']!r}"
            )
        value = reporting_metrics.get(criterion["metric"])
        available = isinstance(value, int | float) and not math.isnan(float(value))
        passed = bool(
            available and _OPERATORS[criterion["op"]](float(value), float(criterion["threshold"]))
        )
        results.append(
            {
                "criterion": name,
                "metric": criterion["metric"],
                "value": float(value) if available else None,
                "op": criterion["op"],
                "threshold": float(criterion["threshold"]),
                "passed": passed,
                "note": criterion.get("note", "")
                if available
                else "metric not computed: fails by default",
            }
        )
    failed = [r["criterion"] for r in results if not r["passed"]]
    return {
        "approved": not failed,
        "failed": failed,
        "criteria": results,
        "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "reason": "all criteria passed"
        if not failed
        else "failed: "
        + "; ".join(
            f"{r['criterion']} ({r['metric']} = {_fmt(r['value'])}, needs {r['op']} "
            f"{_fmt(r['threshold'])})"
            for r in results
            if not r["passed"]
        ),
    }


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}"


def verdict_markdown(verdict: dict[str, Any]) -> str:
    """The verdict as a Markdown page (one table row per criterion)."""
    status = "APPROVED" if verdict["approved"] else "REJECTED"
    lines = [
        f"# Acceptance gate: {status}",
        "",
        f"Decided at {verdict['decided_at']}. {verdict['reason'].capitalize()}.",
        "",
        "| criterion | metric | value | required | result | note |",
        "|---|---|---|---|---|---|",
    ]
    for r in verdict["criteria"]:
        lines.append(
            f"| {r['criterion']} | `{r['metric']}` | {_fmt(r['value'])} | {r['op']} "
            f"{_fmt(r['threshold'])} | {'pass' if r['passed'] else '**FAIL**'} | {r['note']} |"
        )
    lines += [
        "",
        "Only an approved predictor is registered in the MLflow Model Registry with the "
        "alias `champion`; a rejected one is not promoted.",
        "",
    ]
    return "\n".join(lines)
