"""Schema of ``monitor`` (``parameters_monitor.yml``)."""

from __future__ import annotations

from disease_pipeline.params.base import (
    NonNegativeInt,
    ParamsModel,
    PositiveFloat,
    PositiveInt,
    Seed,
    Share,
)


class MonitorParams(ParamsModel):
    """``monitor``: drift and live performance of a window of predictions."""

    window_end: str | None
    window_days: PositiveFloat
    psi_threshold: float
    psi_bins: PositiveInt
    psi_alpha: Share
    psi_min_observed: NonNegativeInt
    ks_alpha: Share
    min_rows: NonNegativeInt
    evidently_max_features: PositiveInt
    watched_features: list[str]
    evidently_drift_share: Share
    max_rows: PositiveInt
    modality_max_rows: PositiveInt
    evidently_max_rows: PositiveInt
    calendar_features: list[str]
    top_features: PositiveInt
    top_k: PositiveInt
    n_boot: PositiveInt
    seed: Seed
    ece_bins: PositiveInt
    age_bands: list[float]
    min_subgroup_n: NonNegativeInt
    performance_drop: float
    performance_min_labelled: NonNegativeInt
    subgroup_gap: float
    latency_p95_ms: float
