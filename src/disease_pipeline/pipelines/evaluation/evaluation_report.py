"""``08_reporting/evaluation.md``: every figure with its 95 % interval and the baselines
beside it, the evaluation by modality pattern and the registry protocol."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from .figures import MODALITY_PATTERNS

BASELINES = ("logistic", "knowledge", "learned")

#: (title, champion key, baseline figure suffix or None)
HEADLINE = (
    ("Common cases: top-1 of the differential", "common.top1", "top1"),
    ("Common cases: top-3", "common.top3", "top3"),
    ("Common cases: top-10", "common.top10", "top10"),
    ("Common diseases: macro AUROC", "common.auroc_macro", "auroc_macro"),
    ("Common diseases: ECE (top label)", "common.ece", None),
    ("Worst ECE (common, gate, severity)", "calibration.ece_max", None),
    ("Gate P(rare): AUROC", "gate.auroc", None),
    ("Rare cases: top-1 of the differential", "differential.rare_top1", None),
    ("Rare cases: top-3", "differential.rare_top3", None),
    ("Rare cases: top-10", "differential.rare_top10", None),
    (
        "Rare diseases among rare cases: macro AUROC",
        "differential.rare_macro_auroc_within_rare",
        None,
    ),
    ("High/critical severity: sensitivity at the operating point", "severity.op.sensitivity", None),
    ("Symptoms-only common cases: top-1", "modality.symptoms_only.top1", "symptoms_only.top1"),
    ("Symptoms-only common cases: top-3", "modality.symptoms_only.top3", "symptoms_only.top3"),
)


def fmt(value: Any) -> str:
    """Three decimals, ``n/a`` for a missing or NaN figure."""
    if not isinstance(value, int | float) or math.isnan(float(value)):
        return "n/a"
    return f"{float(value):.3f}"


def with_interval(metrics: dict[str, float], key: str) -> str:
    """``value [low, high]``, or the value alone when it has no interval."""
    value = fmt(metrics.get(key))
    low, high = metrics.get(f"{key}.ci_low"), metrics.get(f"{key}.ci_high")
    if value == "n/a" or fmt(low) == "n/a":
        return value
    return f"{value} [{fmt(low)}, {fmt(high)}]"


def _baseline_key(name: str, suffix: str) -> str:
    """Key of a baseline's figure: ``baseline.<name>.<suffix>``, or per pattern
    ``modality.<pattern>.<name>.<k>``."""
    pattern, _, figure = suffix.partition(".")
    if pattern in MODALITY_PATTERNS:
        return f"modality.{pattern}.{name}.{figure}"
    return f"baseline.{name}.{suffix}"


def _headline(metrics: dict[str, float]) -> list[str]:
    lines = [
        "| figure | champion [95 % CI] | logistic baseline | knowledge baseline "
        "| learned model alone |",
        "|---|---|---|---|---|",
    ]
    for title, key, suffix in HEADLINE:
        cells = [
            with_interval(metrics, _baseline_key(name, suffix)) if suffix else "-"
            for name in BASELINES
        ]
        lines.append(f"| {title} | {with_interval(metrics, key)} | {' | '.join(cells)} |")
    return lines


def _differences(metrics: dict[str, float], top_k: list[int]) -> list[str]:
    lines = [
        "| champion − baseline (paired, COMMON cases, same diseases) | difference [95 % CI] |",
        "|---|---|",
    ]
    for name in BASELINES:
        for k in top_k:
            key = f"compare.{name}.top{k}_diff"
            lines.append(f"| {name}: top-{k} | {with_interval(metrics, key)} |")
    return lines


def _modality(table: pd.DataFrame, top_k: list[int]) -> list[str]:
    figures = [f"top{k}" for k in top_k] + ["auroc_macro", "ece"]
    header = ["pattern", "n", *figures]
    header += [f"knowledge top-{k}" for k in (1, 3)]
    header += [f"learned model top-{k}" for k in (1, 3)]
    header += [f"champion − knowledge top-{k}" for k in (1, 3)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.to_dict("records"):
        cells = [str(row["pattern"]), fmt(row.get("modality.n")).removesuffix(".000")]
        cells += [with_interval(row, f"modality.{f}") for f in figures]
        cells += [with_interval(row, f"modality.knowledge.top{k}") for k in (1, 3)]
        cells += [with_interval(row, f"modality.learned.top{k}") for k in (1, 3)]
        cells += [with_interval(row, f"compare.knowledge.top{k}_diff") for k in (1, 3)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _registry(metrics: dict[str, float], config: dict[str, Any]) -> list[str]:
    protocol, method, base, metric = (
        config["protocol"],
        config["method"],
        config["baseline"],
        config["metric"],
    )
    diff = f"registry.{protocol}.{method}_vs_{base}.{metric}_diff"
    if diff not in metrics and f"registry.{protocol}.{method}.{metric}" not in metrics:
        return ["Not available: the rare_model pipeline's validation wrote no such figure."]
    return [
        f"| {method} {metric} | {base} {metric} | {method} − {base} [95 % CI] |",
        "|---|---|---|",
        f"| {fmt(metrics.get(f'registry.{protocol}.{method}.{metric}'))} | "
        f"{fmt(metrics.get(f'registry.{protocol}.{base}.{metric}'))} | "
        f"{with_interval(metrics, diff)} |",
    ]


def _recording(metrics: dict[str, float]) -> list[str]:
    """Gate P(rare) and the served top-k by recording style: registry cases with and
    without a recorded age, and catalogue common patients as sampled, without their age
    and with more findings recorded absent."""
    share = "share_p_rare_at_least_threshold"
    top = next((k for k in metrics if k.startswith("recording.as_sampled.top")), None)
    k = top.rsplit(".top", 1)[1] if top else "k"
    rows = [
        ("registry cases (rare), age recorded", f"registry_served.{share}_age_recorded", ""),
        ("registry cases (rare), age unknown", f"registry_served.{share}_age_unknown", ""),
        *(
            (label, f"recording.{arm}.{share}", f"recording.{arm}.top{k}")
            for label, arm in (
                ("common patients, as sampled", "as_sampled"),
                ("the same, age withheld", "without_age"),
                ("the same, more findings recorded absent", "with_negatives"),
            )
        ),
    ]
    if not any(key in metrics for _, key, _ in rows):
        return ["Not available: neither check ran."]
    lines = [f"| patients | P(rare) ≥ threshold | served top-{k} |", "|---|---|---|"]
    for label, key, hit in rows:
        lines.append(f"| {label} | {fmt(metrics.get(key))} | {fmt(metrics.get(hit))} |")
    return lines


def write_evaluation_report(
    reporting_metrics: dict[str, float],
    reporting_modality_metrics: pd.DataFrame,
    reporting_gate_verdict: dict[str, Any],
    params: dict[str, Any],
) -> str:
    """The Markdown page (see the module docstring)."""
    top_k = [int(k) for k in params["intervals"]["top_k"]]
    level = float(params["intervals"]["level"])
    status = "APPROVED" if reporting_gate_verdict["approved"] else "REJECTED"
    return "\n".join(
        [
            "# Evaluation of the predictor (test split, the latest period)",
            "",
            f"Every figure with its {level:.0%} percentile bootstrap interval "
            f"({params['intervals']['n_boot']} resamples of the test encounters, seed "
            f"{params['seed']}). The test split is scored through `predict_tables` on its "
            "warehouse tables, the path the service runs. Baselines: the logistic "
            "regression of the common_model pipeline refitted on the training split, "
            "the catalogue's knowledge scorer alone (n/a when the code base has none), and "
            "the champion's learned model alone (calibrated, before the knowledge blend).",
            "",
            *_headline(reporting_metrics),
            "",
            "## Champion against the baselines",
            "",
            *_differences(reporting_metrics, top_k),
            "",
            "## By modality pattern (COMMON cases; which inputs the encounter has)",
            "",
            *_modality(reporting_modality_metrics, top_k),
            "",
            "## Unseen diseases: registry phenopackets (rare_model validation)",
            "",
            *_registry(reporting_metrics, params["registry_protocol"]),
            "",
            "## Recording style: a missing age, recorded negatives",
            "",
            "Published rare cases often record no age and list many excluded findings; a "
            "gate that learned those habits instead of the phenotype shows up as a gap "
            "between the rows of a group (`evaluation/registry_check.py`, "
            "`evaluation/recording_check.py`).",
            "",
            *_recording(reporting_metrics),
            "",
            f"## Acceptance gate: {status}",
            "",
            reporting_gate_verdict["reason"].capitalize() + ". See `evaluation/gate_verdict.md`.",
            "",
        ]
    )
