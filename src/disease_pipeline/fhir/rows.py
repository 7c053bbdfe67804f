"""What one raw record yields: canonical rows (table name and values) and the
rejected fields, shared by every ingestion source and by the service's FHIR mapping.

:data:`TABLE_COLUMNS` is the column order of the layer-02 tables ingestion writes;
a :class:`RecordResult` is filled by the parsers (``add``) and by :func:`attempt`,
which quarantines a field whose normalisation raised :class:`Reject`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from disease_pipeline.fhir.vocabulary import Reject
from disease_pipeline.records import SYMPTOM_COLUMNS

TABLE_COLUMNS: dict[str, list[str]] = {
    "patients": [
        "patient_id",
        "source",
        "mrn",
        "given_name",
        "family_name",
        "birth_date",
        "sex",
        "address_line",
        "city",
        "state",
        "postal_code",
        "phone",
        "email",
    ],
    "encounters": [
        "encounter_id",
        "patient_id",
        "source",
        "start",
        "encounter_class",
        "reported_age_years",
    ],
    "symptoms": list(SYMPTOM_COLUMNS),
    "vitals": ["encounter_id", "loinc", "name", "value", "unit"],
    "labs": [
        "encounter_id",
        "loinc",
        "name",
        "value",
        "unit",
        "original_value",
        "original_unit",
        "collected_at",
    ],
    "diagnoses": ["encounter_id", "code", "system", "name", "category", "role", "severity"],
    "notes": ["encounter_id", "text"],
}
MAX_VALUE_CHARS = 200


Row = tuple[str, tuple]
"""A canonical row: table name and values in :data:`TABLE_COLUMNS` order."""
Issue = tuple[str | None, str | None, str]
"""A quarantine entry of one record: field, offending value as text, reason."""


@dataclass
class RecordResult:
    """What one raw record yields: canonical rows and rejected fields."""

    rows: list[Row] = field(default_factory=list)
    issues: list[Reject] = field(default_factory=list)

    def add(self, table: str, row: dict[str, Any]) -> None:
        """Keep one canonical row for ``table`` (a dict with its columns)."""
        self.rows.append((table, tuple(row[column] for column in TABLE_COLUMNS[table])))

    def compact(self) -> tuple[tuple[Row, ...], tuple[Issue, ...]]:
        """Rows and issues as plain tuples (cheap to send between processes)."""
        issues = tuple((i.field, shorten(i.value), i.reason) for i in self.issues)
        return tuple(self.rows), issues


def attempt(result: RecordResult, fn: Callable[..., Any], *args, default: Any = None) -> Any:
    """``fn(*args)``; on :class:`Reject`, quarantine the field and return ``default``."""
    try:
        return fn(*args)
    except Reject as exc:
        result.issues.append(exc)
        return default


def shorten(value: Any) -> str | None:
    """Quarantine ``value`` column: the offending value as text, truncated."""
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else f"{text[:MAX_VALUE_CHARS]}…"
