"""The monitoring summary (``reporting_monitoring_summary``, read by ``retrain_check`` and the
service's gauges), the MLflow metrics of the monitoring run and an HTML page."""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf → None, numpy scalars → Python, recursively."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _drift_section(
    table: pd.DataFrame, by_modality: pd.DataFrame, evidently: dict, params: dict[str, Any]
) -> dict[str, Any]:
    threshold = float(params["psi_threshold"])
    top_n = int(params["top_features"])
    calendar = table["calendar"] if "calendar" in table else pd.Series(False, index=table.index)
    ranked = table[~calendar.astype(bool)].sort_values("psi", ascending=False)
    modalities = {}
    for pattern, part in by_modality.groupby("modality") if len(by_modality) else []:
        drifted = part[part["drifted"].astype(bool)].sort_values("psi", ascending=False)
        modalities[str(pattern)] = {
            "max_psi": float(part["psi"].max()),
            "drifted_features": drifted["feature"].head(top_n).tolist(),
        }
    drifted = ranked[ranked["drifted"].astype(bool)]
    return {
        "psi_threshold": threshold,
        "ks_alpha": float(params["ks_alpha"]),
        "n_features": len(table),
        "psi": dict(zip(table["feature"], table["psi"].astype(float), strict=True)),
        "ks_pvalue": dict(zip(table["feature"], table["ks_pvalue"].astype(float), strict=True)),
        "max_psi": float(ranked["psi"].max()) if len(ranked) else None,
        "calendar_psi": dict(
            zip(
                table.loc[calendar.astype(bool), "feature"],
                table.loc[calendar.astype(bool), "psi"],
                strict=True,
            )
        ),
        "n_drifted_psi": len(drifted),
        "n_drifted_ks": int(table["ks_drifted"].sum()) if len(table) else 0,
        "drifted_features": drifted["feature"].tolist(),
        "top_psi": dict(zip(ranked["feature"].head(top_n), ranked["psi"].head(top_n), strict=True)),
        "by_modality": modalities,
        "evidently": evidently,
    }


