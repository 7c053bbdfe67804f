"""Schema of ``active_learning`` (``parameters_active_learning.yml``)."""

from __future__ import annotations

from disease_pipeline.params.base import ParamsModel, PositiveFloat, PositiveInt, Share


class Weights(ParamsModel):
    """Weights of the informativeness score's parts."""

    entropy: float
    margin: float
    rare: float
    disagreement: float


class ActiveLearningParams(ParamsModel):
    """``active_learning``: which recent predictions clinicians confirm first."""

    size: PositiveInt
    window_days: PositiveFloat | None
    weights: Weights
    rare_threshold: Share
    max_share_per_code: Share
