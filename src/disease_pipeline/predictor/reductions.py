"""Per-encounter reductions of child rows: the vectorised twin of featuretools' DFS.

numpy only (no pandas, no featuretools): the feature builder
(:mod:`disease_pipeline.predictor.features`) and the edge runtime
(:mod:`disease_pipeline.edge`) compute the synthesised features with the same code.
``specs`` are objects with ``child``, ``primitive``, ``column`` and ``where``
attributes (:class:`disease_pipeline.predictor.feature_dfs.AggSpec`, or the edge
package's records of them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Prepared tables: per child, ``codes`` (encounter position) plus its columns, all numpy.
Children = dict[str, dict[str, np.ndarray]]


def reduce_groups(primitive: str, codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Featuretools semantics of ``primitive`` per group: NaN ignored, count/sum 0 when empty."""
    if primitive == "count":
        return np.bincount(codes, minlength=n).astype(float)
    valid = ~np.isnan(values)
    codes, values = codes[valid], values[valid]
    total = np.bincount(codes, weights=values, minlength=n)
    if primitive == "sum":
        return total
    size = np.bincount(codes, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / size
        if primitive == "mean":
            return mean
        if primitive == "std":
            squares = np.bincount(codes, weights=(values - mean[codes]) ** 2, minlength=n)
            return np.where(size > 1, np.sqrt(squares / (size - 1)), np.nan)
    if primitive in ("min", "max"):
        out = np.full(n, np.inf if primitive == "min" else -np.inf)
        (np.minimum if primitive == "min" else np.maximum).at(out, codes, values)
        return np.where(size > 0, out, np.nan)
    raise ValueError(f"aggregation primitive {primitive!r} is not supported")


def aggregate(specs: list[Any], age: np.ndarray, children: Children, n: int) -> np.ndarray:
    """The synthesised features as an (n, len(specs)) float matrix, computed with numpy.

    Per-LOINC features sharing a child, primitive and column are reduced together over
    (encounter, LOINC) groups.
    """
    out = np.empty((n, len(specs)))
    plan: dict[tuple, list[tuple[int, str | None]]] = {}
    for j, spec in enumerate(specs):
        key = (spec.child, spec.primitive, spec.column, spec.where is not None)
        plan.setdefault(key, []).append((j, spec.where))
    positions: dict[tuple, np.ndarray] = {}
    for (child, primitive, column, conditioned), items in plan.items():
        columns = [j for j, _ in items]
        if child == "encounters":
            out[:, columns] = age[:, None]
            continue
        arrays = children[child]
        codes = arrays["codes"]
        values = arrays[column] if column else np.zeros(len(codes))
        if not conditioned:
            for j in columns:
                out[:, j] = reduce_groups(primitive, codes, values, n)
            continue
        wheres = tuple(w for _, w in items)
        if (child, wheres) not in positions:
            lookup = {w: i for i, w in enumerate(wheres)}
            loinc = arrays["loinc"]
            positions[child, wheres] = np.fromiter(
                (lookup.get(c, -1) for c in loinc), dtype=int, count=len(loinc)
            )
        where_pos = positions[child, wheres]
        keep = where_pos >= 0
        k = len(wheres)
        grouped = codes[keep] * k + where_pos[keep]
        out[:, columns] = reduce_groups(primitive, grouped, values[keep], n * k).reshape(n, k)
    return out