def alerts(summary: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """The thresholds of docs/monitoring.md crossed in this window (same as the
    Prometheus rules, which fire on the exported gauges)."""
    found = []
    drift, perf = summary["drift"], summary["performance"]
    top = set(list(drift["top_psi"])[: int(params["top_features"])])
    for feature in drift["drifted_features"]:
        if feature in top:
            found.append(
                f"drift: PSI {drift['psi'][feature]:.3f} > {drift['psi_threshold']} on {feature}"
            )
    # a drop on a handful of labels is noise: judged from performance_min_labelled on
    enough = (perf.get("n_labelled") or 0) >= int(params["performance_min_labelled"])
    for key in ("auroc_drop", "top3_drop"):
        if enough and perf.get(key) is not None and perf[key] >= float(params["performance_drop"]):
            found.append(f"performance: {key} {perf[key]:.3f} >= {params['performance_drop']}")
    gap = perf.get("max_subgroup_gap")
    if gap is not None and gap > float(params["subgroup_gap"]):
        found.append(f"fairness: subgroup top-3 gap {gap:.3f} > {params['subgroup_gap']}")
    p95 = summary["health"]["latency_ms"]["p95"]
    if p95 is not None and p95 > float(params["latency_p95_ms"]):
        found.append(f"latency: p95 {p95:.0f} ms > {params['latency_p95_ms']} ms")
    return found


def summarise_monitoring(  # noqa: PLR0913, PLR0917 - one input per monitoring section
    window: dict[str, str],
    drift_table: pd.DataFrame,
    drift_by_modality: pd.DataFrame,
    evidently_summary: dict[str, float],
    prediction_drift: dict[str, Any],
    performance: dict[str, Any],
    health: dict[str, Any],
    challenger: dict[str, Any],
    params: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``reporting_monitoring_summary`` and the MLflow metrics (``monitor.*``, step 0)."""
    summary: dict[str, Any] = {
        **window,
        "window_end_epoch": pd.Timestamp(window["window_end"]).timestamp(),
        "n_predictions": int(health["n_predicted"]),
        "drift": _drift_section(drift_table, drift_by_modality, evidently_summary, params),
        "prediction_drift": prediction_drift,
        "performance": performance,
        "health": health,
        "challenger": challenger,
    }
    summary = _clean(summary)
    summary["alerts"] = alerts(summary, params)
    flat = {
        "n_predictions": summary["n_predictions"],
        "drift.max_psi": summary["drift"]["max_psi"],
        "drift.n_drifted_psi": summary["drift"]["n_drifted_psi"],
        "prediction_drift.max_psi": prediction_drift.get("max_psi"),
        "performance.n_labelled": performance["n_labelled"],
        "performance.top1": performance["top1"],
        "performance.top3": performance["top3"],
        "performance.macro_auroc": performance["macro_auroc"],
        "performance.auroc_drop": performance["auroc_drop"],
        "performance.max_subgroup_gap": performance["max_subgroup_gap"],
        "health.refusal_rate": health["refusal_rate"],
        "health.latency_p95_ms": health["latency_ms"]["p95"],
        "alerts": len(summary["alerts"]),
        **{
            f"challenger.{k}": v
            for k, v in challenger.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        },
    }
    metrics = {
        f"monitor.{k}": {"value": float(v), "step": 0}
        for k, v in _clean(flat).items()
        if v is not None
    }
    return summary, metrics


def render_report(summary: dict[str, Any], subgroup_table: pd.DataFrame) -> str:
    """A one-page HTML report of the summary (the Evidently page has the distributions)."""
    perf, health, drift = summary["performance"], summary["health"], summary["drift"]

    def row(name: str, live: Any, ref: Any = "", interval: Any = "") -> str:
        cells = [name, live, interval, ref]
        return "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"

    perf_rows = "".join(
        row(
            name,
            perf.get(name),
            perf.get(f"reference_{name}"),
            perf.get("intervals", {}).get(name, ""),
        )
        for name in ("top1", "top3", "macro_auroc", "ece")
    )
    top = pd.DataFrame({"feature": list(drift["top_psi"]), "psi": list(drift["top_psi"].values())})
    alert_items = (
        "".join(f"<li>{html.escape(a)}</li>" for a in summary["alerts"]) or "<li>none</li>"
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>disease_pipeline monitoring {html.escape(summary["window_end"])}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;border:1px solid #ccc}}
table{{border-collapse:collapse}}</style></head><body>
<h1>Monitoring {html.escape(summary["window_start"])} – {html.escape(summary["window_end"])}</h1>
<h2>Alerts</h2><ul>{alert_items}</ul>
<h2>Service health</h2><p>{health["n_patients"]} patients, {health["n_predicted"]} predicted,
{health["n_refused"]} refused (rate {health["refusal_rate"]}); latency ms
{html.escape(str(health["latency_ms"]))}; longest gap {health["longest_gap_hours"]} h.</p>
<h2>Live performance ({perf["n_labelled"]} confirmed diagnoses)</h2>
<table><tr><th>figure</th><th>live</th><th>95 % interval</th><th>reference (test split)</th></tr>
{perf_rows}</table><p>AUROC drop {perf["auroc_drop"]}; top-3 drop {perf["top3_drop"]};
largest subgroup top-3 gap {perf["max_subgroup_gap"]}</p>
{subgroup_table.to_html(index=False)}
<h2>Data drift (max PSI {drift["max_psi"]}, {drift["n_drifted_psi"]} features above
{drift["psi_threshold"]})</h2>{top.to_html(index=False)}
<p>Per feature distributions: evidently_data_drift.html.</p>
<h2>Prediction drift</h2><pre>{html.escape(str(summary["prediction_drift"]))}</pre>
<h2>Champion and challenger ({html.escape(str(summary.get("challenger", {}).get("mode")))})</h2>
<pre>{html.escape(str(summary.get("challenger", {})))}</pre>
</body></html>"""
