"""The classifiers, calibrators and knowledge blend of a package, in numpy.

Ports of ``predictor.classifiers`` (the boosters through :mod:`disease_pipeline.edge.trees`,
bit-identical to XGBoost — the ``exact`` engine — or through onnxruntime's tree
ensembles, within about 1e-7 of XGBoost — the ``onnx`` engine; and what the wrappers
add around them),
``predictor.calibrators`` (``transform`` only: the intervals need scipy's inverse
incomplete beta and are not part of the edge answer) and
``predictor.knowledge_blend.KnowledgeBlend.combine``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from disease_pipeline.edge.numeric import expit, log_softmax, logit, logsumexp, softmax
from disease_pipeline.edge.package import PackageError
from disease_pipeline.edge.trees import TreeEnsemble, load_ensemble, predict_proba
from disease_pipeline.predictor.probabilities import (
    EPS,
    normalise,
    ordinal_probabilities,
    protect,
)

#: how the boosters are evaluated: ``exact`` walks ``trees.npz`` in numpy (XGBoost's
#: margins and probabilities bit for bit, the default); ``onnx`` runs the package's
#: ``.onnx`` tree ensembles in onnxruntime (float32 sums in another order)
ENGINES = ("exact", "onnx")
DEFAULT_ENGINE = "exact"
LOG_FLOOR = np.log(1e-6)
#: modality patterns, by (vitals measured, labs measured) (``feature_knowledge.PATTERNS``)
PATTERNS = {
    (False, False): "symptoms_only",
    (True, False): "vitals",
    (False, True): "labs",
    (True, True): "all",
}


class Booster:
    """One XGBoost booster of a package, evaluated by ``engine``: ``predict_proba``
    gives XGBoost's ``predict_proba`` (float32)."""

    def __init__(
        self,
        spec: dict[str, Any],
        trees: dict[str, np.ndarray],
        sessions: Mapping[str, Any],
        engine: str,
    ) -> None:
        self.ensemble: TreeEnsemble | None = None
        self.session = None
        if engine == "exact":
            self.ensemble = load_ensemble(spec["trees"], trees, spec["trees"]["prefix"])
        elif spec.get("onnx") in sessions:
            self.session = sessions[spec["onnx"]]
        else:
            raise PackageError(
                f"no ONNX file for the booster {spec['trees']['prefix']!r} "
                "(exported without them): re-export the package or use the exact engine"
            )

    def predict_proba(self, values: np.ndarray) -> np.ndarray:
        if self.ensemble is not None:
            return predict_proba(self.ensemble, values)
        return np.asarray(self.session.run(["probabilities"], {"X": values})[0])


