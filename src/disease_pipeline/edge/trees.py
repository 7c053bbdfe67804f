"""XGBoost's CPU prediction in numpy, bit for bit (issue 18).

The margins: every row starts from the float32 base margin of its output group, and
each tree's leaf value is added in float32 in tree order (XGBoost's CPU predictor; a
multi-class model's trees each add to their own class). A row walks a tree by
``x < threshold`` in float32 to the left, a missing value (NaN) to the node's default
side. All trees are walked at once, one level per step (a leaf points at itself).

The probabilities: XGBoost's float32 ``Sigmoid`` (``1 / (expf(min(-x, 88.7)) + 1)``)
and ``Softmax`` (``expf(x - max)`` in float32, their sum in float64, divided in float32),
with :func:`expf` a numpy port of the C library's ``expf`` (glibc ≥ 2.28, the one the
XGBoost wheels call on Linux): numpy's own float32 ``exp`` differs from it in the last
bit for about a third of the inputs, and one float32 step of a probability is enough
for a steep isotonic calibrator segment to move the answer by 2e-4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: 2^(i/32) as IEEE double bits, less i << 47 (glibc ``__exp2f_data.tab``)
_EXP2_TABLE = np.array(
    [
        0x3FF0000000000000, 0x3FEFD9B0D3158574, 0x3FEFB5586CF9890F, 0x3FEF9301D0125B51,
        0x3FEF72B83C7D517B, 0x3FEF54873168B9AA, 0x3FEF387A6E756238, 0x3FEF1E9DF51FDEE1,
        0x3FEF06FE0A31B715, 0x3FEEF1A7373AA9CB, 0x3FEEDEA64C123422, 0x3FEECE086061892D,
        0x3FEEBFDAD5362A27, 0x3FEEB42B569D4F82, 0x3FEEAB07DD485429, 0x3FEEA47EB03A5585,
        0x3FEEA09E667F3BCD, 0x3FEE9F75E8EC5F74, 0x3FEEA11473EB0187, 0x3FEEA589994CCE13,
        0x3FEEACE5422AA0DB, 0x3FEEB737B0CDC5E5, 0x3FEEC49182A3F090, 0x3FEED503B23E255D,
        0x3FEEE89F995AD3AD, 0x3FEEFF76F2FB5E47, 0x3FEF199BDD85529C, 0x3FEF3720DCEF9069,
        0x3FEF5818DCFBA487, 0x3FEF7C97337B9B5F, 0x3FEFA4AFA2A490DA, 0x3FEFD0765B6E4540,
    ],
    dtype=np.uint64,
)  # fmt: skip
_TABLE_BITS = 5
_N = 1 << _TABLE_BITS
_SHIFT = float.fromhex("0x1.8p+52")
_INV_LN2_N = float.fromhex("0x1.71547652b82fep+0") * _N
_POLY = (
    float.fromhex("0x1.c6af84b912394p-5") / _N**3,
    float.fromhex("0x1.ebfce50fac4f3p-3") / _N**2,
    float.fromhex("0x1.62e42ff0c52d6p-1") / _N,
)
_OVERFLOW = np.float32(float.fromhex("0x1.62e42ep6"))
_UNDERFLOW = np.float32(-float.fromhex("0x1.9fe368p6"))
#: XGBoost's ``Sigmoid`` bound on ``-x`` (avoids ``expf`` overflow)
_SIGMOID_BOUND = np.float32(88.7)


def expf(x: np.ndarray) -> np.ndarray:
    """float32 ``exp`` of float32 ``x`` as glibc's ``expf`` computes it: ``x·32/ln 2 =
    k + r``, ``2^(k/32)`` from the table, a cubic in ``r``, all in double, rounded once."""
    x = np.asarray(x, np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # ±inf and NaN: set below
        z = _INV_LN2_N * x.astype(np.float64)
        kd = z + _SHIFT
        ki = np.where(np.isfinite(kd), kd, _SHIFT).view(np.uint64)
        r = z - (kd - _SHIFT)
        bits = _EXP2_TABLE[ki % np.uint64(_N)] + (ki << np.uint64(52 - _TABLE_BITS))
        y = (_POLY[0] * r + _POLY[1]) * (r * r) + (_POLY[2] * r + 1.0)
        out = (y * bits.view(np.float64)).astype(np.float32)
    out = np.where(x > _OVERFLOW, np.float32(np.inf), out)
    out = np.where(x < _UNDERFLOW, np.float32(0.0), out)
    return np.where(np.isnan(x), x, out).astype(np.float32)


def sigmoid(margin: np.ndarray) -> np.ndarray:
    """XGBoost's float32 ``common::Sigmoid`` (``binary:logistic``; its ``+ 1e-16`` in
    the denominator is below float32 resolution next to 1 and changes nothing)."""
    margin = np.asarray(margin, np.float32)
    denominator = expf(np.minimum(-margin, _SIGMOID_BOUND)) + np.float32(1.0)
    return (np.float32(1.0) / denominator).astype(np.float32)


def softmax(margin: np.ndarray) -> np.ndarray:
    """XGBoost's float32 ``common::Softmax`` over each row (``multi:softprob``)."""
    margin = np.asarray(margin, np.float32)
    exps = expf(margin - margin.max(axis=1, keepdims=True))
    total = np.add.accumulate(exps.astype(np.float64), axis=1)[:, -1:]
    return (exps / total.astype(np.float32)).astype(np.float32)


