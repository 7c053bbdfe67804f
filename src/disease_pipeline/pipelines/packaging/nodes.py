"""Packaging nodes: decide what the registry receives; the catalog's
``ChampionModelDataset`` does the MLflow logging, registration and aliasing."""

from __future__ import annotations

from typing import Any

from disease_pipeline.pipelines.packaging.requirements import model_requirements


def prepare_champion_candidate(
    predictor: Any,
    reporting_gate_verdict: dict[str, Any],
    reporting_metrics: dict[str, float],
    reporting_data_version: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """The registry candidate: the predictor, the gate's decision and the model-version tags.

    Saving it through ``registry_champion_model`` registers and promotes the predictor only when
    ``approved`` is True; the reason is logged to the MLflow run either way.
    """
    if "approved" not in reporting_gate_verdict:
        raise ValueError("reporting_gate_verdict has no 'approved' field: rerun evaluation")
    tags = {
        "data_version": reporting_data_version.get("data_version", "unknown"),
        "gate.approved": str(bool(reporting_gate_verdict["approved"])).lower(),
    }
    for key in params["tag_metrics"]:
        if key in reporting_metrics:
            tags[f"metric.{key}"] = f"{float(reporting_metrics[key]):.4f}"
    return {
        "approved": bool(reporting_gate_verdict["approved"]),
        "reason": reporting_gate_verdict["reason"],
        "predictor": predictor,
        "tags": tags,
        "top_k": int(params["top_k"]),
        "pip_requirements": model_requirements(params["requirements_extra"]),
    }


def champion_registration(
    predictor: Any,
    reporting_gate_verdict: dict[str, Any],
    reporting_metrics: dict[str, float],
    reporting_data_version: dict[str, Any],
    params: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The registry candidate (:func:`prepare_champion_candidate`) and what its
    registration decided: ``approved``, ``reason`` and the model-version tags.

    ``bento_packaging`` reads the decision, so ``train`` stages the champion in BentoML
    after ``registry_champion_model`` has registered it.
    """
    candidate = prepare_champion_candidate(
        predictor, reporting_gate_verdict, reporting_metrics, reporting_data_version, params
    )
    decision = {key: candidate[key] for key in ("approved", "reason", "tags")}
    return candidate, decision