class Classifier:
    """One model of ``config["models"]``: ``predict_proba(rows)`` over its classes, its
    boosters evaluated by ``engine`` (:data:`ENGINES`; ``sessions``: the package's ONNX
    sessions by file name, needed by the ``onnx`` engine only)."""

    def __init__(  # noqa: PLR0913 - the package's parts a model reads
        self,
        name: str,
        config: dict,
        arrays: dict[str, np.ndarray],
        trees: dict[str, np.ndarray],
        *,
        sessions: Mapping[str, Any] | None = None,
        engine: str = DEFAULT_ENGINE,
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine {engine!r}: one of {ENGINES}")
        sessions = sessions or {}
        self.config = config
        self.classes = list(config["classes"])
        self.features = arrays[f"{name}_features"]
        self.kind = config["kind"]
        self.extra = {
            key: arrays.get(f"{name}_{key}")
            for key in ("fill_values", "prior_factor", "output_columns", "prior")
        }
        self.boosters: list[Booster | None] = []
        if self.kind == "tree":
            self.boosters = [Booster(config, trees, sessions, engine)]
        elif self.kind == "ordinal":
            self.boosters = [
                Booster(t, trees, sessions, engine) if "trees" in t else None
                for t in config["thresholds"]
            ]

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        """(n, n_classes) probabilities for feature rows (the full feature vectors)."""
        values = np.asarray(rows[:, self.features], dtype=np.float32)
        if self.kind == "constant":
            return np.tile(self.extra["prior"], (len(values), 1))
        if self.kind == "ordinal":
            return self._ordinal(values)
        fill = self.extra["fill_values"]
        if fill is not None:
            values = np.where(np.isnan(values), fill, values).astype(np.float32)
        proba = self.boosters[0].predict_proba(values)
        factor = self.extra["prior_factor"]
        if factor is not None:
            proba = proba * factor
            proba = proba / proba.sum(axis=1, keepdims=True)
        columns = self.extra["output_columns"]
        if columns is not None:
            full = np.zeros((proba.shape[0], len(self.classes)))
            full[:, columns] = proba
            return full
        return proba

    def _ordinal(self, values: np.ndarray) -> np.ndarray:
        """``CumulativeOrdinalClassifier.predict_proba``."""
        above = np.column_stack(
            [
                np.full(len(values), t["constant"])
                if booster is None
                else booster.predict_proba(values)[:, 1]
                for t, booster in zip(self.config["thresholds"], self.boosters, strict=True)
            ]
        )
        return ordinal_probabilities(above, len(self.classes))


def calibrate(
    name: str, config: dict, arrays: dict[str, np.ndarray], proba: np.ndarray
) -> np.ndarray:
    """``Calibrator.transform`` of the calibrator ``name`` (``config["calibrators"][name]``)."""
    proba = np.asarray(proba, dtype=float)
    method = config["method"]
    if method == "none":
        return proba
    if method == "isotonic":
        columns = []
        for k, mapped in enumerate(config["mapped"]):
            if not mapped:
                columns.append(proba[:, k])
                continue
            x, y = arrays[f"{name}_iso{k}_x"], arrays[f"{name}_iso{k}_y"]
            low, high = arrays[f"{name}_iso{k}_range"]
            values = np.clip(proba[:, k].astype(x.dtype, copy=False), low, high)
            columns.append(np.interp(values, x, y).astype(values.dtype, copy=False))
        return normalise(np.column_stack(columns), proba)
    if method == "platt":
        scores = logit(np.clip(proba, EPS, 1 - EPS))
        return normalise(
            expit(scores * arrays[f"{name}_slope"] + arrays[f"{name}_intercept"]), proba
        )
    if method == "temperature":
        scaled = softmax(np.log(np.clip(proba, EPS, 1.0)) / config["temperature"], axis=1)
        return normalise(scaled, proba)
    raise ValueError(f"calibrator {name}: unknown method {method!r}")


def modality_pattern(names: list[str], rows: np.ndarray) -> list[str]:
    """Pattern of each row from ``measured_vitals``/``measured_labs`` (``all`` without them)."""
    if "measured_vitals" not in names or "measured_labs" not in names:
        return ["all"] * len(rows)
    vitals = rows[:, names.index("measured_vitals")] > 0.5
    labs = rows[:, names.index("measured_labs")] > 0.5
    return [PATTERNS[bool(v), bool(b)] for v, b in zip(vitals, labs, strict=True)]


def blend(
    config: dict[str, Any], names: list[str], rows: np.ndarray, proba: np.ndarray
) -> np.ndarray:
    """``KnowledgeBlend.combine``: knowledge and model probabilities per modality pattern."""
    classes = [*config["model_classes"], *config["extra"]]
    columns = ["knowledge_" + c.replace(".", "_") for c in classes]
    position = {n: j for j, n in enumerate(names)}
    if any(c not in position for c in columns):
        return np.hstack([proba, np.zeros((len(proba), len(config["extra"])))])
    K = rows[:, [position[c] for c in columns]].astype(float)
    K = K - logsumexp(K, axis=1, keepdims=True)
    log_p = np.maximum(np.log(np.maximum(proba, 1e-300)), LOG_FLOOR)
    if config["extra"]:
        extra = K[:, len(config["model_classes"]) :]
        unseen = np.clip(np.exp(extra).sum(axis=1, keepdims=True), 0.0, 1.0 - 1e-9)
        log_p = np.hstack([log_p + np.log1p(-unseen), extra])
    patterns = np.asarray(modality_pattern(names, rows))
    out = np.exp(log_p)
    for pattern, (alpha, beta) in config["weights"].items():
        chosen = patterns == pattern
        if chosen.any():
            out[chosen] = np.exp(log_softmax(alpha * K[chosen] + beta * log_p[chosen], axis=1))
    # must-not-miss diseases: never below the knowledge posterior on the sparse patterns
    protected = [classes.index(c) for c in config.get("protected", []) if c in classes]
    rows = np.isin(patterns, config.get("protected_patterns", []))
    if protected and rows.any():
        out[rows] = protect(out[rows], np.exp(K[rows]), protected)
    return out
