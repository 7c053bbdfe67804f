"""Schema of ``ingestion`` (``parameters_ingestion.yml``)."""

from __future__ import annotations

from typing import Literal

from disease_pipeline.params.base import NonNegativeInt, ParamsModel, PositiveInt, Share

#: the canonical severity levels (core.levels.SEVERITY_LEVELS) and sexes
Severity = Literal["low", "moderate", "high", "critical"]
Sex = Literal["female", "male", "other", "unknown"]


class Fhir(ParamsModel):
    """Parsing and validating the FHIR bundles."""

    n_workers: PositiveInt
    parallel_min_lines: NonNegativeInt
    chunk_size: PositiveInt
    start_method: Literal["spawn", "forkserver", "fork"]
    content_dedup_types: list[str]


class Lis(ParamsModel):
    """The laboratory (LIS) CSV export."""

    required_columns: list[str]
    dedup_ignore_columns: list[str]


class Forms(ParamsModel):
    """The admission-form JSONL export."""

    dedup_ignore_fields: list[str]
    smoker_code: str


class Phenopackets(ParamsModel):
    """The registry phenopackets."""

    folder: str


class Scoring(ParamsModel):
    """Scoring ingestion against the simulator's ground truth."""

    scored_sources: list[str]
    min_recall: Share
    max_false_quarantine: Share


class IngestionParams(ParamsModel):
    """``ingestion``: raw exports to canonical tables."""

    severity_codes: dict[str, Severity]
    encounter_classes: list[str]
    sexes: dict[str, Sex]
    onset_units_days: dict[str, float]
    min_date: str
    max_date: str
    fhir: Fhir
    lis: Lis
    forms: Forms
    phenopackets: Phenopackets
    scoring: Scoring
