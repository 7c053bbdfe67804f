"""XGBoost settings shared by the schemas of the model blocks.

Each block names the XGBoost parameters it sets (required); a run may add the model
knobs of :class:`_XGBoostKnobs` (``--params common_model.xgboost.gamma=1``), which are
handed to ``XGBClassifier`` like the others. Anything else (a misspelt name, a
parameter the code sets itself such as ``random_state``) is refused.
"""

from __future__ import annotations

from typing import Literal

from disease_pipeline.params.base import (
    ParamsModel,
    PositiveFloat,
    PositiveInt,
    Share,
    optional_key,
)

TreeMethod = Literal["hist", "approx", "exact", "auto"]


class _XGBoostKnobs(ParamsModel):
    """XGBoost model knobs a block may leave out (XGBoost's default then applies)."""

    min_child_weight: float = optional_key()
    subsample: Share = optional_key()
    reg_lambda: float = optional_key()
    reg_alpha: float = optional_key()
    gamma: float = optional_key()
    max_delta_step: float = optional_key()
    colsample_bylevel: Share = optional_key()
    colsample_bynode: Share = optional_key()
    max_leaves: int = optional_key()
    grow_policy: Literal["depthwise", "lossguide"] = optional_key()


class GateXGBoostParams(_XGBoostKnobs):
    """XGBoost parameters of the gate model P(rare) (early stopping on validation)."""

    n_estimators: PositiveInt
    early_stopping_rounds: PositiveInt
    max_depth: PositiveInt
    learning_rate: PositiveFloat
    min_child_weight: float
    subsample: Share
    colsample_bytree: Share
    max_bin: PositiveInt
    tree_method: TreeMethod
    n_jobs: PositiveInt


class XGBoostParams(GateXGBoostParams):
    """XGBoost parameters of a model fit: the gate's, with the L2 penalty set."""

    reg_lambda: float


class QuickXGBoostParams(_XGBoostKnobs):
    """The quick refit of evaluation's cross-validation (threads: ``evaluation.n_jobs``)."""

    n_estimators: PositiveInt
    max_depth: PositiveInt
    learning_rate: PositiveFloat
    max_bin: PositiveInt
    colsample_bytree: Share
    tree_method: TreeMethod
