"""``retrain_check`` nodes: the monitor's summary, the trusted feedback and the registry
→ one decision, ``retrain`` or ``wait``, with every trigger's value and threshold.

A trigger is ``{"value", "threshold", "fired", "reason"}``; ``value`` is None (and the
trigger does not fire) when its input does not exist yet — the reason says which input
is missing, so "no monitoring yet" reads as such rather than as "no drift".
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from disease_pipeline.knowledge.catalogue import load_common_diseases
from disease_pipeline.pipelines.features.nodes import (
    assemble_feature_tables,
    build_labels,
    transform_in_chunks,
)
from disease_pipeline.pipelines.retrain_check.feedback_duplicates import (
    LISTED_COLUMNS,
    apply_duplicate_policy,
    classify_feedback,
)
from disease_pipeline.pipelines.retrain_check.feedback_encounters import feedback_encounters
from disease_pipeline.pipelines.retrain_check.feedback_labels import (
    label_feedback,
    new_label_counts,
)

DECISIONS = ("retrain", "wait")
logger = logging.getLogger(__name__)
#: counts of the feedback-duplicate check logged to MLflow (``retrain_check.feedback.*``)
DUPLICATE_METRICS = (
    "feedback_encounters",
    "duplicates_dropped",
    "conflicts",
    "conflicts_dropped",
    "exports_superseded",
    "kept",
)


def common_disease_codes() -> set[str]:
    """ICD-10 codes of the catalogue's COMMON diseases (every other code counts as rare)."""
    table = load_common_diseases()
    return set(table.loc[table["category"] == "COMMON", "icd10"].astype(str))


