"""Schema of ``common_model`` (``parameters_common_model.yml``)."""

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
from disease_pipeline.params.xgboost import GateXGBoostParams, XGBoostParams

#: the metrics a model selection may use (pipelines/common_model/training.py)
SelectionMetric = Literal[
    "macro_auroc", "log_loss", "top1_accuracy", "quadratic_kappa", "mean_abs_level_error"
]


class Imbalance(ParamsModel):
    """The imbalance strategies compared on validation."""

    strategies: list[Literal["class_weights", "smote", "none"]]
    min_improvement: float
    class_weight_power: float
    smote_target_ratio: float
    smote_k_neighbors: PositiveInt


class Tuning(ParamsModel):
    """The Optuna search."""

    n_trials: NonNegativeInt
    timeout_seconds: float
    search_space: dict[str, Pair]
    log_scale: list[str]


class Baseline(ParamsModel):
    """The logistic-regression baseline."""

    C: float
    max_iter: PositiveInt
    blas_threads: PositiveInt


class QueryRows(ParamsModel):
    """Query-style rows of the gate model."""

    enabled: bool
    registry_share: Share
    common_ratio: float
    match_missing: bool
    match_excluded: bool
    perturbed_like_common: bool


class Perturbation(ParamsModel):
    """One perturbed copy of the catalogue and how its patients are sampled
    (knowledge/knowledge_shift.py; an absent key keeps that function's default)."""

    replace_share: Share | None = None
    frequency_jitter: float | None = None
    age_shift: float | None = None
    extra_terms_mean: float | None = None
    absent_mean: float | None = None
    max_present: PositiveInt | None = None
    extra_by_usage: bool | None = None


class CommonQueryRows(ParamsModel):
    """Query-style rows of the common model (symptom-only patients of perturbed catalogues)."""

    enabled: bool
    seed: Seed
    per_disease: PositiveInt
    perturbations: list[Perturbation]


class Gate(ParamsModel):
    """The gate model P(rare)."""

    class_weight_power: float
    query_rows: QueryRows
    xgboost: GateXGBoostParams


class Knowledge(ParamsModel):
    """The knowledge scorer over the catalogue (knowledge/common_scorer.py)."""

    noise: Share
    evidence_weight: float
    partial_match: Share
    related_match: Share
    specificity_power: float
    max_ancestor_share: Share
    background_floor: float
    absent_floor: float
    prevalence_weight: float
    age_weight: float
    age_outside: float
    age_tail: Share
    sex_weight: float
    sex_floor: float
    season_weight: float
    season_floor: float
    measurement_weight: float
    acuity_sd: float
    measurement_outlier_share: Share
    measurement_outlier_width: float


class CommonModelParams(ParamsModel):
    """``common_model``: the common-disease classifier, the gate and the knowledge scorer."""

    seed: Seed
    validation_fraction: Share
    selection_max_rows: NonNegativeInt
    selection_metric: SelectionMetric
    imbalance: Imbalance
    xgboost: XGBoostParams
    tuning: Tuning
    baseline: Baseline
    query_rows: CommonQueryRows
    gate: Gate
    knowledge: Knowledge
