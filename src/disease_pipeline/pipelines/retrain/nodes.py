"""``retrain`` nodes: the evaluation set both models are scored on, the paired
comparison of the registered challenger with the champion, and the promotion request.

The comparison scores both models through the evaluation pipeline's ``score_split``
(``predict_tables``, the service's path) on the same encounters:

- the frozen evaluation set (``model_input_frozen_evaluation``, written once by
  ``kedro run --pipeline=freeze_evaluation``) when it exists, otherwise the current test
  split (the report says which);
- minus every encounter the challenger was trained or calibrated on (counted in the
  report), so neither model is judged on data the challenger saw: by encounter id, and
  by content for clinician-feedback encounters (``feedback-…``), which come back
  through the service under a new id — a feedback copy of an evaluation encounter has
  the same findings, measurements, age and sex, only its date (and so its calendar
  and season-dependent features) differs.

and, beside it, on recent labelled traffic (:func:`recent_labelled_traffic`,
``compare.compare_recent``): the service's own logged records with their confirmed
diagnoses, re-scored by both models.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import pandas as pd

from disease_pipeline.core.columns import FEEDBACK_ENCOUNTER_PREFIX
from disease_pipeline.pipelines.evaluation.scoring import score_split, split_tables
from disease_pipeline.pipelines.packaging.nodes import prepare_champion_candidate
from disease_pipeline.pipelines.retrain.compare import (
    compare_recent,
    compare_scored,
    promotion_verdict,
)
from disease_pipeline.pipelines.retrain.content import content_columns, content_keys

logger = logging.getLogger(__name__)


def feedback_version(feedback: dict[str, pd.DataFrame] | None) -> tuple[str, int]:
    """(SHA-256 over the sorted ``encounter_id, code`` of the feedback encounters' primary
    diagnoses, their number); ``("none", 0)`` without feedback."""
    if not feedback or feedback["encounters"].empty:
        return "none", 0
    primary = feedback["diagnoses"]
    primary = primary[primary["role"] == "primary"][["encounter_id", "code"]].astype(str)
    lines = sorted(f"{e}\t{c}" for e, c in primary.itertuples(index=False))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest(), len(lines)


def prepare_challenger(  # noqa: PLR0913 - each input is one catalog dataset
    *,
    predictor: Any,
    gate_verdict: dict[str, Any],
    metrics: dict[str, float],
    data_version: dict[str, Any],
    feedback: dict[str, pd.DataFrame] | None,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The packaging candidate, its model-version tags also naming the feedback it was
    trained with (``feedback_version``, ``feedback_encounters``). With feedback, the
    ``data_version`` tag covers both sources: SHA-256 of the exports' data version and
    the feedback version (the exports' alone stays in ``exports_data_version``)."""
    candidate = prepare_champion_candidate(predictor, gate_verdict, metrics, data_version, params)
    version, count = feedback_version(feedback)
    candidate["tags"] |= {"feedback_version": version, "feedback_encounters": str(count)}
    if count:
        exports = candidate["tags"]["data_version"]
        combined = hashlib.sha256(f"{exports}\n{version}".encode()).hexdigest()
        candidate["tags"] |= {"exports_data_version": exports, "data_version": combined}
    return candidate


def freeze_evaluation_set(
    model_input_test: pd.DataFrame, prm_evaluation_tables: dict[str, pd.DataFrame]
) -> dict[str, Any]:
    """The current test split and its warehouse tables, kept as the frozen evaluation set."""
    ids = model_input_test["encounter_id"].astype(str).tolist()
    return {"split": model_input_test, "tables": split_tables(prm_evaluation_tables, ids)}