def build_feedback_labels(
    feedback: pd.DataFrame | None, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Trusted labels and excluded requests of the feedback table (see feedback_labels)."""
    return label_feedback(feedback, common_disease_codes(), params["feedback"])


def build_feedback_encounters(
    labelled: pd.DataFrame, prediction_log: pd.DataFrame | None
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Trusted labels joined to their logged records: the train pipeline's feedback source
    (see feedback_encounters), and the labels without a logged prediction."""
    return feedback_encounters(labelled, prediction_log)


def feature_rows(
    tables: dict[str, pd.DataFrame], builder: Any, registry_sources: list[str], chunk_size: int
) -> pd.DataFrame:
    """``encounter_id, label_disease`` and the features of ``builder`` (unmasked) of every
    labelled, non-registry encounter of ``tables`` (empty without one)."""
    enc = tables["encounters"]
    primary = tables["diagnoses"]["role"] == "primary"
    if enc.empty or not primary.any() or enc["source"].isin(registry_sources).all():
        return pd.DataFrame(columns=["encounter_id", "label_disease"])
    labels = build_labels(tables, registry_sources)[["encounter_id", "label_disease"]]
    features = transform_in_chunks(builder, tables, labels["encounter_id"].to_numpy(), chunk_size)
    return labels.set_index("encounter_id").join(features, how="left").reset_index()


def drop_feedback_duplicates(
    *,
    feedback: dict[str, pd.DataFrame],
    builder: Any | None,
    registry_sources: list[str],
    chunk_size: int,
    params: dict[str, Any],
    **warehouse: pd.DataFrame,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, dict[str, Any]]:
    """``(feedback_encounters, listed, counts)``: the feedback encounters without those
    that repeat an exported encounter of the ``warehouse`` tables (``patients``,
    ``encounters``, ``symptoms``, ``vitals``, ``labs``, ``diagnoses``;
    ``feedback_duplicates``), compared on
    ``params['comparison']['content_key']`` with the features of ``builder`` (the
    champion's fitted FeatureBuilder, before any modality masking). Without a builder or
    feedback encounters nothing is compared, and ``counts['checked']`` says why."""
    on_conflict = params["feedback"]["duplicates"]["on_conflict"]
    if builder is None or feedback["encounters"].empty:
        reason = (
            "no feedback encounters"
            if feedback["encounters"].empty
            else "no fitted feature builder yet (run train)"
        )
        if not feedback["encounters"].empty:
            logger.warning("retrain_check: feedback not checked for duplicates: %s", reason)
        decisions = pd.DataFrame(
            {"encounter_id": feedback["encounters"]["encounter_id"], "status": "kept"}
        )
        out, listed, counts = apply_duplicate_policy(feedback, decisions, on_conflict)
        return out, listed, {"checked": False, "reason": reason, **counts}
    exports = assemble_feature_tables(**warehouse)
    extra = feedback["encounters"].assign(
        start=pd.to_datetime(feedback["encounters"]["start"], utc=True, format="mixed")
    )
    own = {"encounters": extra} | {n: feedback[n] for n in ("symptoms", "vitals", "labs")}
    own["diagnoses"] = feedback["diagnoses"]
    decisions = classify_feedback(
        feature_rows(own, builder, registry_sources, chunk_size),
        feature_rows(exports, builder, registry_sources, chunk_size),
        params["comparison"]["content_key"],
    )
    out, listed, counts = apply_duplicate_policy(feedback, decisions, on_conflict)
    logger.info(
        "retrain_check: %d feedback encounters: %d duplicates of exports dropped, "
        "%d label conflicts (%s), %d kept",
        counts["feedback_encounters"],
        counts["duplicates_dropped"],
        counts["conflicts"],
        on_conflict,
        counts["kept"],
    )
    return out, listed[LISTED_COLUMNS], {"checked": True, "on_conflict": on_conflict, **counts}


def _trigger(value: float | None, threshold: float, fired: bool, reason: str) -> dict[str, Any]:
    return {
        "value": None if value is None else float(value),
        "threshold": float(threshold),
        "fired": bool(fired),
        "reason": reason,
    }


def _at_least(name: str, value: float | None, threshold: float, missing: str) -> dict[str, Any]:
    if value is None:
        return _trigger(None, threshold, False, missing)
    fired = value >= threshold
    return _trigger(
        value, threshold, fired, f"{name} {value:.4g} {'≥' if fired else '<'} {threshold:g}"
    )


def drift_trigger(summary: dict[str, Any] | None, config: dict[str, Any]) -> dict[str, Any]:
    """Max PSI over the monitored features against ``config['threshold']`` (fires above)."""
    threshold = float(config["threshold"])
    if summary is None:
        return _trigger(None, threshold, False, "no monitoring summary yet (run the monitor)")
    drift = summary.get("drift") or {}
    value = drift.get("max_psi")
    if value is None:
        return _trigger(None, threshold, False, "the monitoring summary has no drift.max_psi")
    psi = drift.get("psi") or {}
    worst = max(psi, key=lambda k: psi[k] if psi[k] is not None else -1) if psi else None
    fired = float(value) > threshold
    where = f" (feature {worst})" if worst else ""
    sign = ">" if fired else "≤"
    return _trigger(
        value, threshold, fired, f"max PSI {float(value):.4g}{where} {sign} {threshold:g}"
    )


def performance_trigger(summary: dict[str, Any] | None, config: dict[str, Any]) -> dict[str, Any]:
    """Live macro-AUROC drop against the reference (fires at or above the threshold),
    judged only with at least ``config['min_labelled']`` labelled predictions."""
    threshold = float(config["threshold"])
    if summary is None:
        return _trigger(None, threshold, False, "no monitoring summary yet (run the monitor)")
    performance = summary.get("performance") or {}
    n_labelled = int(performance.get("n_labelled") or 0)
    drop = performance.get("auroc_drop")
    if drop is None:
        return _trigger(None, threshold, False, "the monitoring summary has no auroc_drop")
    if n_labelled < int(config["min_labelled"]):
        return _trigger(
            drop,
            threshold,
            False,
            f"{n_labelled} labelled predictions < {int(config['min_labelled'])}: not judged",
        )
    return _at_least("AUROC drop", drop, threshold, "")


def model_age_trigger(
    registry: dict[str, Any], now: datetime, config: dict[str, Any]
) -> dict[str, Any]:
    """Days since the champion version was registered (fires at or above the threshold;
    fires at once when there is no champion)."""
    threshold = float(config["threshold"])
    champion = (registry.get("aliases") or {}).get("champion")
    if champion is None:
        return _trigger(None, threshold, True, "no champion registered: train one")
    created = datetime.fromisoformat(champion["created_at"])
    days = (now - created).total_seconds() / 86400.0
    return _at_least(f"champion v{champion['version']} age (days)", days, threshold, "")


def champion_since(registry: dict[str, Any]) -> pd.Timestamp | None:
    """When the champion was registered (feedback after it is new), None without one."""
    champion = (registry.get("aliases") or {}).get("champion")
    return None if champion is None else pd.Timestamp(champion["created_at"])


def decide_retraining(
    summary: dict[str, Any] | None,
    labelled: pd.DataFrame,
    excluded: pd.DataFrame,
    registry: dict[str, Any],
    params: dict[str, Any],
    *,
    now: str | None = None,
    duplicates: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """``(decision, mlflow_metrics)``: retrain when any trigger fired, else wait.

    ``duplicates`` (the counts of :func:`drop_feedback_duplicates`) goes to the
    decision's ``feedback.duplicates`` and to the metrics ``retrain_check.feedback.*``.

    ``now`` (ISO time) fixes the clock for tests and replays; None is the current time.
    """
    clock = datetime.fromisoformat(now) if now else datetime.now(UTC)
    config = params["triggers"]
    since = champion_since(registry)
    counts = new_label_counts(labelled, since)
    window = "since the champion was registered" if since is not None else "in total"
    triggers = {
        "psi": drift_trigger(summary, config["psi"]),
        "auroc_drop": performance_trigger(summary, config["auroc_drop"]),
        "new_common_labels": _at_least(
            f"trusted common labels {window}",
            counts["COMMON"],
            float(config["new_common_labels"]["threshold"]),
            "",
        ),
        "new_rare_labels": _at_least(
            f"trusted rare labels {window}",
            counts["RARE"],
            float(config["new_rare_labels"]["threshold"]),
            "",
        ),
        "model_age_days": model_age_trigger(registry, clock, config["model_age_days"]),
    }
    fired = [name for name, trigger in triggers.items() if trigger["fired"]]
    champion = (registry.get("aliases") or {}).get("champion")
    decision = {
        "decision": "retrain" if fired else "wait",
        "fired": fired,
        "reason": (
            "; ".join(triggers[name]["reason"] for name in fired)
            if fired
            else "no trigger reached its threshold"
        ),
        "checked_at": clock.isoformat(),
        "champion_version": None if champion is None else champion["version"],
        "monitoring": (
            {"available": False, "reason": "no monitoring summary yet (run the monitor)"}
            if summary is None
            else {
                "available": True,
                "window_start": summary.get("window_start"),
                "window_end": summary.get("window_end"),
                "n_predictions": summary.get("n_predictions"),
            }
        ),
        "feedback": {
            "trusted_labels": int(len(labelled)),
            "excluded_requests": int(len(excluded)),
            "new_common_labels": counts["COMMON"],
            "new_rare_labels": counts["RARE"],
        }
        | ({"duplicates": duplicates} if duplicates is not None else {}),
        "triggers": triggers,
    }
    metrics = {"retrain_check.retrain": {"value": float(bool(fired)), "step": 0}}
    for name, trigger in triggers.items():
        metrics[f"retrain_check.{name}.threshold"] = {"value": trigger["threshold"], "step": 0}
        metrics[f"retrain_check.{name}.fired"] = {"value": float(trigger["fired"]), "step": 0}
        if trigger["value"] is not None:
            metrics[f"retrain_check.{name}.value"] = {"value": trigger["value"], "step": 0}
    for key in DUPLICATE_METRICS:
        if duplicates is not None and key in duplicates:
            metrics[f"retrain_check.feedback.{key}"] = {"value": float(duplicates[key]), "step": 0}
    return decision, metrics
