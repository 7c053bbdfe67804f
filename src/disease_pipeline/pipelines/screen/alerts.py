"""Alert rules over a screening table, de-duplication and the webhook payloads.

Rules (``screen.alerts.rules`` in ``parameters_screen.yml``):

- ``severity``: P(high) + P(critical) at or above the severity operating threshold;
- ``rare_candidate``: P(rare) at or above the gate's operating threshold and a rare
  disease among the first ``top`` entries of the differential;
- ``time_critical``: the top-1 disease is a must-not-miss disease of the knowledge
  catalogue (sepsis, myocardial infarction, pulmonary embolism, …).

A threshold left ``null`` is the evaluation pipeline's operating threshold
(``operating_thresholds.json``). An alert of a patient and rule is not raised again
within ``dedupe_days`` of an earlier one (whatever that one's state).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.core.alerts import ALERT_COLUMNS

RULES = ("severity", "rare_candidate", "time_critical")


def rule_threshold(rule: dict[str, Any], name: str, operating: dict[str, Any] | None, key: str):
    """The rule's ``threshold``, else the evaluation's operating threshold ``key``."""
    value = rule.get("threshold")
    if value is None:
        if not operating or operating.get(key) is None:
            raise ValueError(
                f"screen.alerts.rules.{name}.threshold: null needs the evaluation's "
                f"operating threshold {key!r} (operating_thresholds.json), which is missing"
            )
        value = operating[key]
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"screen.alerts.rules.{name}.threshold: {value} is not in [0, 1]")
    return value


def alert_id(patient_id: str, rule: str, encounter_id: str) -> str:
    """A stable id of the alert of ``rule`` on one encounter (re-screening finds it)."""
    return hashlib.sha256(f"{patient_id}|{rule}|{encounter_id}".encode()).hexdigest()[:20]


def _top_columns(screening: pd.DataFrame, part: str, top: int) -> list[str]:
    columns = [f"top{i}_{part}" for i in range(1, top + 1)]
    missing = [c for c in columns if c not in screening.columns]
    if missing:
        raise ValueError(f"screen.alerts: the screening table has no columns {missing}")
    return columns


def candidate_alerts(
    screening: pd.DataFrame,
    rules: dict[str, dict[str, Any]],
    operating: dict[str, Any] | None,
    must_not_miss: list[str],
) -> pd.DataFrame:
    """Every (encounter, rule) that fires, with its priority, reason and codes."""
    unknown = set(rules) - set(RULES)
    if unknown:
        raise ValueError(f"screen.alerts.rules: unknown rule(s) {sorted(unknown)}")
    ok = screening[screening["error"].isna()] if "error" in screening else screening
    found = []
    if rules.get("severity", {}).get("enabled", True) and "severity" in rules:
        threshold = rule_threshold(rules["severity"], "severity", operating, "p_high_or_critical")
        hit = ok[ok["p_high_or_critical"] >= threshold]
        found.append(
            pd.DataFrame(
                {
                    "index": hit.index,
                    "rule": "severity",
                    "priority": "high",
                    "reason": [
                        f"P(high or critical) {p:.3f} >= {threshold:.3f} (severity {s})"
                        for p, s in zip(
                            hit["p_high_or_critical"], hit["severity_level"], strict=True
                        )
                    ],
                    "codes": hit["severity_level"].astype(str),
                }
            )
        )
    if rules.get("rare_candidate", {}).get("enabled", True) and "rare_candidate" in rules:
        rule = rules["rare_candidate"]
        threshold = rule_threshold(rule, "rare_candidate", operating, "p_rare")
        top = int(rule.get("top", 3))
        categories = ok[_top_columns(ok, "category", top)].to_numpy()
        codes = ok[_top_columns(ok, "code", top)].to_numpy()
        is_rare = categories == "RARE"
        fires = (ok["p_rare"].to_numpy() >= threshold) & is_rare.any(axis=1)
        rows = np.flatnonzero(fires)
        found.append(
            pd.DataFrame(
                {
                    "index": ok.index[rows],
                    "rule": "rare_candidate",
                    "priority": "medium",
                    "reason": [
                        f"P(rare) {ok['p_rare'].iloc[i]:.3f} >= {threshold:.3f} and a rare "
                        f"disease in the top {top}"
                        for i in rows
                    ],
                    "codes": ["|".join(map(str, codes[i][is_rare[i]])) for i in rows],
                }
            )
        )
    if rules.get("time_critical", {}).get("enabled", True) and "time_critical" in rules:
        codes = rules["time_critical"].get("codes") or must_not_miss
        hit = ok[ok["top1_code"].isin(list(codes))]
        found.append(
            pd.DataFrame(
                {
                    "index": hit.index,
                    "rule": "time_critical",
                    "priority": "critical",
                    "reason": [
                        f"top-1 {n} ({c}) is time-critical, P = {p:.3f}"
                        for c, n, p in zip(
                            hit["top1_code"], hit["top1_name"], hit["top1_probability"], strict=True
                        )
                    ],
                    "codes": hit["top1_code"].astype(str),
                }
            )
        )
    if not found:
        return pd.DataFrame(columns=["index", "rule", "priority", "reason", "codes"])
    return pd.concat(found, ignore_index=True)


_TIME_COLUMNS = ("encounter_start", "created_at", "acknowledged_at", "closed_at")


def typed_alerts(frame: pd.DataFrame) -> pd.DataFrame:
    """The alert columns in their types (UTC times, text), so the warehouse table keeps
    typed columns even while no alert was acknowledged."""
    out = frame.reindex(columns=list(ALERT_COLUMNS)).copy()
    for column in ALERT_COLUMNS:
        if column in _TIME_COLUMNS:
            out[column] = pd.to_datetime(out[column], utc=True)
        else:
            out[column] = out[column].astype("string")
    return out


def _empty_alerts() -> pd.DataFrame:
    return typed_alerts(pd.DataFrame(columns=list(ALERT_COLUMNS)))


def deduplicate(
    candidates: pd.DataFrame, previous: pd.DataFrame, period: pd.Timedelta
) -> pd.DataFrame:
    """The candidates not within ``period`` of another alert of the same patient and
    rule (an earlier run's, or one kept before it in this run, by encounter time)."""
    kept_times: dict[tuple[str, str], list[pd.Timestamp]] = {}
    known = set(previous["alert_id"]) if len(previous) else set()
    for row in previous.itertuples(index=False):
        stamp = pd.Timestamp(row.encounter_start)
        kept_times.setdefault((row.patient_id, row.rule), []).append(stamp)
    keep = []
    ordered = candidates.sort_values(["encounter_start", "alert_id"], kind="stable")
    for position, row in zip(ordered.index, ordered.itertuples(index=False), strict=True):
        key = (row.patient_id, row.rule)
        stamp = pd.Timestamp(row.encounter_start)
        if row.alert_id in known or any(abs(stamp - t) < period for t in kept_times.get(key, [])):
            continue
        kept_times.setdefault(key, []).append(stamp)
        keep.append(position)
    return candidates.loc[keep]


def raise_alerts(
    screening: pd.DataFrame,
    previous: pd.DataFrame | None,
    operating: dict[str, Any] | None,
    must_not_miss: list[str],
    params: dict[str, Any],
    *,
    now: datetime | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The whole alerts table (previous alerts + this run's new ones) and the new ones.

    Args:
        screening: this run's screening rows (``score_window``).
        previous: the alerts table so far (None before the first run).
        operating: the evaluation's operating thresholds (None when absent).
        must_not_miss: ICD-10 codes of the catalogue's time-critical diseases.
        params: ``screen.alerts``: ``rules`` and ``dedupe_days``.
        now: the creation time (default: the current UTC time).
    """
    period = pd.Timedelta(days=float(params.get("dedupe_days", 7)))
    previous = _empty_alerts() if previous is None or previous.empty else typed_alerts(previous)
    fired = candidate_alerts(screening, params.get("rules") or {}, operating, must_not_miss)
    source = screening.loc[fired["index"].to_numpy()].reset_index(drop=True)
    stamp = pd.Timestamp(now or datetime.now(UTC))
    candidates = pd.DataFrame(
        {
            "alert_id": [
                alert_id(p, r, e)
                for p, r, e in zip(
                    source["patient_id"], fired["rule"], source["encounter_id"], strict=True
                )
            ],
            "rule": fired["rule"].to_numpy(),
            "priority": fired["priority"].to_numpy(),
            "patient_id": source["patient_id"].astype(str).to_numpy(),
            "encounter_id": source["encounter_id"].astype(str).to_numpy(),
            "encounter_start": pd.to_datetime(source["encounter_start"], utc=True).to_numpy(),
            "reason": fired["reason"].to_numpy(),
            "codes": fired["codes"].astype(str).to_numpy(),
            "screen_run": source.get("screen_run", pd.Series([None] * len(source))).to_numpy(),
            "created_at": stamp,
            "model_version": source.get(
                "model_version", pd.Series([None] * len(source))
            ).to_numpy(),
            "data_version": source.get("data_version", pd.Series([None] * len(source))).to_numpy(),
            "state": "new",
            "acknowledged_by": None,
            "acknowledged_at": pd.NaT,
            "closed_by": None,
            "closed_at": pd.NaT,
        }
    )
    candidates = typed_alerts(candidates)
    new = deduplicate(candidates, previous, period).reset_index(drop=True)
    table = new if previous.empty else pd.concat([typed_alerts(previous), new], ignore_index=True)
    return table.reset_index(drop=True), new


def webhook_payloads(new_alerts: pd.DataFrame) -> list[dict[str, Any]]:
    """One JSON-ready message per new alert (pseudonymous ids only, no clinical text
    beyond the rule's reason and codes)."""
    fields = (
        "alert_id",
        "rule",
        "priority",
        "patient_id",
        "encounter_id",
        "reason",
        "codes",
        "model_version",
        "state",
    )
    messages = []
    for row in new_alerts.to_dict("records"):
        message = {f: (None if pd.isna(row[f]) else str(row[f])) for f in fields}
        message["encounter_start"] = pd.Timestamp(row["encounter_start"]).isoformat()
        messages.append(message)
    return messages
