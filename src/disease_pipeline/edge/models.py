"""The classifiers, calibrators and knowledge blend of a package, in numpy.

Ports of ``predictor.classifiers`` (the boosters through :mod:`disease_pipeline.edge.trees`,
bit-identical to XGBoost, and what the wrappers add around them),
``predictor.calibrators`` (``transform`` only: the intervals need scipy's inverse
incomplete beta and are not part of the edge answer) and
``predictor.knowledge_blend.KnowledgeBlend.combine``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from disease_pipeline.edge.numeric import expit, log_softmax, logit, logsumexp, softmax
from disease_pipeline.edge.trees import TreeEnsemble, load_ensemble, predict_proba
from disease_pipeline.predictor.probabilities import EPS, normalise, ordinal_probabilities

LOG_FLOOR = np.log(1e-6)
#: modality patterns, by (vitals measured, labs measured) (``feature_knowledge.PATTERNS``)
PATTERNS = {
    (False, False): "symptoms_only",
    (True, False): "vitals",
    (False, True): "labs",
    (True, True): "all",
}


class Classifier:
    """One model of ``config["models"]``: ``predict_proba(rows)`` over its classes."""

    def __init__(
        self, name: str, config: dict, arrays: dict[str, np.ndarray], trees: dict[str, np.ndarray]
    ) -> None:
        self.config = config
        self.classes = list(config["classes"])
        self.features = arrays[f"{name}_features"]
        self.kind = config["kind"]
        self.extra = {
            key: arrays.get(f"{name}_{key}")
            for key in ("fill_values", "prior_factor", "output_columns", "prior")
        }
        self.ensembles: list[TreeEnsemble | None] = []
        if self.kind == "tree":
            spec = config["trees"]
            self.ensembles = [load_ensemble(spec, trees, spec["prefix"])]
        elif self.kind == "ordinal":
            self.ensembles = [
                load_ensemble(t["trees"], trees, t["trees"]["prefix"]) if "trees" in t else None
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
        proba = predict_proba(self.ensembles[0], values)
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
                if ensemble is None
                else predict_proba(ensemble, values)[:, 1]
                for t, ensemble in zip(self.config["thresholds"], self.ensembles, strict=True)
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
    return out
