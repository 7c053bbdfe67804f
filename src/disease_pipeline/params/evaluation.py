"""Schema of ``evaluation`` (``parameters_evaluation.yml``)."""

from __future__ import annotations

from typing import Literal

from disease_pipeline.params.base import (
    NonNegativeInt,
    ParamsModel,
    PositiveInt,
    Seed,
    Share,
    optional_key,
)
from disease_pipeline.params.xgboost import QuickXGBoostParams
from disease_pipeline.records import PatientRecord


class Intervals(ParamsModel):
    """Percentile bootstrap intervals."""

    n_boot: PositiveInt
    level: Share
    top_k: list[PositiveInt]


class LogisticBaseline(ParamsModel):
    """The logistic baseline's refit."""

    max_rows: PositiveInt


class Baselines(ParamsModel):
    """Baselines the champion must beat."""

    logistic: LogisticBaseline


class RegistryProtocol(ParamsModel):
    """The rare_model pipeline's figure the gate reads."""

    protocol: str
    method: str
    baseline: str
    metric: str


class RegistryCheck(ParamsModel):
    """Registry phenopackets through the served path."""

    enabled: bool
    threshold: Share
    top_k: PositiveInt
    max_cases: PositiveInt | None


class RecordingCheck(ParamsModel):
    """Catalogue-sampled common patients sent as sampled, without their age and with
    ``negatives`` more findings recorded absent."""

    enabled: bool
    n_per_disease: PositiveInt
    seed: int
    threshold: Share
    top_k: PositiveInt
    negatives: PositiveInt


class Subgroups(ParamsModel):
    """Subgroups by age band and sex."""

    age_column: str
    sex_columns: dict[str, str]
    age_edges: list[float]
    min_group_size: NonNegativeInt


class CrossValidation(ParamsModel):
    """The quick cross-validation refits."""

    n_folds: PositiveInt
    max_rows: PositiveInt
    xgboost: QuickXGBoostParams


class Robustness(ParamsModel):
    """Scoring again with recorded inputs dropped."""

    missing_rate: Share


class Shap(ParamsModel):
    """SHAP explanations."""

    sample_size: PositiveInt
    timing_patients: PositiveInt
    top_features: PositiveInt


class Latency(ParamsModel):
    """The latency measurement, on one typical patient record."""

    repeats: PositiveInt
    batch_size: PositiveInt
    record: PatientRecord


class Plots(ParamsModel):
    """ROC/PR plots."""

    max_classes: PositiveInt


class SimulatorCard(ParamsModel):
    """What the model card says about the simulated data."""

    summary: str
    assumptions: list[str]


class ModelCard(ParamsModel):
    """The model card's texts."""

    name: str
    intended_use: str
    simulator: SimulatorCard
    limits: list[str]


class Criterion(ParamsModel):
    """One acceptance criterion (pipelines/evaluation/gate.py)."""

    metric: str
    op: Literal[">=", "<="]
    threshold: float
    bound: Literal["value", "interval"] = optional_key()  # the gate's default: "value"
    when_missing: Literal["fail", "report"] = optional_key()  # the gate's default: "fail"
    note: str = optional_key()


class Gate(ParamsModel):
    """The acceptance gate."""

    criteria: dict[str, Criterion]


class EvaluationParams(ParamsModel):
    """``evaluation``: figures of the test split and the acceptance gate."""

    seed: Seed
    n_jobs: PositiveInt
    scoring_top_k: PositiveInt
    batch_size: PositiveInt
    intervals: Intervals
    baselines: Baselines
    registry_protocol: RegistryProtocol
    registry_check: RegistryCheck
    recording_check: RecordingCheck
    top_k: list[PositiveInt]
    ece_bins: PositiveInt
    target_sensitivity: Share
    temporal_periods: PositiveInt
    subgroups: Subgroups
    cv: CrossValidation
    robustness: Robustness
    shap: Shap
    latency: Latency
    plots: Plots
    model_card: ModelCard
    gate: Gate
