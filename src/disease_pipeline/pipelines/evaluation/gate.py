"""The acceptance gate (seed §4.5): every criterion, its value, threshold and outcome.

A criterion is ``{"metric": <key of reporting_metrics>, "op": ">=" | "<=", "threshold": x}``
under ``gate.criteria`` in parameters_evaluation.yml, with optional keys:

- ``bound``: ``interval`` compares the figure's 95 % bootstrap interval instead of its
  point value — the LOWER bound (``<metric>.ci_low``) for ``>=``, the UPPER bound
  (``<metric>.ci_high``) for ``<=`` — so a figure passes only when the whole interval
  clears the threshold on the side that matters; ``value`` (default) compares the value.
- ``when_missing``: ``fail`` (default) — a figure that could not be computed (missing or
  NaN) fails its criterion, the gate never approves on missing evidence; ``report`` — the
  criterion is reported "not available" (listed in ``not_available``, named in the
  reason and on the page) without deciding, for evidence another pipeline provides
  (the registry protocol, the knowledge baseline) or the data may lack.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

_OPERATORS = {">=": lambda value, bound: value >= bound, "<=": lambda value, bound: value <= bound}
_BOUND_KEY = {">=": "ci_low", "<=": "ci_high"}


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not math.isnan(float(value)):
        return float(value)
    return None


def _check(name: str, criterion: dict[str, Any]) -> None:
    for key in ("metric", "op", "threshold"):
        if key not in criterion:
            raise ValueError(f"gate criterion '{name}' lacks '{key}'")
    if criterion["op"] not in _OPERATORS:
        raise ValueError(
            f"gate criterion '{name}': op must be one of {sorted(_OPERATORS)}, "
            f"got {criterion['op']!r}"
        )
    if criterion.get("bound", "value") not in ("value", "interval"):
        raise ValueError(f"gate criterion '{name}': bound must be 'value' or 'interval'")
    if criterion.get("when_missing", "fail") not in ("fail", "report"):
        raise ValueError(f"gate criterion '{name}': when_missing must be 'fail' or 'report'")


def judge(name: str, criterion: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """One criterion's row of the verdict: the figure, its interval, the value compared
    and the outcome (``pass``, ``fail`` or ``not available``)."""
    _check(name, criterion)
    metric, op = criterion["metric"], criterion["op"]
    interval = criterion.get("bound", "value") == "interval"
    value = _number(metrics.get(metric))
    low, high = _number(metrics.get(f"{metric}.ci_low")), _number(metrics.get(f"{metric}.ci_high"))
    compared = (low if op == ">=" else high) if interval else value
    status = "pass" if compared is not None else "fail"
    if compared is not None and not _OPERATORS[op](compared, float(criterion["threshold"])):
        status = "fail"
    note = criterion.get("note", "")
    if compared is None:
        what = f"{metric}.{_BOUND_KEY[op]}" if interval else metric
        missing = criterion.get("when_missing", "fail") == "report"
        status = "not available" if missing else "fail"
        note = f"{what} not computed: " + (
            "not available, reported without deciding" if missing else "fails by default"
        )
    return {
        "criterion": name,
        "metric": metric,
        "value": value,
        "ci_low": low,
        "ci_high": high,
        "compared": f"{_BOUND_KEY[op]} of the 95 % interval" if interval else "value",
        "compared_value": compared,
        "op": op,
        "threshold": float(criterion["threshold"]),
        "status": status,
        "passed": status == "pass",
        "note": note,
    }


def apply_acceptance_gate(
    reporting_metrics: dict[str, Any], gate: dict[str, Any]
) -> dict[str, Any]:
    """Verdict of the acceptance gate: ``approved`` is True only if every criterion passes."""
    criteria = gate.get("criteria")
    if not isinstance(criteria, dict) or not criteria:
        raise ValueError("parameters 'evaluation.gate.criteria' must be a non-empty mapping")
    results = [judge(name, criterion, reporting_metrics) for name, criterion in criteria.items()]
    failed = [r["criterion"] for r in results if r["status"] == "fail"]
    not_available = [r["criterion"] for r in results if r["status"] == "not available"]
    reason = (
        "all criteria passed"
        if not failed
        else "failed: "
        + "; ".join(
            f"{r['criterion']} ({r['metric']}{_side(r)} = {_fmt(r['compared_value'])}, needs "
            f"{r['op']} {_fmt(r['threshold'])})"
            for r in results
            if r["status"] == "fail"
        )
    )
    if not_available:
        reason += "; not available: " + ", ".join(not_available)
    return {
        "approved": not failed,
        "failed": failed,
        "not_available": not_available,
        "criteria": results,
        "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "reason": reason,
    }


def _side(row: dict[str, Any]) -> str:
    return "" if row["compared"] == "value" else f".{_BOUND_KEY[row['op']]}"


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
        "| criterion | metric | value | 95 % interval | compared | required | result | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    result = {"pass": "pass", "fail": "**FAIL**", "not available": "*not available*"}
    for r in verdict["criteria"]:
        interval = (
            f"[{_fmt(r.get('ci_low'))}, {_fmt(r.get('ci_high'))}]"
            if r.get("ci_low") is not None
            else "-"
        )
        lines.append(
            f"| {r['criterion']} | `{r['metric']}` | {_fmt(r['value'])} | {interval} | "
            f"{r.get('compared', 'value')} | {r['op']} {_fmt(r['threshold'])} | "
            f"{result[r.get('status', 'pass' if r['passed'] else 'fail')]} | {r['note']} |"
        )
    lines += [
        "",
        "Only an approved predictor is registered in the MLflow Model Registry with the "
        "alias `champion`; a rejected one is not promoted.",
        "",
    ]
    return "\n".join(lines)
