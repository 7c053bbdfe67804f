"""Real rare patients through the served path: the registry phenopackets (HPO terms,
age, sex; no vitals or labs) sent to the predictor as a clinician's request would be.

Reports the gate's P(rare) on them and how often the true disease reaches the top k of
the full served differential, beside the rare model alone on the same cases, so a gate
that hides rare candidates from real patients shows up as a gap between the two.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.rare.cases import Case
from disease_pipeline.rare.gate_check import in_gate_share, registry_gate_check


def _as_terms(value: object) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [str(term) for term in value]


def registry_cases_sample(
    registry_cases: pd.DataFrame, max_cases: int | None, seed: int
) -> list[Case]:
    """Registry cases (``feat_registry_cases``) as :class:`Case` objects; a seeded sample
    of at most ``max_cases`` (None: all)."""
    frame = registry_cases
    if max_cases is not None and len(frame) > max_cases:
        frame = frame.sample(n=int(max_cases), random_state=seed)
    cases = []
    for row in frame.to_dict("records"):
        age = row.get("age")
        cases.append(
            Case(
                case_id=str(row["encounter_id"]),
                disease_id=str(row["label_disease"]),
                present=_as_terms(row.get("present_terms")),
                excluded=_as_terms(row.get("excluded_terms")),
                age=None if age is None or pd.isna(age) else float(age),
                sex=str(row.get("sex") or "unknown").lower(),
            )
        )
    return cases


def rare_model_top_k(rare_model: Any, cases: list[Case], top_k: int) -> float:
    """Share of ``cases`` (with a present term) whose disease the rare model alone ranks
    in its top ``top_k``."""
    hits = []
    for case in cases:
        if not case.present:
            continue
        ranked = rare_model.rank_patient(case.present, case.excluded, case.age, case.sex, top_k)
        hits.append(case.disease_id in {c["disease_id"] for c in ranked})
    return float(np.mean(hits)) if hits else float("nan")


def check_registry_cases(
    predictor: Any,
    registry_cases: pd.DataFrame,
    params: dict[str, Any],
    gate_query_rows: dict[str, Any] | None = None,
) -> dict[str, float]:
    """``registry_served.*`` metrics: share of registry cases with P(rare) at or above the
    threshold (all, and for cases with and without a recorded age), P(rare) quartiles, the
    served differential's top-k hit rate, the rare model's alone and their difference
    (served minus alone). Cases of the diseases whose
    registry cases trained the gate (``gate_query_rows``: params:common_model.gate.query_rows)
    are left out, so the gate is judged on diseases it has not seen."""
    options = params.get("registry_check", {})
    if gate_query_rows and gate_query_rows.get("enabled", False):
        share = float(gate_query_rows["registry_share"])
        seen = registry_cases["label_disease"].map(lambda d: in_gate_share(d, share))
        registry_cases = registry_cases[~seen.astype(bool)]
    if not options.get("enabled", True) or not len(registry_cases):
        return {}
    top_k = int(options.get("top_k", 10))
    cases = registry_cases_sample(registry_cases, options.get("max_cases"), params.get("seed", 0))
    served = registry_gate_check(
        predictor, cases, threshold=float(options.get("threshold", 0.5)), top_k=top_k
    )
    if not served.get("cases"):
        return {}
    metrics = {
        "registry_served.cases": float(served["cases"]),
        "registry_served.share_p_rare_at_least_threshold": served["share_p_rare_at_least"],
        **{f"registry_served.p_rare_{q}": v for q, v in served["p_rare_quantiles"].items()},
        f"registry_served.top{top_k}": served["differential_top_k"],
    }
    for group, part in served["by_age"].items():
        metrics[f"registry_served.cases_age_{group}"] = float(part["cases"])
        if part["share_p_rare_at_least"] is not None:
            metrics[f"registry_served.share_p_rare_at_least_threshold_age_{group}"] = part[
                "share_p_rare_at_least"
            ]
    rare_model = getattr(predictor, "rare_model", None)
    if rare_model is not None and hasattr(rare_model, "rank_patient"):
        alone = rare_model_top_k(rare_model, cases, top_k)
        metrics[f"registry_served.rare_model_alone_top{top_k}"] = round(alone, 4)
        metrics[f"registry_served.served_minus_rare_model_top{top_k}"] = round(
            served["differential_top_k"] - alone, 4
        )
    return metrics
