"""Statistics of the rare-model validation: bootstrap intervals, paired differences,
a per-disease breakdown and the failure modes of the worst diseases.

Cases of one disease are not independent (same annotations, same cohort paper), so
the bootstrap resamples whole diseases (a cluster bootstrap); the paired difference
of two methods is resampled on the same diseases.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TOP_K = (1, 3, 10)
#: a case whose truth ranks beyond this is a failure for the breakdown
FAILURE_RANK = 10


def _clusters(diseases: list[str]) -> tuple[np.ndarray, int]:
    _, position = np.unique(np.asarray(diseases, dtype=str), return_inverse=True)
    return position.ravel(), int(position.max()) + 1 if len(position) else 0


def _resampled_means(values: np.ndarray, diseases: list[str], n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n_columns)`` means of ``values`` (cases × columns) over disease
    resamples."""
    position, n_clusters = _clusters(diseases)
    sums = np.zeros((n_clusters, values.shape[1]))
    np.add.at(sums, position, values)
    counts = np.bincount(position, minlength=n_clusters).astype(np.float64)
    draws = np.random.default_rng(seed).integers(0, n_clusters, size=(n_boot, n_clusters))
    weights = np.zeros((n_boot, n_clusters))
    for b in range(n_boot):
        weights[b] = np.bincount(draws[b], minlength=n_clusters)
    return (weights @ sums) / np.maximum(weights @ counts, 1.0)[:, None]


def hits(ranks: list[float]) -> np.ndarray:
    """Cases × :data:`TOP_K` 0/1 matrix: truth within the top k."""
    r = np.asarray(ranks, dtype=float)
    return np.column_stack([(r <= k).astype(np.float64) for k in TOP_K])


def interval(samples: np.ndarray, level: float = 0.95) -> list[float]:
    """Percentile interval of bootstrap ``samples``."""
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return [round(float(low), 4), round(float(high), 4)]


def bootstrap_metrics(
    ranks: dict[str, list[float]],
    diseases: list[str],
    *,
    reference: str,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """95 % disease-cluster bootstrap intervals of top-1/3/10 for every method, and of
    each method's paired difference to ``reference``."""
    if not diseases:
        return {"intervals": {}, "difference_to": reference, "differences": {}}
    methods = list(ranks)
    stacked = np.column_stack([hits(ranks[m]) for m in methods])
    samples = _resampled_means(stacked, diseases, n_boot, seed)
    n_k = len(TOP_K)
    out: dict[str, Any] = {"intervals": {}, "difference_to": reference, "differences": {}}
    ref = methods.index(reference) if reference in methods else None
    for i, method in enumerate(methods):
        block = samples[:, i * n_k : (i + 1) * n_k]
        out["intervals"][method] = {f"top{k}": interval(block[:, j]) for j, k in enumerate(TOP_K)}
        if ref is None or i == ref:
            continue
        base = samples[:, ref * n_k : (ref + 1) * n_k]
        point = stacked[:, i * n_k : (i + 1) * n_k].mean(0) - stacked[
            :, ref * n_k : (ref + 1) * n_k
        ].mean(0)
        out["differences"][method] = {
            f"top{k}": {
                "difference": round(float(point[j]), 4),
                "interval": interval(block[:, j] - base[:, j]),
            }
            for j, k in enumerate(TOP_K)
        }
    return out


def failure_mode(details: list[dict[str, Any]]) -> str:
    """Why the truth of one disease's cases ranks low, from per-case facts (most
    telling first)."""
    if not details:
        return "no case"
    if all(not d["annotated_terms"] for d in details):
        return "no HPO annotation of the disease (only known cases can rank it)"
    if np.mean([d["n_terms"] for d in details]) <= 2:
        return "too few patient terms"
    if np.mean([_split_costs_top10(d) for d in details]) >= 0.5:
        return "ORPHA/DECIPHER entries push it out of the top 10 (OMIM/ORPHA split)"
    if np.mean([d["unexplained_share"] for d in details]) >= 0.5:
        return "noise terms: most patient terms are not annotated to the disease"
    if np.mean([d["annotated_terms"] for d in details]) < 8:
        return "sparse annotation of the disease"
    return "similar diseases outrank it (phenotypic overlap)"


def _split_costs_top10(case: dict[str, Any]) -> bool:
    """The case would be in the top 10 but for the ORPHA/DECIPHER candidates above it."""
    rank = case.get("hybrid_rank")
    if rank is None:
        return False
    return rank > FAILURE_RANK and rank - case["non_omim_above"] <= FAILURE_RANK


def per_disease(
    ranks: dict[str, list[float]],
    details: list[dict[str, Any]],
    *,
    reference: str,
    worst: int = 20,
) -> dict[str, Any]:
    """Per-disease top-1/top-10 of ``hybrid`` and ``reference`` and the ``worst``
    diseases (lowest hybrid top-10, then top-1, most cases first) with a failure mode."""
    groups: dict[str, list[int]] = {}
    for i, d in enumerate(details):
        groups.setdefault(d["disease_id"], []).append(i)
    rows = []
    for disease, members in groups.items():
        h = np.asarray([ranks["hybrid"][i] for i in members])
        r = np.asarray([ranks[reference][i] for i in members])
        first = details[members[0]]
        rows.append(
            {
                "disease_id": disease,
                "name": first.get("disease_name", ""),
                "cases": len(members),
                "hybrid_top1": round(float(np.mean(h <= 1)), 3),
                "hybrid_top10": round(float(np.mean(h <= 10)), 3),
                f"{reference}_top1": round(float(np.mean(r <= 1)), 3),
                f"{reference}_top10": round(float(np.mean(r <= 10)), 3),
                "hybrid_median_rank": _finite(float(np.median(h))),
                "annotated_terms": int(first["annotated_terms"]),
                "mean_terms": round(float(np.mean([details[i]["n_terms"] for i in members])), 1),
                "unexplained_share": round(
                    float(np.mean([details[i]["unexplained_share"] for i in members])), 2
                ),
                "failure_mode": failure_mode(
                    [details[i] for i in members if ranks["hybrid"][i] > FAILURE_RANK]
                ),
                "most_often_ranked_first": _mode([details[i]["top1"] for i in members]),
            }
        )
    rows.sort(key=lambda x: (x["hybrid_top10"], x["hybrid_top1"], -x["cases"]))
    return {"diseases": rows, "worst": rows[:worst]}


def _finite(value: float) -> float | None:
    """``value``, or None when infinite (the truth is no candidate): JSON has no inf."""
    return value if np.isfinite(value) else None


def _mode(values: list[str]) -> str:
    names, counts = np.unique(np.asarray(values, dtype=str), return_counts=True)
    return str(names[np.argmax(counts)]) if len(names) else ""
