"""Schema of ``drift`` (``parameters_drift.yml``)."""

from __future__ import annotations

from disease_pipeline.params.base import NonNegativeInt, ParamsModel, PositiveInt, Share


class DriftParams(ParamsModel):
    """``drift``: the training/test drift report."""

    psi_threshold: float
    psi_bins: PositiveInt
    psi_alpha: Share
    psi_min_observed: NonNegativeInt
    ks_alpha: Share
    evidently_max_features: PositiveInt
    evidently_drift_share: Share
    top_features_in_summary: PositiveInt
