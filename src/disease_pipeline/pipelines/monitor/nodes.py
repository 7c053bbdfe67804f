"""Data drift, prediction drift and service health of the monitoring window.

Feature drift reuses the ``drift`` pipeline's PSI/KS table and Evidently report
(training reference = ``model_input_train``, the champion's training rows), once on
all patients and once per modality pattern (symptoms only, with vitals, with labs,
all), since a shift in who brings labs changes many features at once.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.pipelines.drift.nodes import (
    compute_feature_drift,
    kolmogorov_smirnov,
    population_stability_index,
)
from disease_pipeline.pipelines.evaluation.scoring import modality_patterns

logger = logging.getLogger(__name__)

SEVERITY_ORDER = {"low": 0, "moderate": 1, "high": 2, "critical": 3}


def reference_modality(
    model_input_train: pd.DataFrame, prm_vitals: pd.DataFrame, prm_labs: pd.DataFrame
) -> pd.DataFrame:
    """The training reference with its ``modality`` pattern, without the encounters whose
    vitals or labs training masked (``features.modality_masking``): their features say
    "symptoms only" (say) about a patient who was examined in full, a population unlike
    the patients who really come with symptoms only. Kept rows' pattern is read from the
    warehouse's vitals and labs, as the evaluation reports it, and agrees with their
    ``measured_vitals``/``measured_labs`` features (a feature set without them keeps
    every row)."""
    ids = model_input_train["encounter_id"].astype(str).tolist()
    tables = {"vitals": prm_vitals[["encounter_id"]], "labs": prm_labs[["encounter_id"]]}
    recorded = modality_patterns(tables, ids).to_numpy()
    if not {"measured_vitals", "measured_labs"} <= set(model_input_train.columns):
        return model_input_train.assign(modality=recorded)  # no trace of masking to read
    vitals = model_input_train["measured_vitals"].to_numpy(float) > 0.5
    labs = model_input_train["measured_labs"].to_numpy(float) > 0.5
    seen = np.select(
        [vitals & labs, vitals, labs], ["all", "with_vitals", "with_labs"], "symptoms_only"
    )
    kept = recorded == seen
    logger.info(
        "monitor: reference of %d training rows (%d with masked vitals or labs left out)",
        int(kept.sum()),
        int((~kept).sum()),
    )
    return model_input_train.loc[kept].assign(modality=seen[kept]).reset_index(drop=True)


def feature_drift(
    reference: pd.DataFrame,
    live: pd.DataFrame,
    feature_builder: Any,
    params: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PSI/KS of every feature on all patients, and per modality pattern (patterns with
    at least ``min_rows`` live and reference rows): ``(table, by_modality)``; an
    empty window gives empty tables."""
    columns = ["feature", "psi", "ks_statistic", "ks_pvalue", "drifted", "ks_drifted"]
    if live.empty:
        return pd.DataFrame(columns=columns), pd.DataFrame(columns=["modality", *columns])
    cap, seed = int(params["max_rows"]), int(params["seed"])
    reference, live = _at_most(reference, cap, seed), _at_most(live, cap, seed)
    table = _unflag_calendar(
        compute_feature_drift(reference, live, feature_builder, params), params
    )
    parts = []
    for pattern in sorted(set(live["modality"])):
        cap = int(params["modality_max_rows"])
        ref = _at_most(reference[reference["modality"] == pattern], cap, seed)
        cur = _at_most(live[live["modality"] == pattern], cap, seed)
        if min(len(ref), len(cur)) < int(params["min_rows"]):
            logger.info("monitor: modality %s skipped (%d live rows)", pattern, len(cur))
            continue
        part = _unflag_calendar(compute_feature_drift(ref, cur, feature_builder, params), params)
        parts.append(part.assign(modality=pattern))
    by_modality = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return table, by_modality


