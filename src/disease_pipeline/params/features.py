"""Schema of ``features`` (``parameters_features.yml``)."""

from __future__ import annotations

from typing import Literal

from disease_pipeline.params.base import (
    NonNegativeInt,
    ParamsModel,
    PositiveInt,
    Seed,
    Share,
    StrOrStrList,
    optional_key,
)


class PrimitiveOptions(ParamsModel):
    """featuretools ``primitive_options`` of one or several primitives (keys optional)."""

    include_dataframes: list[str] = optional_key()
    ignore_dataframes: list[str] = optional_key()
    include_columns: dict[str, list[str]] = optional_key()
    ignore_columns: dict[str, list[str]] = optional_key()


class Dfs(ParamsModel):
    """featuretools deep feature synthesis."""

    max_depth: PositiveInt
    agg_primitives: list[str]
    where_primitives: list[str]
    primitive_options: dict[str, PrimitiveOptions]


class Builder(ParamsModel):
    """``predictor.features.FeatureBuilder``'s settings."""

    dfs: Dfs
    min_term_count: PositiveInt
    max_phenotype_terms: NonNegativeInt
    max_excluded_terms: NonNegativeInt
    max_comorbidity_codes: NonNegativeInt
    symptom_groups: dict[str, str]
    news2_loinc: dict[str, StrOrStrList]
    acute_onset_days: float
    chronic_onset_days: float
    missing_indicators: bool


class Split(ParamsModel):
    """The patient split along the time line."""

    fractions: dict[Literal["train", "calibration", "test"], Share]
    strict_periods: bool
    cv_folds: PositiveInt
    feedback_split: Literal["train", "calibration", "test", "time"]


class ModalityMasking(ParamsModel):
    """Encounters that lose their vitals and/or labs while training."""

    seed: Seed
    splits: list[Literal["train", "calibration", "test"]]
    shares: dict[Literal["symptoms_only", "vitals", "labs"], Share]


class FeaturesParams(ParamsModel):
    """``features``: the feature matrix and the splits."""

    registry_sources: list[str]
    seed: Seed
    chunk_size: PositiveInt
    parity_sample: NonNegativeInt
    builder: Builder
    split: Split
    modality_masking: ModalityMasking
