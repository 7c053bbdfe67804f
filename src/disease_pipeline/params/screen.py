"""Schemas of ``screen`` and ``screen_engine`` (``parameters_screen.yml``; ``conf/spark``)."""

from __future__ import annotations

from typing import Literal

from disease_pipeline.params.base import (
    NonNegativeInt,
    ParamsModel,
    PositiveInt,
    Scalar,
    Share,
    optional_key,
)


class Window(ParamsModel):
    """Encounters with start <= encounter start < end (ISO times; end null: now)."""

    start: str | None
    end: str | None
    days: float | None


class Model(ParamsModel):
    """The model name and version written with every row."""

    name: str
    version: str | None


class ThresholdRule(ParamsModel):
    """An alert rule on a probability (null threshold: the operating threshold)."""

    enabled: bool
    threshold: Share | None


class RareCandidateRule(ParamsModel):
    """The rare-candidate alert rule."""

    enabled: bool
    threshold: Share | None
    top: PositiveInt


class TimeCriticalRule(ParamsModel):
    """The time-critical alert rule (null codes: the catalogue's must_not_miss)."""

    enabled: bool
    codes: list[str] | None


class Rules(ParamsModel):
    """The alert rules."""

    severity: ThresholdRule
    rare_candidate: RareCandidateRule
    time_critical: TimeCriticalRule


class Alerts(ParamsModel):
    """Alerts raised from the screening."""

    dedupe_days: float
    rules: Rules


class ScreenParams(ParamsModel):
    """``screen``: population screening of the warehouse (docs/screening.md)."""

    window: Window
    batch_size: PositiveInt
    top_k: PositiveInt
    top_n: NonNegativeInt
    progress: bool
    model: Model
    alerts: Alerts


class Spark(ParamsModel):
    """Where Spark runs the scoring."""

    master: str
    partitions: PositiveInt
    conf: dict[str, Scalar]


class ScreenEngineParams(ParamsModel):
    """``screen_engine``: pandas (this process) or spark."""

    name: Literal["pandas", "spark"]
    spark: Spark = optional_key()  # only the spark environment configures Spark


class ScreenSnowparkParams(ParamsModel):
    """``screen_snowpark``: the screen as a Snowpark vectorised UDF (docs/scale.md)."""

    udf_name: str
    stage: str
    model_file: str
    code_archive: str
    max_batch_size: PositiveInt