def choose_evaluation_set(
    frozen: dict[str, Any] | None,
    model_input_test: pd.DataFrame,
    prm_evaluation_tables: dict[str, pd.DataFrame],
    seen: list[pd.DataFrame],
    content: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(evaluation_set, description)``: the frozen set (or the current test split)
    without the encounters of ``seen`` (the challenger's training and calibration): the
    same ids, and the same content as a feedback encounter of ``seen`` (``content``:
    ``prefixes`` of the compared feature columns, ``decimals``)."""
    source = "frozen" if frozen is not None else "current_test_split"
    chosen = frozen or freeze_evaluation_set(model_input_test, prm_evaluation_tables)
    split = chosen["split"]
    seen_rows = pd.concat(seen, ignore_index=True)
    overlap = split["encounter_id"].astype(str).isin(set(seen_rows["encounter_id"].astype(str)))
    feedback = seen_rows[
        seen_rows["encounter_id"].astype(str).str.startswith(FEEDBACK_ENCOUNTER_PREFIX)
    ]
    copied = pd.Series(False, index=split.index)
    columns = content_columns(split, feedback, list(content["prefixes"]))
    if len(feedback) and columns:
        decimals = int(content["decimals"])
        known = set(content_keys(feedback, columns, decimals))
        copied = content_keys(split, columns, decimals).isin(known) & ~overlap
    if overlap.any() or copied.any():
        logger.warning(
            "retrain: %d evaluation encounters were in the challenger's training data and "
            "%d came back as clinician feedback under a new id: left out of the comparison",
            int(overlap.sum()),
            int(copied.sum()),
        )
    kept = split.loc[~(overlap | copied)].reset_index(drop=True)
    description = {
        "source": source,
        "n_encounters": int(len(split)),
        "n_seen_by_challenger_left_out": int(overlap.sum()),
        "n_feedback_copies_left_out": int(copied.sum()),
        "n_compared": int(len(kept)),
    }
    return {"split": kept, "tables": chosen["tables"]}, description


RECENT_COLUMNS = ["request_id", "logged_at", "record", "label_disease"]


def recent_labelled_traffic(
    prediction_log: pd.DataFrame | None,
    feedback: pd.DataFrame | None,
    feedback_encounters: dict[str, pd.DataFrame] | None,
    params: dict[str, Any],
) -> pd.DataFrame:
    """The service's predictions of the last ``comparison.recent.days`` days before
    ``retrain.now`` (null: now) with a confirmed diagnosis (the latest per request),
    leaving out the confirmations that became training encounters
    (``feedback-<request_id>`` in ``feedback_encounters``): the challenger learnt them."""
    if prediction_log is None or feedback is None or prediction_log.empty or feedback.empty:
        return pd.DataFrame(columns=RECENT_COLUMNS)
    now = pd.Timestamp(params["now"]) if params["now"] else pd.Timestamp.now(tz="UTC")
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    start = now - pd.Timedelta(days=float(params["comparison"]["recent"]["days"]))
    logged = pd.to_datetime(prediction_log["logged_at"], utc=True)
    window = prediction_log[
        (prediction_log["status"] == "predicted") & (logged >= start) & (logged < now)
    ]
    latest = feedback.sort_values("received_at").drop_duplicates("request_id", keep="last")
    joined = window.merge(latest[["request_id", "confirmed_code"]], on="request_id")
    trained: set[str] = set()
    if feedback_encounters is not None and "encounters" in feedback_encounters:
        ids = feedback_encounters["encounters"]["encounter_id"].astype(str)
        trained = {i.removeprefix(FEEDBACK_ENCOUNTER_PREFIX) for i in ids}
    kept = joined[~joined["request_id"].astype(str).isin(trained)]
    logger.info(
        "retrain: %d recent labelled predictions (%d were training data)",
        len(kept),
        len(joined) - len(kept),
    )
    return (
        kept.rename(columns={"confirmed_code": "label_disease"})[RECENT_COLUMNS]
        .sort_values("logged_at")
        .reset_index(drop=True)
    )


def _predictor(model: Any) -> Any:
    """The DiseasePredictor inside a registered pyfunc model (or the predictor itself)."""
    unwrap = getattr(model, "unwrap_python_model", None)
    return unwrap().predictor if unwrap is not None else model


def compare_with_champion(  # noqa: PLR0913 - each input is one catalog dataset
    *,
    champion: Any | None,
    challenger: Any | None,
    gate_verdict: dict[str, Any],
    frozen: dict[str, Any] | None,
    model_input_test: pd.DataFrame,
    model_input_train: pd.DataFrame,
    model_input_calibration: pd.DataFrame,
    prm_evaluation_tables: dict[str, pd.DataFrame],
    evaluation_params: dict[str, Any],
    params: dict[str, Any],
    recent: pd.DataFrame | None = None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, float]]]:
    """``(report, promotion_request, mlflow_metrics)`` of the registered challenger.

    The request promotes only a gate-approved challenger that passes the promotion rule
    against the champion, or the first gate-approved model when there is no champion.
    """
    config = params["comparison"]
    report: dict[str, Any] = {"gate": {k: gate_verdict.get(k) for k in ("approved", "reason")}}
    if not gate_verdict.get("approved") or challenger is None:
        reason = f"challenger rejected by the acceptance gate: {gate_verdict.get('reason')}"
        report["verdict"] = {"promote": False, "reason": reason, "checks": []}
    elif champion is None:
        reason = "no champion registered: the gate-approved challenger becomes the champion"
        report["verdict"] = {"promote": True, "reason": reason, "checks": []}
    else:
        evaluation, report["evaluation_set"] = choose_evaluation_set(
            frozen,
            model_input_test,
            prm_evaluation_tables,
            [model_input_train, model_input_calibration],
            config["content_key"],
        )
        scored = {
            name: score_split(
                _predictor(model),
                evaluation["split"],
                evaluation["tables"],
                evaluation_params,
                name,
            )
            for name, model in (("champion", champion), ("challenger", challenger))
        }
        comparison = compare_scored(scored["champion"], scored["challenger"], config)
        report |= comparison
        report["verdict"] = promotion_verdict(comparison, config)
        if recent is not None:
            report["recent_traffic"] = compare_recent(
                _predictor(champion),
                _predictor(challenger),
                recent,
                config,
                int(evaluation_params["scoring_top_k"]),
            )
            report["verdict"] = with_recent(report["verdict"], report["recent_traffic"])
    verdict = report["verdict"]
    request = {"promote": verdict["promote"], "reason": verdict["reason"]}
    metrics = {"retrain.promote": {"value": float(verdict["promote"]), "step": 0}}
    for key, value in (report.get("figures") or {}).items():
        metrics[f"retrain.compare.{key}"] = {"value": float(value), "step": 0}
    for key, value in (report.get("recent_traffic", {}).get("figures") or {}).items():
        metrics[f"retrain.recent.{key}"] = {"value": float(value), "step": 0}
    if "mcnemar_top1" in report:
        metrics["retrain.compare.top1.mcnemar_pvalue"] = {
            "value": float(report["mcnemar_top1"]["pvalue"]),
            "step": 0,
        }
    return report, request, metrics


def with_recent(verdict: dict[str, Any], recent: dict[str, Any]) -> dict[str, Any]:
    """The frozen-set verdict with the recent-traffic checks: gating ones can keep the
    challenger out; below ``min_labelled`` they are reported only."""
    checks = verdict["checks"] + [
        {**check, "set": "recent_traffic", "gating": recent["gating"]}
        for check in recent.get("checks", [])
    ]
    failed = recent.get("failed", []) if recent["gating"] else []
    if failed:
        reasons = failed if verdict["promote"] else [verdict["reason"], *failed]
        return {"promote": False, "reason": "; ".join(reasons), "checks": checks}
    if recent["gating"]:
        note = f"; non-inferior on {recent['n']} recent labelled predictions"
    else:
        note = f" (recent traffic: {recent['n']} labelled predictions, too few to decide)"
    return {**verdict, "checks": checks, "reason": verdict["reason"] + note}
