"""Live performance from the clinicians' confirmed diagnoses (``/feedback``).

A labelled prediction is a logged prediction of the window with a feedback row for its
``request_id`` (the latest one when a clinician corrected it). Its score is the
differential the service answered (the log's ``top_codes``/``top_probabilities``): a
disease it did not list scores 0. The reference is the champion's test split scored the
same way (its top-``top_k`` ranking), so live and reference figures are comparable.
Every figure has a 95 % percentile-bootstrap interval (``evaluation.intervals``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.pipelines.evaluation import intervals as iv
from disease_pipeline.pipelines.evaluation.metrics import expected_calibration_error

#: figure keys of the ``reporting_monitoring_summary`` interface (docs/monitoring.md)
HEADLINE = ("top1", "top3", "macro_auroc")
#: the summary's performance figures a report shows first (scripts print these)
SUMMARY_FIGURES = ("n_labelled", *HEADLINE, "reference_macro_auroc", "auroc_drop")


def labelled_predictions(window_log: pd.DataFrame, feedback: pd.DataFrame | None) -> pd.DataFrame:
    """One row per window prediction of the champion with confirmed feedback: ``label``,
    ``codes``, ``probabilities``, ``sex``, ``age``, ``modality``, ``site`` (None when the
    record named no care site, or the log predates the column). In an A/B test the
    challenger's answers are left out (its arm is compared in ``monitor.challenger``);
    a log without ``variant`` predates A/B and is all champion."""
    columns = ["request_id", "label", "codes", "probabilities", "sex", "age", "modality", "site"]
    predicted = window_log[window_log["status"] == "predicted"]
    if "variant" in predicted.columns:
        predicted = predicted[predicted["variant"].fillna("champion") == "champion"]
    if feedback is None or feedback.empty or predicted.empty:
        return pd.DataFrame(columns=columns)
    latest = feedback.sort_values("received_at").drop_duplicates("request_id", keep="last")
    joined = predicted.merge(latest[["request_id", "confirmed_code"]], on="request_id", how="inner")
    return pd.DataFrame(
        {
            "request_id": joined["request_id"],
            "label": joined["confirmed_code"],
            "codes": joined["top_codes"].map(json.loads),
            "probabilities": joined["top_probabilities"].map(json.loads),
            "sex": joined["sex"],
            "age": joined["age"],
            "modality": joined["modality"],
            "site": joined.get("site"),
        }
    )


def reference_predictions(test_predictions: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """The test split in the same shape, truncated to the served ``top_k``."""
    return pd.DataFrame(
        {
            "label": test_predictions["label_disease"].astype(str),
            "codes": test_predictions["ranked_codes"].map(lambda c: list(c)[:top_k]),
            "probabilities": test_predictions["ranked_probabilities"].map(
                lambda p: [float(x) for x in list(p)[:top_k]]
            ),
            "sex": test_predictions["sex"],
            "age": test_predictions["age_years"],
            "modality": test_predictions["modality"],
        }
    )


def _score_matrix(frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Rows × confirmed classes: the listed probability, 0 when not listed."""
    classes = sorted(set(frame["label"]))
    position = {c: j for j, c in enumerate(classes)}
    matrix = np.zeros((len(frame), len(classes)))
    for i, (codes, probs) in enumerate(zip(frame["codes"], frame["probabilities"], strict=True)):
        for code, p in zip(codes, probs, strict=True):
            if code in position:
                matrix[i, position[code]] = p
    return matrix, classes


def figures(frame: pd.DataFrame, params: dict[str, Any], light: bool = False) -> dict[str, Any]:
    """top-1, top-3, macro AUROC and top-1 ECE with 95 % intervals (None without rows);
    ``light``: the intervals of top-1/3 only (AUROC and ECE as point values)."""
    n = len(frame)
    out: dict[str, Any] = {"n": n}
    if n == 0:
        return out | {k: None for k in (*HEADLINE, "ece")} | {"intervals": {}}
    boot = {"n_boot": int(params["n_boot"]), "seed": int(params["seed"]), "level": 0.95}
    labels = frame["label"].to_numpy()
    ranked = frame["codes"].tolist()
    values = {}
    for k in (1, 3):
        values |= iv.mean_figure(f"top{k}", iv.hits_at_k(labels, ranked, k), **boot)
    matrix, classes = _score_matrix(frame)
    top1_p = np.array([p[0] if len(p) else 0.0 for p in frame["probabilities"]])
    hit1 = iv.hits_at_k(labels, ranked, 1)
    bins = int(params["ece_bins"])
    auroc = iv.resampled_macro_auroc(labels, matrix, classes)

    def ece(draw: np.ndarray) -> float:
        return expected_calibration_error(top1_p[draw], hit1[draw], bins)

    if light:
        every = np.arange(n)
        values |= iv.figure("macro_auroc", auroc(every), np.array([]), 0.95)
        values |= iv.figure("ece", ece(every), np.array([]), 0.95)
    else:
        values |= iv.statistic_figure("macro_auroc", auroc, n, **boot)
        values |= iv.statistic_figure("ece", ece, n, **boot, debias=True)
    for name in (*HEADLINE, "ece"):
        value = values[name]
        out[name] = None if not np.isfinite(value) else round(float(value), 4)
    out["intervals"] = {
        name: [_round(values[f"{name}.ci_low"]), _round(values[f"{name}.ci_high"])]
        for name in (*HEADLINE, "ece")
    }
    return out


