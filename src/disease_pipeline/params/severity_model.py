"""Schema of ``severity_model`` (``parameters_severity_model.yml``)."""

from __future__ import annotations

from typing import Literal

from disease_pipeline.params.base import NonNegativeInt, ParamsModel, Seed, Share
from disease_pipeline.params.common_model import SelectionMetric
from disease_pipeline.params.xgboost import XGBoostParams

Candidate = Literal["multiclass", "cumulative"]


class SeverityModelParams(ParamsModel):
    """``severity_model``: the severity classifier."""

    seed: Seed
    validation_fraction: Share
    selection_max_rows: NonNegativeInt
    candidates: list[Candidate]
    choice: Literal["auto", "multiclass", "cumulative"]
    selection_metric: SelectionMetric
    class_weight_power: float
    xgboost: XGBoostParams
