"""Schema of ``anonymization`` (``parameters_anonymization.yml``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from disease_pipeline.params.base import NonNegativeInt, ParamsModel


class DateShift(ParamsModel):
    """The per-patient date shift, in ±[min_days, max_days]."""

    min_days: NonNegativeInt
    max_days: NonNegativeInt


class TableRule(ParamsModel):
    """Columns of an encounter-level table moved by the date shift, and columns dropped."""

    date_columns: list[str]
    drop_columns: list[str]


class AnonymizationParams(ParamsModel):
    """``anonymization``: HIPAA Safe Harbor de-identification (docs/privacy.md)."""

    pseudonym_hex_chars: Annotated[int, Field(ge=16, le=64)]
    date_shift: DateShift
    age_top_code: NonNegativeInt
    age_decimals: NonNegativeInt
    restricted_zip3: list[str]
    quarantine_keep_value_fields: list[str]
    quarantine_identifier_fields: list[str]
    tables: dict[str, TableRule]
