"""The review queue: the recent predictions whose confirmation would teach the model most.

Each answered prediction of the log's recent window that has no feedback yet is scored
from what the service returned (``top_probabilities`` of the differential, ``p_rare``):

- ``entropy``: entropy of the returned differential (renormalised), divided by
  ``log(k)`` — 1 when every listed disease is equally likely;
- ``margin``: ``1 − (p1 − p2)`` — 1 when the top two are tied;
- ``rare``: ``1 − |p_rare − t| / max(t, 1 − t)`` — 1 at the rare gate's threshold ``t``.

- ``disagreement``: for a prediction the shadow challenger also scored
  (``serving.challenger.mode: shadow``), ``(TV + d1) / 2`` with TV the total-variation
  distance between the two returned differentials and ``d1`` 1 when their top-1 differ;
  missing (not counted in the mean) without a shadow output.

``score`` is the weighted mean of the parts a row has (``active_learning.weights``). The
queue takes the best scores greedily with at most ``max_share_per_code`` of it per top-1
code, so one disease does not fill it (when too few codes are recent, the best remaining
rows fill the rest, after the diverse part).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

QUEUE_COLUMNS = (
    "rank",
    "request_id",
    "logged_at",
    "model_version",
    "top1_code",
    "p_rare",
    "entropy",
    "margin",
    "rare",
    "disagreement",
    "score",
)
PARTS = ("entropy", "margin", "rare", "disagreement")


def uncertainty(probabilities: list[float]) -> tuple[float, float]:
    """(normalised entropy, 1 − margin) of one returned differential."""
    p = np.asarray([x for x in probabilities if x is not None and x > 0], dtype=float)
    if p.size == 0:
        return 1.0, 1.0
    p = p / p.sum()
    entropy = float(-(p * np.log(p)).sum() / math.log(p.size)) if p.size > 1 else 0.0
    top = np.sort(p)[::-1]
    margin = float(top[0] - (top[1] if top.size > 1 else 0.0))
    return entropy, 1.0 - margin


def _differential(codes: str | None, probabilities: str | None) -> dict[str, float]:
    """A logged differential as code → probability, renormalised to sum 1."""
    pairs = dict(zip(json.loads(codes or "[]"), json.loads(probabilities or "[]"), strict=False))
    total = sum(p for p in pairs.values() if p and p > 0)
    return {c: p / total for c, p in pairs.items() if p and p > 0} if total > 0 else {}


def disagreement(log: pd.DataFrame, shadow_log: pd.DataFrame | None) -> pd.Series:
    """Per row of ``log``: champion/challenger disagreement in [0, 1] (see the module
    docstring); NaN where the shadow log has no output for the request."""
    out = pd.Series(np.nan, index=log.index, dtype=float)
    if shadow_log is None or shadow_log.empty:
        return out
    shadow = shadow_log[shadow_log["status"] == "predicted"].drop_duplicates("request_id")
    shadow = shadow.set_index("request_id")[["top_codes", "top_probabilities", "top1_code"]]
    for index, row in log.iterrows():
        if row["request_id"] not in shadow.index:
            continue
        other = shadow.loc[row["request_id"]]
        p = _differential(row["top_codes"], row["top_probabilities"])
        q = _differential(other["top_codes"], other["top_probabilities"])
        tv = 0.5 * sum(abs(p.get(c, 0.0) - q.get(c, 0.0)) for c in set(p) | set(q))
        out[index] = (tv + float(row["top1_code"] != other["top1_code"])) / 2.0
    return out


def score_predictions(
    log: pd.DataFrame, params: dict[str, Any], shadow_log: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The informativeness parts and ``score`` of every row of ``log``."""
    parts = [uncertainty(json.loads(text or "[]")) for text in log["top_probabilities"]]
    threshold = float(params["rare_threshold"])
    spread = max(threshold, 1.0 - threshold)
    weights = params["weights"]
    out = log.assign(
        entropy=[e for e, _ in parts],
        margin=[m for _, m in parts],
        rare=1.0 - (log["p_rare"].astype(float) - threshold).abs() / spread,
        disagreement=disagreement(log, shadow_log),
    )
    values = out[list(PARTS)].to_numpy(float)
    w = np.array([float(weights.get(k, 0.0)) for k in PARTS])
    present = np.isfinite(values)
    out["score"] = np.where(present, values, 0.0) @ w / (present * w).sum(axis=1)
    return out


def diverse_top(scored: pd.DataFrame, size: int, max_share: float) -> pd.DataFrame:
    """The best ``size`` rows by score with at most ``ceil(max_share · size)`` per top-1;
    when too few codes are recent to fill it so, the best remaining rows fill the rest."""
    cap = max(1, math.ceil(max_share * size))
    ordered = scored.sort_values(["score", "request_id"], ascending=[False, True])
    within = ordered.groupby(ordered["top1_code"].fillna(""), sort=False).cumcount() < cap
    chosen = ordered.loc[within].head(size)
    rest = ordered.loc[~ordered.index.isin(chosen.index)].head(size - len(chosen))
    return pd.concat([chosen, rest])


def build_review_queue(
    prediction_log: pd.DataFrame | None,
    feedback: pd.DataFrame | None,
    params: dict[str, Any],
    shadow_log: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``(queue, summary)``: the review queue and how it was drawn (``shadow_log``: the
    shadow challenger's outputs, for the disagreement part)."""
    empty = pd.DataFrame(columns=list(QUEUE_COLUMNS))
    if prediction_log is None or prediction_log.empty:
        return empty, {"queued": 0, "reason": "no prediction log yet"}
    log = prediction_log[
        (prediction_log["status"] == "predicted") & prediction_log["request_id"].notna()
    ]
    log = log.assign(logged_at=pd.to_datetime(log["logged_at"], utc=True))
    if params.get("window_days") is not None and not log.empty:
        start = log["logged_at"].max() - pd.Timedelta(days=float(params["window_days"]))
        log = log[log["logged_at"] >= start]
    labelled = set() if feedback is None else set(feedback["request_id"].astype(str))
    candidates = log[~log["request_id"].astype(str).isin(labelled)]
    if candidates.empty:
        return empty, {"queued": 0, "reason": "every recent prediction has feedback"}
    scored = score_predictions(candidates.reset_index(drop=True), params, shadow_log)
    queue = diverse_top(scored, int(params["size"]), float(params["max_share_per_code"]))
    queue = queue.assign(rank=np.arange(1, len(queue) + 1))[list(QUEUE_COLUMNS)]
    summary = {
        "queued": int(len(queue)),
        "candidates": int(len(candidates)),
        "already_labelled": int(len(log) - len(candidates)),
        "window_start": log["logged_at"].min().isoformat(),
        "window_end": log["logged_at"].max().isoformat(),
        "top1_codes": queue["top1_code"].value_counts().to_dict(),
        "mean_score_queue": float(queue["score"].mean()),
        "mean_score_candidates": float(scored["score"].mean()),
        "with_challenger_output": int(scored["disagreement"].notna().sum()),
    }
    return queue.reset_index(drop=True), summary