@dataclass(frozen=True)
class TreeEnsemble:
    """One booster's trees (``edge_export.trees.tree_arrays``) and how to sum them."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    default_left: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    base_margin: np.ndarray
    #: (n_groups, rounds) tree positions per group in tree order; ``n_trees``: no tree
    order: np.ndarray
    depth: int
    objective: str


def group_order(groups: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups, rounds) positions of each group's trees in tree order, padded with
    ``len(groups)`` (a zero leaf: adding 0.0 changes no sum)."""
    rounds = max((int(np.sum(groups == g)) for g in range(n_groups)), default=0)
    order = np.full((n_groups, rounds), len(groups), np.int64)
    for g in range(n_groups):
        positions = np.flatnonzero(groups == g)
        order[g, : len(positions)] = positions
    return order


def load_ensemble(spec: dict, arrays: dict[str, np.ndarray], prefix: str) -> TreeEnsemble:
    """The ensemble stored under ``{prefix}_*`` in ``arrays`` (``spec``: its config)."""

    def get(key: str) -> np.ndarray:
        return arrays[f"{prefix}_{key}"]

    return TreeEnsemble(
        feature=get("feature").astype(np.intp),
        threshold=get("threshold").astype(np.float32),
        left=get("left").astype(np.intp),
        right=get("right").astype(np.intp),
        default_left=get("default_left").astype(bool),
        value=get("value").astype(np.float32),
        roots=get("roots").astype(np.intp),
        base_margin=get("base_margin").astype(np.float32),
        order=group_order(get("groups"), int(spec["n_groups"])),
        depth=int(spec["depth"]),
        objective=str(spec["objective"]),
    )


def leaf_values(ensemble: TreeEnsemble, values: np.ndarray) -> np.ndarray:
    """(n, n_trees) float32 leaf value each row reaches in each tree."""
    values = np.asarray(values, np.float32)
    rows = np.arange(len(values))[:, None]
    node = np.broadcast_to(ensemble.roots, (len(values), len(ensemble.roots)))
    for _ in range(ensemble.depth):
        x = values[rows, ensemble.feature[node]]
        with np.errstate(invalid="ignore"):
            below = x < ensemble.threshold[node]
        go_left = np.where(np.isnan(x), ensemble.default_left[node], below)
        node = np.where(go_left, ensemble.left[node], ensemble.right[node])
    return ensemble.value[node]


def margins(ensemble: TreeEnsemble, values: np.ndarray) -> np.ndarray:
    """(n, n_groups) float32 margins, as ``Booster.predict(..., output_margin=True)``:
    the base margin plus each group's leaf values, summed in float32 in tree order."""
    leaves = leaf_values(ensemble, values)
    leaves = np.hstack([leaves, np.zeros((len(leaves), 1), np.float32)])
    per_group = leaves[:, ensemble.order]  # (n, n_groups, rounds)
    n_groups = len(ensemble.base_margin)
    start = np.broadcast_to(ensemble.base_margin[:, None], (len(leaves), n_groups, 1))
    terms = np.concatenate([start, per_group], axis=2)
    return np.add.accumulate(terms, axis=2, dtype=np.float32)[:, :, -1]


def predict_proba(ensemble: TreeEnsemble, values: np.ndarray) -> np.ndarray:
    """``XGBClassifier.predict_proba``: (n, 2) ``[1 - p, p]`` of a binary model, the
    softmax over classes of a multi-class one (float32)."""
    margin = margins(ensemble, values)
    if ensemble.objective == "binary:logistic":
        p = sigmoid(margin[:, 0])
        return np.column_stack([np.float32(1.0) - p, p]).astype(np.float32)
    if ensemble.objective == "multi:softprob":
        return softmax(margin)
    raise ValueError(f"objective {ensemble.objective!r} has no edge port")
