"""XGBoost's probabilities for a few rows by a numpy walk of the trees (issue 15).

A call of XGBoost's CPU predictor (one thread, as the service runs it) costs ~0.2 ms,
plus ~0.25 µs per tree whatever the number of rows (~1.2 ms for one patient and the
4,148 trees of a 61-class, 68-round common model), plus ~0.016 µs per tree and row. The
numpy walk of :mod:`disease_pipeline.edge.trees` (issue 18: XGBoost's float32 margins,
sigmoid and softmax, bit for bit) costs ~0.1 ms plus 0.05–0.09 µs per tree and row. It
answers the calls of at most :data:`SMALL_ROWS` rows plus :data:`SMALL_TREE_ROWS` /
trees (up to 4 patients of such a common model, 10 of a 300-tree gate model, 100 of a
20-tree severity threshold model; measured break-even 5–6, 16–24 and over 64); larger
calls stay with XGBoost.

:func:`prepare_small_inputs` turns it on for a predictor's tree models (the service's
:class:`~disease_pipeline.serving.engine.PredictionEngine` does, once at load: ~1 s
for such a common model, XGBoost's JSON dump). Each model's node arrays are then
checked against XGBoost on probe rows (missing values, the split thresholds themselves,
the float32 values beside them, random values): a model whose walk differs from
XGBoost by one bit on this platform keeps XGBoost. The arrays are never pickled.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: the numpy walk answers calls of at most SMALL_ROWS + SMALL_TREE_ROWS / trees rows
SMALL_ROWS = 4
SMALL_TREE_ROWS = 2_000
#: probe rows of the check against XGBoost
PROBE_ROWS = 64
#: attribute of a classifier holding its walks (one per XGBoost model, None: XGBoost)
CACHE = "_small_trees"


class SmallTrees:
    """One XGBoost classifier's trees as numpy arrays, and their walk."""

    def __init__(self, ensemble: Any, n_trees: int, order: str = "C") -> None:
        self.ensemble = ensemble
        self.n_trees = n_trees
        #: memory order of XGBoost's answer ("F" for a binary model's ``[1 - p, p]``): a
        #: row sum of a 2-D array rounds differently in C and Fortran order (the
        #: predictor's renormalisations sum rows), so the walk answers in the same one
        self.order = order

    def fits(self, rows: int) -> bool:
        """Whether the walk answers a call of ``rows`` rows."""
        return 0 < rows * self.n_trees <= SMALL_ROWS * self.n_trees + SMALL_TREE_ROWS

    def predict_proba(self, values: np.ndarray) -> np.ndarray:
        """``XGBClassifier.predict_proba(values)`` (float32, bit for bit)."""
        from disease_pipeline.edge.trees import predict_proba

        return np.asarray(predict_proba(self.ensemble, values), order=self.order)


def build(model: Any, n_features: int, seed: int = 0) -> SmallTrees | None:
    """The walk of a fitted ``XGBClassifier``, or None when it has no numpy port (another
    objective or booster, categorical splits, a missing value other than NaN) or when
    the walk differs from XGBoost on the probe rows."""
    from disease_pipeline.edge.trees import load_ensemble
    from disease_pipeline.edge_export.trees import tree_arrays

    if not np.isnan(getattr(model, "missing", np.nan)):
        return None
    try:
        spec, arrays = tree_arrays(model, n_features)
    except (ValueError, KeyError) as error:
        logger.info("XGBoost keeps its model (%s)", error)
        return None
    ensemble = load_ensemble(spec, {f"m_{k}": v for k, v in arrays.items()}, "m")
    probes = probe_rows(ensemble, n_features, seed)
    expected = np.asarray(model.predict_proba(probes))
    order = "F" if expected.flags.f_contiguous and not expected.flags.c_contiguous else "C"
    walk = SmallTrees(ensemble, int(spec["n_trees"]), order)
    got = walk.predict_proba(probes)
    if (expected.shape, expected.dtype, expected.strides) != (got.shape, got.dtype, got.strides):
        return None
    if not np.array_equal(expected.view(np.uint32), got.view(np.uint32)):
        logger.warning("the numpy walk of a tree model differs from XGBoost: XGBoost kept")
        return None
    return walk


def probe_rows(ensemble: Any, n_features: int, seed: int = 0) -> np.ndarray:
    """``PROBE_ROWS`` float32 rows whose values sit on and beside the trees' split
    thresholds (and NaN, and random values), so the walk's comparisons, default
    directions and probability transforms meet XGBoost's on many paths."""
    rng = np.random.default_rng(seed)
    splits = ensemble.left != np.arange(len(ensemble.left))
    features, thresholds = ensemble.feature[splits], ensemble.threshold[splits]
    rows = rng.normal(0.0, 3.0, (PROBE_ROWS, n_features)).astype(np.float32)
    if len(thresholds):
        picked = rng.integers(0, len(thresholds), (PROBE_ROWS, n_features))
        on_feature = features[picked] == np.arange(n_features)
        value = thresholds[picked]
        beside = np.nextafter(value, np.where(rng.random(value.shape) < 0.5, -np.inf, np.inf))
        value = np.where(rng.random(value.shape) < 0.5, value, beside).astype(np.float32)
        # a threshold of the feature itself where one was drawn, else any threshold
        rows = np.where(on_feature | (rng.random(value.shape) < 0.5), value, rows)
    rows[rng.random(rows.shape) < 0.15] = np.nan
    rows[0] = np.nan
    return rows.astype(np.float32)


def proba(owner: Any, key: int, model: Any, values: np.ndarray) -> np.ndarray:
    """``model.predict_proba(values)``: by the walk of ``owner``'s ``key``-th model when
    :func:`prepare_small_inputs` prepared one and the call is small enough."""
    walks = owner.__dict__.get(CACHE)
    walk = walks.get(key) if walks else None
    if walk is not None and walk.fits(len(values)):
        return walk.predict_proba(values)
    return model.predict_proba(values)


def prepare_small_inputs(predictor: Any) -> dict[str, int]:
    """Build and check the walks of the predictor's XGBoost models (common, gate,
    severity); returns the number of walks kept per model. Models of other kinds are
    left alone."""
    from disease_pipeline.predictor.classifiers import (
        CumulativeOrdinalClassifier,
        TreeClassifier,
    )

    kept = {}
    for name in ("common_model", "gate_model", "severity_model"):
        classifier = getattr(predictor, name, None)
        if isinstance(classifier, TreeClassifier):
            models = {0: classifier.model}
        elif isinstance(classifier, CumulativeOrdinalClassifier):
            models = {k: m for k, m in enumerate(classifier.models) if not isinstance(m, float)}
        else:
            continue
        n_features = len(classifier.feature_names)
        walks = {key: build(model, n_features, seed=key) for key, model in models.items()}
        classifier.__dict__[CACHE] = walks
        kept[name] = sum(walk is not None for walk in walks.values())
    return kept
