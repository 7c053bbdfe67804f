"""An XGBoost booster's trees as flat arrays, for :mod:`disease_pipeline.edge.trees`.

The edge evaluates the trees in numpy, with XGBoost's own arithmetic (issue 18: the
margins must be bit-identical, not merely close). Every node of every tree goes to one
set of arrays: the split feature, the float32 threshold (``x < threshold`` goes left),
the children (global node indices; a leaf points at itself), the default direction of a
missing value and the float32 leaf value. Per tree: its root and its output group
(class). The starting margin (``base_score`` turned into a margin by the objective) is
read from XGBoost itself: the same model with every leaf set to zero predicts exactly
its base margin.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

#: the objectives whose probability transform :mod:`disease_pipeline.edge.trees` ports,
#: and the ranking one whose margins it ports (the rare hybrid's re-ranking trees)
OBJECTIVES = ("binary:logistic", "multi:softprob", "rank:pairwise")


def _booster(model: Any) -> Any:
    """The ``Booster`` of an ``XGBClassifier``, or ``model`` when it is one."""
    return model.get_booster() if hasattr(model, "get_booster") else model


def iteration_range(model: Any) -> int:
    """Boosting rounds ``XGBClassifier.predict_proba`` uses: up to ``best_iteration``
    when the model was fitted with early stopping, all of them otherwise (a bare
    ``Booster``: all of them)."""
    booster = _booster(model)
    try:
        best = model.best_iteration
    except AttributeError:
        return int(booster.num_boosted_rounds())
    return int(best) + 1


def _raw_model(booster: Any) -> dict[str, Any]:
    return json.loads(bytes(booster.save_raw(raw_format="json")))


def base_margin(booster: Any, n_features: int) -> np.ndarray:
    """The float32 margin XGBoost starts every row from, one per output group: the
    margin of the same model with all leaf values zero (adding 0.0 is exact)."""
    import xgboost as xgb

    raw = _raw_model(booster)
    for tree in raw["learner"]["gradient_booster"]["model"]["trees"]:
        leaves = np.asarray(tree["left_children"]) == -1
        tree["split_conditions"] = np.where(leaves, 0.0, tree["split_conditions"]).tolist()
        tree["base_weights"] = np.where(leaves, 0.0, tree["base_weights"]).tolist()
    zeroed = xgb.Booster(model_file=bytearray(json.dumps(raw).encode()))
    zeroed.set_param({"nthread": 1})
    matrix = xgb.DMatrix(np.full((1, n_features), np.nan, np.float32))
    return np.asarray(zeroed.predict(matrix, output_margin=True), np.float32).reshape(-1)


def tree_arrays(model: Any, n_features: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(config, arrays)`` of a fitted ``XGBClassifier`` or ``Booster`` (gbtree,
    numerical splits, one output per tree): the node arrays described in the module
    docstring, ``roots`` and ``groups`` per tree, ``base_margin`` per group; the config
    gives the objective, the number of groups, the depth of the deepest tree and the
    node count."""
    booster = _booster(model)
    raw = _raw_model(booster)
    learner = raw["learner"]
    objective = learner["objective"]["name"]
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r} has no edge port (only {OBJECTIVES})")
    gbm = learner["gradient_booster"]
    if gbm["name"] != "gbtree":
        raise ValueError(f"booster {gbm['name']!r} has no edge port (gbtree only)")
    forest = gbm["model"]
    n_trees = int(forest["iteration_indptr"][iteration_range(model)])
    trees = forest["trees"][:n_trees]
    features, thresholds, lefts, rights, defaults, values, roots = [], [], [], [], [], [], []
    depth, offset = 0, 0
    for tree in trees:
        if any(tree["split_type"]) or int(tree["tree_param"]["size_leaf_vector"]) > 1:
            raise ValueError("categorical splits and vector leaves have no edge port")
        left = np.asarray(tree["left_children"], np.int64)
        right = np.asarray(tree["right_children"], np.int64)
        leaf = left == -1
        own = np.arange(len(left)) + offset
        condition = np.asarray(tree["split_conditions"], np.float32)
        features.append(np.where(leaf, 0, tree["split_indices"]).astype(np.int32))
        thresholds.append(np.where(leaf, np.float32(0), condition).astype(np.float32))
        lefts.append(np.where(leaf, own, left + offset).astype(np.int32))
        rights.append(np.where(leaf, own, right + offset).astype(np.int32))
        defaults.append(np.asarray(tree["default_left"], bool))
        values.append(np.where(leaf, condition, np.float32(0)).astype(np.float32))
        roots.append(offset)
        depth = max(depth, _depth(left, right))
        offset += len(left)
    margin = base_margin(booster, n_features)
    arrays = {
        "feature": np.concatenate(features),
        "threshold": np.concatenate(thresholds),
        "left": np.concatenate(lefts),
        "right": np.concatenate(rights),
        "default_left": np.concatenate(defaults),
        "value": np.concatenate(values),
        "roots": np.asarray(roots, np.int32),
        "groups": np.asarray(forest["tree_info"][:n_trees], np.int32),
        "base_margin": margin,
    }
    config = {
        "objective": objective,
        "n_groups": len(margin),
        "depth": depth,
        "n_trees": n_trees,
        "n_nodes": offset,
    }
    return config, arrays


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    """Edges on the longest root-to-leaf path of one tree (children arrays, -1: leaf)."""
    level, depth = np.array([0]), 0
    while True:
        children = np.concatenate([left[level], right[level]])
        children = children[children >= 0]
        if not len(children):
            return depth
        level, depth = children, depth + 1
