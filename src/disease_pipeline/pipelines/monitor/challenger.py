"""Champion and challenger on the window's live traffic (``serving.challenger``).

- **Shadow**: the challenger scored every answered patient after the answer; its rows are
  in the shadow log under the champion answer's ``request_id``. Each pair is the same
  patient scored by both: top-1 and severity agreement, P(rare) difference and, for the
  pairs with a confirmed diagnosis, the paired top-1/top-3 difference (challenger −
  champion, bootstrap over the same patients) and McNemar's test on top-1.
- **A/B**: the window's answers carry the ``variant`` that gave them. Patients of the two
  arms differ, so the difference of the arms' top-1/top-3 on confirmed diagnoses has an
  unpaired bootstrap interval (each arm resampled on its own).

A labelled answer scores as the service answered it: a disease it did not list is a miss.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.pipelines.evaluation import intervals as iv
from disease_pipeline.pipelines.retrain.compare import mcnemar_top1

KS = (1, 3)


def _latest_labels(feedback: pd.DataFrame | None) -> pd.DataFrame:
    """``request_id`` → ``label``: the latest confirmed code of each request."""
    if feedback is None or feedback.empty:
        return pd.DataFrame(columns=["request_id", "label"])
    latest = feedback.sort_values("received_at").drop_duplicates("request_id", keep="last")
    return latest[["request_id", "confirmed_code"]].rename(columns={"confirmed_code": "label"})


def _hits(labels: pd.Series, top_codes: pd.Series, k: int) -> np.ndarray:
    return iv.hits_at_k(labels.to_numpy(), [json.loads(c or "[]") for c in top_codes], k)


def _round(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        key: round(value, 4) if isinstance(value, float) and np.isfinite(value) else value
        for key, value in figures.items()
    }


def shadow_pairs(window_log: pd.DataFrame, shadow_log: pd.DataFrame | None) -> pd.DataFrame:
    """The window's champion answers joined to their shadow outputs (suffixes
    ``_champion`` / ``_challenger``)."""
    answered = window_log[window_log["status"] == "predicted"]
    if "variant" in answered.columns:
        answered = answered[answered["variant"].fillna("champion") == "champion"]
    if shadow_log is None or shadow_log.empty or answered.empty:
        return pd.DataFrame()
    shadow = shadow_log[shadow_log["status"] == "predicted"].drop_duplicates("request_id")
    return answered.merge(
        shadow, on="request_id", how="inner", suffixes=("_champion", "_challenger")
    )


def compare_shadow(pairs: pd.DataFrame, labels: pd.DataFrame, config: dict[str, Any]) -> dict:
    """Agreement of the pairs and, on the labelled ones, the paired differences."""
    out: dict[str, Any] = {
        "n_pairs": len(pairs),
        "top1_agreement": float(
            (pairs["top1_code_champion"] == pairs["top1_code_challenger"]).mean()
        ),
        "severity_agreement": float(
            (pairs["severity_champion"] == pairs["severity_challenger"]).mean()
        ),
        "p_rare_mean_abs_difference": float(
            (pairs["p_rare_champion"] - pairs["p_rare_challenger"]).abs().mean()
        ),
        "challenger_versions": sorted(pairs["model_version_challenger"].dropna().unique()),
    }
    labelled = pairs.merge(labels, on="request_id", how="inner")
    out["n_labelled"] = len(labelled)
    if labelled.empty:
        return out
    boot = {"n_boot": int(config["n_boot"]), "seed": int(config["seed"]), "level": 0.95}
    for k in KS:
        champion = _hits(labelled["label"], labelled["top_codes_champion"], k)
        challenger = _hits(labelled["label"], labelled["top_codes_challenger"], k)
        out[f"top{k}_champion"] = float(champion.mean())
        out[f"top{k}_challenger"] = float(challenger.mean())
        out |= iv.paired_mean_difference(f"top{k}_difference", challenger, champion, **boot)
        if k == 1:
            out["mcnemar_top1"] = mcnemar_top1(champion, challenger)
    return out


def compare_ab(window_log: pd.DataFrame, labels: pd.DataFrame, config: dict[str, Any]) -> dict:
    """Each arm's answers and, on the labelled ones, top-1/top-3 per arm and the
    difference of the arms (challenger − champion) with an unpaired interval."""
    answered = window_log[window_log["status"] == "predicted"]
    arms = {v: answered[answered["variant"] == v] for v in ("champion", "challenger")}
    out: dict[str, Any] = {f"n_{arm}": len(rows) for arm, rows in arms.items()}
    labelled = {arm: rows.merge(labels, on="request_id") for arm, rows in arms.items()}
    out |= {f"n_labelled_{arm}": len(rows) for arm, rows in labelled.items()}
    if any(rows.empty for rows in labelled.values()):
        return out
    n_boot, seed = int(config["n_boot"]), int(config["seed"])
    for k in KS:
        hits = {arm: _hits(rows["label"], rows["top_codes"], k) for arm, rows in labelled.items()}
        draws = {
            arm: values[iv.resamples(len(values), n_boot, seed + i)].mean(axis=1)
            for i, (arm, values) in enumerate(hits.items())
        }
        out[f"top{k}_champion"] = float(hits["champion"].mean())
        out[f"top{k}_challenger"] = float(hits["challenger"].mean())
        out |= iv.figure(
            f"top{k}_difference",
            out[f"top{k}_challenger"] - out[f"top{k}_champion"],
            draws["challenger"] - draws["champion"],
            0.95,
        )
    return out


def challenger_comparison(
    window_log: pd.DataFrame,
    shadow_log: pd.DataFrame | None,
    feedback: pd.DataFrame | None,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The ``challenger`` section of the monitoring summary: ``mode`` (``shadow``, ``ab``
    or None when the window has no challenger traffic) and its figures."""
    labels = _latest_labels(feedback)
    if shadow_log is not None and not shadow_log.empty:
        shadow_log = shadow_log[shadow_log["request_id"].isin(window_log["request_id"])]
    pairs = shadow_pairs(window_log, shadow_log)
    if not pairs.empty:
        return {"mode": "shadow", **_round(compare_shadow(pairs, labels, params))}
    variants = set(window_log.get("variant", pd.Series(dtype=object)).dropna())
    if "challenger" in variants:
        return {"mode": "ab", **_round(compare_ab(window_log, labels, params))}
    return {"mode": None}
