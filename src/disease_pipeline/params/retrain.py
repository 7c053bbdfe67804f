"""Schema of ``retrain`` (``parameters_retrain.yml``)."""

from __future__ import annotations

from typing import Literal

from disease_pipeline.params.base import NonNegativeInt, ParamsModel, PositiveInt, Seed, Share


class Threshold(ParamsModel):
    """A trigger that fires past its threshold."""

    threshold: float


class AurocDrop(ParamsModel):
    """The live-performance trigger, judged with enough labelled predictions."""

    threshold: float
    min_labelled: NonNegativeInt


class Triggers(ParamsModel):
    """Retraining triggers (``kedro run --pipeline=retrain_check``)."""

    psi: Threshold
    auroc_drop: AurocDrop
    new_common_labels: Threshold
    new_rare_labels: Threshold
    model_age_days: Threshold


class Duplicates(ParamsModel):
    """Feedback that repeats an exported encounter: what a label conflict keeps."""

    on_conflict: Literal["keep_export", "keep_feedback"]


class Feedback(ParamsModel):
    """When a confirmation becomes a training label."""

    trusted_roles: list[str]
    concordant_clinicians: PositiveInt
    clinician_roles: list[str]
    duplicates: Duplicates


class Margin(ParamsModel):
    """The non-inferiority margin of a metric."""

    margin: float


class Recent(ParamsModel):
    """Non-inferiority on recent labelled traffic."""

    days: PositiveInt
    min_labelled: NonNegativeInt
    metrics: dict[str, Margin]


class ContentKey(ParamsModel):
    """Feature columns that identify an evaluation encounter sent back as feedback."""

    prefixes: list[str]
    decimals: NonNegativeInt


class Comparison(ParamsModel):
    """Champion against challenger on the same encounters."""

    n_boot: PositiveInt
    level: Share
    seed: Seed
    primary: str
    metrics: dict[str, Margin]
    mcnemar_alpha: Share
    recent: Recent
    content_key: ContentKey


class RetrainParams(ParamsModel):
    """``retrain``: triggers, the feedback trust rule and the promotion decision."""

    now: str | None
    triggers: Triggers
    feedback: Feedback
    comparison: Comparison
