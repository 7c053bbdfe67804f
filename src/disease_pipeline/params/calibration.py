"""Schema of ``calibration`` (``parameters_calibration.yml``)."""

from __future__ import annotations

from typing import Literal

from disease_pipeline.params.base import (
    NonNegativeInt,
    Pair,
    ParamsModel,
    PositiveInt,
    Seed,
    Share,
)

#: predictor.calibrators.METHODS
Method = Literal["none", "isotonic", "platt", "temperature"]


class CalibratedModel(ParamsModel):
    """One calibrated model (common, gate, severity)."""

    title: str
    label_column: str
    ece: Literal["top_label", "classwise"]


class ModalityShares(ParamsModel):
    """A value per modality pattern."""

    symptoms_only: Share
    vitals: Share
    labs: Share
    all: Share


class ModalityWeights(ParamsModel):
    """An (α, β) pair per modality pattern."""

    symptoms_only: Pair
    vitals: Pair
    labs: Pair
    all: Pair


class KnowledgeBlend(ParamsModel):
    """The knowledge + learned-model blend (predictor/knowledge_blend.py)."""

    grid: list[float]
    min_rows: NonNegativeInt
    top3_tolerance: float
    scales: list[float]
    min_knowledge_share: ModalityShares
    default_weights: ModalityWeights
    protect_must_not_miss: list[Literal["symptoms_only", "vitals", "labs", "all"]]


class MustNotMiss(ParamsModel):
    """Can't-miss diagnoses of the catalogue."""

    floor: Share
    low_cap: Share


class CalibrationParams(ParamsModel):
    """``calibration``: calibrators, the knowledge blend and the served differential."""

    seed: Seed
    methods: list[Method]
    n_folds: PositiveInt
    n_bins: PositiveInt
    min_rows: NonNegativeInt
    interval_level: Share
    explain_top_n: PositiveInt
    predict_threads: PositiveInt
    models: dict[str, CalibratedModel]
    knowledge_blend: KnowledgeBlend
    must_not_miss: MustNotMiss
    rare_rank_floor: Share
