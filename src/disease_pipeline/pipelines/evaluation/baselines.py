"""The baselines the champion must beat, scored on the same test encounters.

- ``logistic``: the common_model pipeline's baseline recipe (median imputation,
  standardisation, multinomial logistic regression, ``params:common_model.baseline``),
  refitted here on the COMMON training cases (a seeded sample of at most
  ``baselines.logistic.max_rows``) because the common_model pipeline keeps only its
  validation figures.
- ``knowledge``: the catalogue's knowledge scorer alone
  (``disease_pipeline.knowledge.common_scorer.CommonKnowledgeScorer`` with the project's
  ``params:common_model.knowledge``), scored from the warehouse tables. Without that
  class in the code base the baseline is absent and its gate criteria report "not
  available".
- ``learned``: the champion's own learned common-disease model alone (calibrated, before
  the knowledge blend), to show what each half of the stacked differential contributes.

The table written (``model_output_baseline_predictions``) has ``encounter_id`` and one
probability column ``<baseline>__<code>`` per common disease the baseline ranks.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .scoring import split_tables

logger = logging.getLogger(__name__)

#: where the knowledge scorer lives (module, class)
KNOWLEDGE_SCORER = ("disease_pipeline.knowledge.common_scorer", "CommonKnowledgeScorer")


@dataclass
class FittedBaseline:
    """A fitted feature-row model: ``predict_proba`` over ``classes`` from ``features``."""

    classes: list[str]
    features: list[str]
    model: Any

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        proba = np.zeros((len(X), len(self.classes)))
        proba[:, self.model.classes_] = self.model.predict_proba(
            X[self.features].to_numpy(np.float32)
        )
        return proba


def fit_logistic_baseline(
    model_input_train: pd.DataFrame,
    feature_builder: Any,
    baseline: dict[str, Any],
    params: dict[str, Any],
) -> FittedBaseline:
    """The common_model baseline recipe refitted on the COMMON training cases."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    config = params["baselines"]["logistic"]
    train = model_input_train[model_input_train["label_category"] == "COMMON"]
    if len(train) > int(config["max_rows"]):
        train = train.sample(n=int(config["max_rows"]), random_state=int(params["seed"]))
    classes = sorted(str(c) for c in train["label_disease"].unique())
    features = list(feature_builder.feature_names)
    model = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=float(baseline["C"]), max_iter=int(baseline["max_iter"])),
    )
    target = train["label_disease"].astype(str).map({c: i for i, c in enumerate(classes)})
    # float32 like the common model's selection baseline: the same fit (test top-1 0.723
    # vs 0.721 in float64 on 20,000 rows) at 60 % of the CPU time; BLAS threads capped
    # (common_model.baseline.blas_threads, see common_model/selection.py)
    with threadpool_limits(limits=int(baseline.get("blas_threads", 1)), user_api="blas"):
        model.fit(train[features].to_numpy(np.float32), target.to_numpy())
    return FittedBaseline(classes, features, model)


def build_knowledge_baseline(knowledge: dict[str, Any]) -> dict[str, Any]:
    """``{"scorer": <the catalogue's knowledge scorer>, "note": ...}`` built with the
    project's knobs (``params:common_model.knowledge``); the scorer is None (and the note
    says why) while the code base has no such scorer."""
    module_name, class_name = KNOWLEDGE_SCORER
    try:
        scorer_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        note = f"{module_name}.{class_name} not found: no knowledge baseline"
        logger.warning("evaluation: %s", note)
        return {"scorer": None, "note": note}
    from disease_pipeline.knowledge.catalogue import load_common_diseases

    scorer = scorer_class.from_catalogue(load_common_diseases(), **dict(knowledge or {}))
    return {"scorer": scorer, "note": f"{module_name}.{class_name}"}


def softmax_rows(log_scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of log-scores (a log-posterior up to a constant per row)."""
    log_scores = np.asarray(log_scores, dtype=float)
    shifted = log_scores - log_scores.max(axis=1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=1, keepdims=True)


def score_baselines(
    model_input_test: pd.DataFrame,
    prm_evaluation_tables: dict[str, pd.DataFrame],
    logistic: FittedBaseline,
    knowledge: dict[str, Any],
    params: dict[str, Any],
    *,
    predictor: Any = None,
) -> pd.DataFrame:
    """Each baseline's probabilities for the test encounters (see the module docstring);
    ``knowledge`` is :func:`build_knowledge_baseline`'s output, ``predictor`` the champion
    whose learned model alone is the ``learned`` baseline (absent without it)."""
    ids = model_input_test["encounter_id"].astype(str).tolist()
    X = model_input_test.set_index(model_input_test["encounter_id"].astype(str))
    columns = {"encounter_id": ids}
    proba = logistic.predict_proba(X)
    columns |= {f"logistic__{c}": proba[:, j] for j, c in enumerate(logistic.classes)}
    scorer = knowledge.get("scorer")
    if scorer is not None:
        batch_size = int(params["batch_size"])
        parts = [
            softmax_rows(scorer.log_posterior(split_tables(prm_evaluation_tables, chunk)))
            for chunk in (ids[s : s + batch_size] for s in range(0, len(ids), batch_size))
        ]
        proba = np.vstack(parts) if parts else np.zeros((0, len(scorer.classes)))
        columns |= {f"knowledge__{c}": proba[:, j] for j, c in enumerate(scorer.classes)}
    model = getattr(predictor, "common_model", None)
    if model is not None:
        proba = model.predict_proba(X)
        calibrator = getattr(predictor, "calibrators", {}).get("common")
        proba = proba if calibrator is None else calibrator.transform(proba)
        columns |= {f"learned__{c}": proba[:, j] for j, c in enumerate(model.classes_)}
    return pd.DataFrame(columns)


def baseline_names(frame: pd.DataFrame) -> list[str]:
    """Baselines present in a ``model_output_baseline_predictions`` table."""
    return sorted({c.split("__", 1)[0] for c in frame.columns if "__" in c})


def baseline_probabilities(frame: pd.DataFrame, name: str) -> tuple[list[str], np.ndarray]:
    """(classes, (n, k) probabilities) of one baseline of the table."""
    prefix = f"{name}__"
    columns = [c for c in frame.columns if c.startswith(prefix)]
    return [c.removeprefix(prefix) for c in columns], frame[columns].to_numpy(float)
