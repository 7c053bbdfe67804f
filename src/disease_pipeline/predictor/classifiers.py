"""Fitted classifiers saved in ``06_models``: named feature columns in, string classes out.

Every model has ``feature_names``, ``classes_`` (codes or levels, not integers) and
``predict_proba(X)`` over a DataFrame holding (at least) the ``feature_names`` columns,
as docs/data_contracts.md asks. :class:`TreeClassifier` wraps one XGBoost model (its
``model`` attribute, so SHAP's ``TreeExplainer`` finds it) and, when it was trained on
SMOTE-resampled data, the medians that fill the gaps SMOTE cannot take.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xgboost as xgb

from disease_pipeline.predictor import small_trees
from disease_pipeline.predictor.probabilities import ordinal_probabilities


@dataclass
class NamedFeatureModel:
    """Base: turns a DataFrame (or an array in ``feature_names`` order) into a float matrix."""

    feature_names: list[str]
    classes_: np.ndarray

    def matrix(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Float32 matrix of the model's feature columns, in training order.

        Raises:
            ValueError: a feature column is missing, or an array has the wrong width.
        """
        if isinstance(X, pd.DataFrame):
            if list(X.columns) == self.feature_names:
                values = X.to_numpy(dtype=np.float32)
            else:
                positions = X.columns.get_indexer(self.feature_names)
                if (positions < 0).any():
                    missing = [
                        c for c, p in zip(self.feature_names, positions, strict=True) if p < 0
                    ]
                    raise ValueError(
                        f"feature matrix lacks {len(missing)} model feature column(s), "
                        f"e.g. {missing[:5]}"
                    )
                values = X.iloc[:, positions].to_numpy(dtype=np.float32)
        else:
            values = np.asarray(X, dtype=np.float32)
        if values.ndim != 2 or values.shape[1] != len(self.feature_names):
            raise ValueError(
                f"feature matrix has shape {values.shape}; expected (n, {len(self.feature_names)})"
            )
        return values

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Most probable class of each row."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


