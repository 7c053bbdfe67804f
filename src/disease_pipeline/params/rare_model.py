"""Schema of ``rare_model`` (``parameters_rare_model.yml``)."""

from __future__ import annotations

from typing import Literal

from disease_pipeline.params.base import (
    NonNegativeFloat,
    NonNegativeInt,
    ParamsModel,
    PositiveFloat,
    PositiveInt,
    Seed,
    Share,
)


class Cases(ParamsModel):
    """Which known cases are assembled."""

    registry: bool
    simulated_rare: bool
    max_common_cases: NonNegativeInt


class Knowledge(ParamsModel):
    """The likelihood-ratio knowledge scorer (rare/scorer.py)."""

    noise: float
    ancestor_discount: float
    not_annotated: float
    excluded_floor: Share


class Synthetic(ParamsModel):
    """Synthetic patients sampled from the annotations (rare/synth.py)."""

    median_terms: float
    spread_terms: float
    generalise: Share
    noise_terms: float
    checked_absent: Share
    random_excluded: float


class Encoder(ParamsModel):
    """The few-shot encoder (rare/encoder.py, rare/training.py)."""

    term_dim: PositiveInt
    hidden: PositiveInt
    out_dim: PositiveInt
    dropout: Share
    learning_rate: PositiveFloat
    weight_decay: float
    batch_size: PositiveInt
    ways: PositiveInt
    pretrain_steps: NonNegativeInt
    synthetic_steps: NonNegativeInt
    finetune_steps: NonNegativeInt
    max_seconds: float
    real_query_share: Share
    max_support: PositiveInt
    profile_weight: float
    threads: PositiveInt
    seed: Seed


class Hybrid(ParamsModel):
    """The learned combination, its re-ranking trees and temperature (rare/hybrid.py)."""

    shortlist: PositiveInt
    prior_strength: float
    min_case_patients: NonNegativeInt
    rerank_rounds: NonNegativeInt
    rerank_depth: PositiveInt
    rerank_learning_rate: Share
    rerank_top: PositiveInt
    rerank_min_child_weight: NonNegativeFloat
    rerank_subsample: Share
    rerank_colsample: Share
    rerank_l2: NonNegativeFloat


class Explanation(ParamsModel):
    """What an explanation of a rare candidate lists."""

    max_items: PositiveInt
    frequent: Share


class Validation(ParamsModel):
    """The real-case validation on registry cases."""

    enabled: bool
    folds: PositiveInt
    shots: list[PositiveInt]
    max_cases: PositiveInt | None
    workers: PositiveInt


class Benchmark(ParamsModel):
    """The ranking benchmark."""

    patients: PositiveInt
    threads: PositiveInt


class RareModelParams(ParamsModel):
    """``rare_model``: the rare-disease ranker."""

    seed: Seed
    unknown_frequency: Share
    annotation_pseudocount: float
    include_common: bool
    validation_share: Share
    unseen_share: Share
    few_shot_holdout: Share
    max_validation_cases: NonNegativeInt
    validation_sources: list[Literal["registry", "simulated"]]
    validation_splits: PositiveInt
    serving_top_k: PositiveInt
    equivalence: Literal["name", "none"]
    cases: Cases
    knowledge: Knowledge
    synthetic: Synthetic
    encoder: Encoder
    hybrid: Hybrid
    explanation: Explanation
    validation: Validation
    benchmark: Benchmark