def _round(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 4)


def subgroups(frame: pd.DataFrame, params: dict[str, Any]) -> pd.Series:
    """Each row's groups: ``sex=…``, ``age=…`` (``age_bands`` edges), ``modality=…`` and,
    when some record named its care site, ``site=…`` (``site=unknown`` for the others)."""
    edges = [float(e) for e in params["age_bands"]]
    labels = [f"{int(lo)}-{int(hi)}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    bands = pd.cut(frame["age"].astype(float), edges, right=False, labels=labels)
    groups = pd.DataFrame(
        {
            "sex": "sex=" + frame["sex"].astype(str),
            "age": "age=" + bands.astype(str).replace("nan", "unknown"),
            "modality": "modality=" + frame["modality"].astype(str),
        },
        index=frame.index,
    )
    if "site" in frame and frame["site"].notna().any():
        groups["site"] = "site=" + frame["site"].astype(object).where(
            frame["site"].notna(), "unknown"
        ).astype(str)
    return groups


def performance(
    labelled: pd.DataFrame, reference: pd.DataFrame, params: dict[str, Any]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Live figures, the reference beside them, the drops, per-disease recall and the
    subgroup table with each attribute's gap (largest minus smallest top-3 among groups
    with at least ``min_subgroup_n`` labelled predictions)."""
    live, ref = figures(labelled, params), figures(reference, params)
    summary: dict[str, Any] = {
        "n_labelled": live["n"],
        **{name: live[name] for name in (*HEADLINE, "ece")},
        "intervals": live["intervals"],
        **{f"reference_{name}": ref[name] for name in (*HEADLINE, "ece")},
        "reference_intervals": ref["intervals"],
        "reference_n": ref["n"],
    }
    for name in HEADLINE:
        drop = None
        if live[name] is not None and ref[name] is not None:
            drop = round(ref[name] - live[name], 4)
        summary[f"{name}_drop"] = drop
    summary["auroc_drop"] = summary.pop("macro_auroc_drop")
    rows = []
    if len(labelled):
        groups = subgroups(labelled, params)
        for attribute in groups.columns:
            for group, index in groups.groupby(attribute).groups.items():
                part = figures(labelled.loc[index], params, light=True)
                rows.append({"attribute": attribute, "group": group, **_flat(part)})
    table = pd.DataFrame(
        rows,
        columns=["attribute", "group", "n", "top1", "top3", "top3_low", "top3_high", "macro_auroc"],
    )
    gaps = {}
    big = table[table["n"] >= int(params["min_subgroup_n"])]
    for attribute, part in big.groupby("attribute"):
        if len(part) > 1 and part["top3"].notna().all():
            gaps[attribute] = round(float(part["top3"].max() - part["top3"].min()), 4)
    summary["subgroup_gaps"] = gaps
    summary["max_subgroup_gap"] = max(gaps.values()) if gaps else None
    summary["per_disease_top1_recall"] = _per_disease(labelled)
    return summary, table


def _flat(part: dict[str, Any]) -> dict[str, Any]:
    low, high = part["intervals"].get("top3", [None, None])
    return {
        "n": part["n"],
        "top1": part["top1"],
        "top3": part["top3"],
        "top3_low": low,
        "top3_high": high,
        "macro_auroc": part["macro_auroc"],
    }


def _per_disease(labelled: pd.DataFrame) -> dict[str, dict[str, float]]:
    if labelled.empty:
        return {}
    hit = iv.hits_at_k(labelled["label"].to_numpy(), labelled["codes"].tolist(), 1)
    grouped = pd.Series(hit, index=labelled["label"].to_numpy()).groupby(level=0)
    return {
        str(code): {"n": int(len(values)), "recall": round(float(values.mean()), 4)}
        for code, values in grouped
    }