@dataclass
class TreeClassifier(NamedFeatureModel):
    """An XGBoost classifier with string classes (binary or multiclass)."""

    model: xgb.XGBClassifier = field(repr=False, default=None)
    #: per-feature fill values (medians) when the trees were trained on SMOTE output
    fill_values: np.ndarray | None = field(repr=False, default=None)
    #: per-output factors undoing the class weights / resampling of training (or None)
    prior_factor: np.ndarray | None = field(repr=False, default=None)
    #: positions in ``classes_`` of the model's outputs when some classes had no training
    #: row (those get probability 0); None: one output per class, in order
    output_columns: np.ndarray | None = field(repr=False, default=None)

    def inputs(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The matrix the trees see (gaps filled when the model was trained with SMOTE)."""
        values = self.matrix(X)
        if self.fill_values is not None:
            values = np.where(np.isnan(values), self.fill_values, values).astype(np.float32)
        return values

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """(n, n_classes) class probabilities, columns in ``classes_`` order, corrected
        back to the training class balance when the model was fitted re-weighted."""
        proba = small_trees.proba(self, 0, self.model, self.inputs(X))
        if self.prior_factor is not None:
            proba = proba * self.prior_factor
            proba = proba / proba.sum(axis=1, keepdims=True)
        return self._expand(proba)

    def _expand(self, values: np.ndarray) -> np.ndarray:
        """Place the model's output columns (axis 1) at their ``classes_`` positions."""
        if self.output_columns is None:
            return values
        full = np.zeros((values.shape[0], len(self.classes_), *values.shape[2:]))
        full[:, self.output_columns] = values
        return full

    def contributions(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Exact TreeSHAP contributions in log-odds, shape (n, n_classes, n_features + 1);
        the last column is the bias. A binary model's class 0 gets the negated values."""
        booster = self.model.get_booster()
        matrix = xgb.DMatrix(self.inputs(X), nthread=int(self.model.n_jobs or 1))
        values = booster.predict(matrix, pred_contribs=True)
        if values.ndim == 2:
            values = np.stack([-values, values], axis=1)
        return self._expand(values)

    def class_contributions(self, X: pd.DataFrame | np.ndarray, classes: np.ndarray) -> np.ndarray:
        """TreeSHAP contributions of row i to class ``classes[i]`` (positions in
        ``classes_``), shape (n, n_features + 1): equal to
        ``contributions(X)[i, classes[i]]`` but computed over that class's trees only
        (one booster per class), so a K-class model costs ~1/K of it."""
        values = self.inputs(X)
        classes = np.asarray(classes, dtype=np.int64)
        if self.model.n_classes_ <= 2:
            return self.contributions(values)[np.arange(len(values)), classes]
        out = np.zeros((len(values), values.shape[1] + 1), dtype=np.float32)
        boosters = self._class_boosters()
        outputs = (
            classes
            if self.output_columns is None
            else np.array([_position(self.output_columns, c) for c in classes])
        )
        for output in np.unique(outputs[outputs >= 0]):
            rows = np.flatnonzero(outputs == output)
            matrix = xgb.DMatrix(values[rows], nthread=int(self.model.n_jobs or 1))
            out[rows] = boosters[int(output)].predict(matrix, pred_contribs=True)
        return out

    def _class_boosters(self) -> list[xgb.Booster]:
        """One single-output booster per model output, built once per process."""
        cached = self.__dict__.get("_per_class")
        if cached is None:
            cached = split_by_class(self.model.get_booster())
            self.__dict__["_per_class"] = cached
        return cached

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_per_class", None)  # rebuilt on demand; keeps the pickle small
        state.pop(small_trees.CACHE, None)  # built by prepare_small_inputs, per process
        return state

    def set_threads(self, n_jobs: int) -> None:
        """Threads used at prediction time (1 is fastest for a single patient)."""
        self.model.set_params(n_jobs=n_jobs)
        for booster in self.__dict__.get("_per_class") or []:
            booster.set_param({"nthread": n_jobs})


def _position(columns: np.ndarray, value: int) -> int:
    hits = np.flatnonzero(np.asarray(columns) == value)
    return int(hits[0]) if len(hits) else -1


def split_by_class(booster: xgb.Booster) -> list[xgb.Booster]:
    """A ``multi:softprob`` booster as one regression booster per class: the trees of
    class k (``tree_info == k``) with the base margin of class k. Class k's margin,
    and so its TreeSHAP contributions, only depend on these trees."""
    raw = json.loads(booster.save_raw("json"))
    learner = raw["learner"]
    model = learner["gradient_booster"]["model"]
    n_classes = int(learner["learner_model_param"]["num_class"])
    base = json.loads(learner["learner_model_param"]["base_score"].replace("E", "e"))
    base = base if isinstance(base, list) else [base] * n_classes
    info = np.asarray(model["tree_info"])
    boosters = []
    for k in range(n_classes):
        trees = [dict(model["trees"][i], id=j) for j, i in enumerate(np.flatnonzero(info == k))]
        single = {
            **raw,
            "learner": {
                **learner,
                "learner_model_param": {
                    **learner["learner_model_param"],
                    "base_score": f"[{float(base[k]):.9E}]",
                    "num_class": "0",
                },
                "objective": {"name": "reg:squarederror", "reg_loss_param": {}},
                "gradient_booster": {
                    **learner["gradient_booster"],
                    "model": {
                        **model,
                        "trees": trees,
                        "tree_info": [0] * len(trees),
                        "iteration_indptr": list(range(len(trees) + 1)),
                        "gbtree_model_param": {
                            **model["gbtree_model_param"],
                            "num_trees": str(len(trees)),
                        },
                    },
                },
            },
        }
        part = xgb.Booster()
        part.load_model(bytearray(json.dumps(single).encode()))
        part.set_param({"nthread": 1})
        boosters.append(part)
    return boosters


@dataclass
class ConstantClassifier(NamedFeatureModel):
    """Predicts fixed class probabilities (a prior); used when a class is absent in training."""

    prior: np.ndarray = field(default=None)

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The prior, repeated for every row."""
        n = len(self.matrix(X))
        return np.tile(self.prior, (n, 1))

    def contributions(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """All-zero contributions (the bias carries everything)."""
        n = len(self.matrix(X))
        out = np.zeros((n, len(self.classes_), len(self.feature_names) + 1))
        out[:, :, -1] = np.log(np.clip(self.prior, 1e-12, None))
        return out

    def class_contributions(self, X: pd.DataFrame | np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Row i's contributions to class ``classes[i]`` (all zero but the bias)."""
        return self.contributions(X)[np.arange(len(classes)), np.asarray(classes, dtype=int)]

    def set_threads(self, n_jobs: int) -> None:
        """Nothing to set."""


@dataclass
class CumulativeOrdinalClassifier(NamedFeatureModel):
    """Ordinal classifier (Frank & Hall, 2001): one binary XGBoost model per threshold
    estimates P(y > level k); class probabilities are the differences of these
    (made monotone first), so the order low < moderate < high < critical is used."""

    #: one model per threshold, or a constant P(y > k) when training had one side only
    models: list[xgb.XGBClassifier | float] = field(repr=False, default_factory=list)

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """(n, n_levels) level probabilities."""
        values = self.matrix(X)
        above = np.column_stack(
            [
                np.full(len(values), m)
                if isinstance(m, float)
                else small_trees.proba(self, k, m, values)[:, 1]
                for k, m in enumerate(self.models)
            ]
        )
        return ordinal_probabilities(above, len(self.classes_))

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop(small_trees.CACHE, None)  # built by prepare_small_inputs, per process
        return state

    def set_threads(self, n_jobs: int) -> None:
        """Threads used at prediction time."""
        for model in self.models:
            if not isinstance(model, float):
                model.set_params(n_jobs=n_jobs)