def _unflag_calendar(table: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Calendar features (``calendar_features``: month, season) keep their PSI and KS but
    are never flagged: a window of days covers one season, training covers years."""
    calendar = table["feature"].isin(list(params["calendar_features"]))
    table["calendar"] = calendar
    table.loc[calendar, ["drifted", "ks_drifted"]] = False
    return table


def _at_most(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """A seeded random sample of ``rows`` rows when ``frame`` is larger (PSI and KS are
    precise to about 0.01 at 20,000 rows; the cost grows with the rows)."""
    return frame.sample(n=rows, random_state=seed) if len(frame) > rows else frame


def evidently_report(
    reference: pd.DataFrame,
    live: pd.DataFrame,
    table: pd.DataFrame,
    window: dict[str, str],
    params: dict[str, Any],
) -> tuple[str, dict[str, float], list[Any]]:
    """Evidently 0.7 ``DataDriftPreset`` on the ``evidently_max_features`` features with
    the highest PSI plus the ``watched_features`` (the drift pipeline's report, dated at
    the window's end): the HTML page, its drifted count and share, and the runs to add to
    the Evidently workspace (the snapshot). A short page and no run below ``min_rows``."""
    from evidently import Report
    from evidently.metrics import RowCount
    from evidently.presets import DataDriftPreset

    if len(live) < int(params["min_rows"]):
        text = f"<html><body><p>Only {len(live)} predictions in the window: no report.</p>"
        return text + "</body></html>", {"evidently_columns": 0.0}, []
    cap, seed = int(params["evidently_max_rows"]), int(params["seed"])
    reference = _at_most(reference, cap, seed).reset_index(drop=True)
    live = _at_most(live, cap, seed).reset_index(drop=True)
    ranked = table.dropna(subset=["psi"])["feature"].tolist()
    varying = [c for c in ranked if pd.concat([reference[c], live[c]]).nunique() > 1]
    columns = list(
        dict.fromkeys(
            [c for c in params["watched_features"] if c in varying]
            + varying[: int(params["evidently_max_features"])]
        )
    )
    preset = DataDriftPreset(drift_share=float(params["evidently_drift_share"]))
    snapshot = Report([preset, RowCount()]).run(
        current_data=live[columns].astype(float),
        reference_data=reference[columns].astype(float),
        timestamp=pd.Timestamp(window["window_end"]).to_pydatetime(),
        name=f"monitor {window['window_start']} - {window['window_end']}",
    )
    summary = {"evidently_columns": float(len(columns))}
    for metric in snapshot.dict()["metrics"]:
        if metric["metric_name"].startswith("DriftedColumnsCount"):
            summary["evidently_drifted_count"] = float(metric["value"]["count"])
            summary["evidently_drifted_share"] = float(metric["value"]["share"])
    return snapshot.get_html_str(as_iframe=False), summary, [snapshot]


def _category_mix(categories: pd.Series) -> dict[str, float]:
    return {str(k): float(v) for k, v in categories.value_counts(normalize=True).items()}


def _compare(reference: np.ndarray, current: np.ndarray, bins: int) -> dict[str, float | None]:
    if current.size == 0:
        return {"psi": None, "ks_pvalue": None}
    _, p_value = kolmogorov_smirnov(reference, current)
    return {
        "psi": population_stability_index(reference, current, bins),
        "ks_pvalue": p_value,
    }


def prediction_drift(
    window_log: pd.DataFrame,
    test_predictions: pd.DataFrame,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Top-1 category mix, P(rare) and severity of the window against the champion's
    test-split predictions: the mixes, and PSI and KS of each (categories as codes)."""
    live = window_log[window_log["status"] == "predicted"]
    common = {c.split("__", 1)[1] for c in test_predictions if c.startswith("p_common__")}
    ref_category = test_predictions["ranked_codes"].map(
        lambda codes: "COMMON" if len(codes) and codes[0] in common else "RARE"
    )
    live_category = live["top1_category"].fillna("NONE")
    bins = int(params["psi_bins"])
    out: dict[str, Any] = {
        "n": len(live),
        "top1_category": {
            "reference": _category_mix(ref_category),
            "current": _category_mix(live_category),
            **_compare(
                (ref_category == "RARE").to_numpy(float),
                (live_category == "RARE").to_numpy(float),
                bins,
            ),
        },
        "p_rare": {
            "reference_mean": float(test_predictions["p_rare"].mean()),
            "current_mean": float(live["p_rare"].mean()) if len(live) else None,
            **_compare(
                test_predictions["p_rare"].to_numpy(float), live["p_rare"].to_numpy(float), bins
            ),
        },
        "severity": {
            "reference": _category_mix(test_predictions["severity_pred"]),
            "current": _category_mix(live["severity"].fillna("NONE")),
            **_compare(
                test_predictions["severity_pred"].map(SEVERITY_ORDER).to_numpy(float),
                live["severity"].map(SEVERITY_ORDER).to_numpy(float),
                bins,
            ),
        },
    }
    out["max_psi"] = max(
        (v["psi"] for v in out.values() if isinstance(v, dict) and v.get("psi") is not None),
        default=None,
    )
    return out


def service_health(window_log: pd.DataFrame, window: dict[str, str]) -> dict[str, Any]:
    """Volume, refusals, ``/predict`` latency percentiles and batch latency per patient
    of the window; hourly volume and the
    longest gap without any prediction (what the "no predictions" alert watches)."""
    n = len(window_log)
    predicted = window_log[window_log["status"] == "predicted"]
    # /predict: one call per patient (what the latency alert watches); batch calls are
    # reported per patient (the call's time over its size)
    single = predicted[predicted["endpoint"] == "/predict"]
    latency = single["latency_ms"].to_numpy(float)
    batched = predicted[predicted["endpoint"] != "/predict"]
    per_patient = (batched["latency_ms"] / batched["batch_size"].clip(lower=1)).to_numpy(float)
    stamps = pd.to_datetime(window_log["logged_at"], utc=True).sort_values()
    edges = pd.to_datetime([window["window_start"], window["window_end"]], utc=True)
    nanos = np.concatenate(
        [[edges[0].value], stamps.to_numpy("datetime64[ns]").astype("int64"), [edges[1].value]]
    )
    gaps = np.diff(nanos) / 3.6e12
    hourly = stamps.dt.floor("h").value_counts() if n else pd.Series(dtype=int)
    return {
        "n_patients": n,
        "n_predicted": len(predicted),
        "n_refused": int((window_log["status"] == "refused").sum()),
        "refusal_rate": float((window_log["status"] == "refused").mean()) if n else None,
        "by_endpoint": {str(k): int(v) for k, v in window_log["endpoint"].value_counts().items()},
        "latency_ms": {
            f"p{q}": float(np.percentile(latency, q)) if latency.size else None
            for q in (50, 95, 99)
        },
        "batch_latency_per_patient_ms": {
            f"p{q}": float(np.percentile(per_patient, q)) if per_patient.size else None
            for q in (50, 95)
        },
        "max_per_hour": int(hourly.max()) if n else 0,
        "longest_gap_hours": float(gaps.max()) if gaps.size else None,
        "model_versions": sorted({str(v) for v in predicted["model_version"].dropna()}),
    }
