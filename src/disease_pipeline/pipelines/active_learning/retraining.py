"""The train pipeline's model stages on a labelled set, in memory, for retraining
experiments (``scripts/active_learning_simulation.py``).

:class:`Trainer` runs the nodes ``kedro run --pipeline=train`` runs between the features
and the predictor: the common model's selection once (``split_common_rows``,
``compare_imbalance_strategies``, ``tune_common_model``, with the configured
parameters), then for every labelled set ``fit_common_model`` (with the catalogue's
query-style rows of its diseases), ``fit_gate_model`` (with the registry's query rows),
``calibrate_model`` for both and ``fit_blend`` on a fixed calibration set, and
``assemble_predictor``. Left out: the rare model (the differential keeps the unspecified
rare slot) and the severity model (a constant) — an experiment on diagnoses needs
neither. :func:`answers` and :func:`hits` score a predictor the way the
service answers (no explanation).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.core.levels import SEVERITY_LEVELS
from disease_pipeline.pipelines.calibration.nodes import (
    assemble_predictor,
    calibrate_model,
    fit_blend,
)
from disease_pipeline.pipelines.common_model.nodes import (
    compare_imbalance_strategies,
    fit_common_model,
    fit_gate_model,
    split_common_rows,
    tune_common_model,
)
from disease_pipeline.pipelines.common_model.query_rows import (
    build_common_query_rows,
    build_gate_query_rows,
)
from disease_pipeline.predictor.bundle import DiseasePredictor
from disease_pipeline.predictor.calibrators import Calibrator
from disease_pipeline.predictor.classifiers import ConstantClassifier


class Trainer:
    """Trains predictors on labelled feature rows (``model_input_*`` frames); the model
    selection of :meth:`select` is kept for every later :meth:`train`."""

    def __init__(
        self,
        feature_builder: Any,
        registry_cases: pd.DataFrame,
        calibration_rows: pd.DataFrame,
        params: dict[str, Any],
    ) -> None:
        """``params``: the ``common_model`` and ``calibration`` parameters (by key)."""
        self.builder = feature_builder
        self.params = params
        self.calibration_rows = calibration_rows
        self.query_rows = build_gate_query_rows(
            registry_cases, feature_builder, params["common_model"]
        )
        self.selection: tuple[dict[str, Any], dict[str, Any]] | None = None
        #: the common model's query rows per set of trained diseases (built once each)
        self.common_query_rows: dict[frozenset[str], pd.DataFrame] = {}

    def select(self, labelled: pd.DataFrame) -> dict[str, Any]:
        """The common model's selection (imbalance strategy, Optuna) on ``labelled``;
        returns what was chosen."""
        params = self.params["common_model"]
        fit, validation = split_common_rows(labelled, params)
        imbalance = compare_imbalance_strategies(fit, validation, params)
        tuning = tune_common_model(fit, validation, imbalance, params)
        self.selection = (imbalance, tuning)
        return {"imbalance": imbalance["chosen"], "tuning": tuning["chosen"], **tuning["params"]}

    def train(self, labelled: pd.DataFrame) -> DiseasePredictor:
        """Common and gate models, their calibrators and the knowledge blend, assembled."""
        import matplotlib.pyplot as plt

        if self.selection is None:
            raise RuntimeError("Trainer.select must run before Trainer.train")
        common_params, calibration = self.params["common_model"], self.params["calibration"]
        trained = frozenset(labelled.loc[labelled["label_category"] == "COMMON", "label_disease"])
        if trained not in self.common_query_rows:
            self.common_query_rows[trained] = build_common_query_rows(
                labelled, self.builder, common_params
            )
        query_rows = self.common_query_rows[trained]
        common = fit_common_model(labelled, *self.selection, common_params, query_rows)
        gate, _ = fit_gate_model(labelled, common_params, self.query_rows)
        calibrators = {"severity": Calibrator()}
        for name, model in (("common", common), ("gate", gate)):
            calibrators[name], _, figure = calibrate_model(
                self.calibration_rows, model, calibration, calibration["models"][name]
            )
            plt.close(figure)
        blend, _ = fit_blend(
            self.calibration_rows,
            common,
            calibrators["common"],
            self.builder,
            calibration["knowledge_blend"],
        )
        levels = np.asarray(SEVERITY_LEVELS)
        severity = ConstantClassifier([], levels, prior=np.full(len(levels), 1 / len(levels)))
        return assemble_predictor(
            self.builder,
            common,
            gate,
            severity,
            calibrators,
            params=calibration,
            knowledge_blend=blend,
        )


def answers(predictor: Any, rows: pd.DataFrame, top_k: int) -> list[dict[str, Any]]:
    """The predictor's answers for feature rows (one per row, keyed by ``encounter_id``),
    as the service gives them, without explanation."""
    X = rows.set_index(rows["encounter_id"].astype(str))
    return predictor.predict_features(X, top_k=top_k, explain=False)


def hits(
    outputs: list[dict[str, Any]], labels: np.ndarray, top_k: tuple[int, ...] = (1, 3)
) -> dict[int, np.ndarray]:
    """``k → 0/1`` hits: is ``labels[i]`` among the first k codes of answer i's differential."""
    ranked = [[entry["code"] for entry in output["differential"]] for output in outputs]
    return {
        k: np.array([label in codes[:k] for label, codes in zip(labels, ranked, strict=True)])
        for k in top_k
    }
