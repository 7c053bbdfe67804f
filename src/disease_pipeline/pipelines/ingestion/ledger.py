"""Per-record bookkeeping shared by every source parser.

Each raw record (a FHIR bundle entry, a CSV row, a form, a phenopacket file, or a
whole line/file that could not be split into records) ends with exactly one status
in the ledger: ``accepted``, ``quarantined`` (at least one quarantine row; usable
fields of the record are still kept, the bad field is dropped or set to null) or
``duplicate`` (a later copy of an earlier record; nothing kept). The conservation
check compares the ledger with the records counted in the raw input and with the
quarantine table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from disease_pipeline.fhir.rows import (  # noqa: F401 - re-exported to the parsers
    MAX_VALUE_CHARS,
    TABLE_COLUMNS,
    Issue,
    RecordResult,
    Row,
    attempt,
    shorten,
)
from disease_pipeline.fhir.vocabulary import Reject

QUARANTINE_COLUMNS = ["source", "file", "line", "entry", "record_id", "field", "value", "reason"]
#: The layer-02 tables ingestion writes (catalog names ``int_<name>``), in order.
INT_TABLES = (*TABLE_COLUMNS, "quarantine")
LEDGER_COLUMNS = ["source", "file", "line", "entry", "record_id", "status"]
STATUSES = ("accepted", "quarantined", "duplicate")


@dataclass
class ParsedSource:
    """One raw source after parsing: canonical tables, quarantine rows and the ledger.

    ``read`` is the number of records counted in the raw input, independently of
    their outcome; the conservation check compares it with the ledger.
    """

    source: str
    tables: dict[str, pd.DataFrame]
    quarantine: pd.DataFrame
    ledger: pd.DataFrame
    read: int


class Collector:
    """Accumulates records of one source file into a :class:`ParsedSource`."""

    def __init__(self, source: str, file: str) -> None:
        self.source = source
        self.file = file
        self.read = 0
        self._rows: dict[str, list[tuple]] = {name: [] for name in TABLE_COLUMNS}
        self._quarantine: list[tuple] = []
        self._ledger: list[tuple] = []

    def count_read(self, n: int = 1) -> None:
        """Count ``n`` records seen in the raw input (before any processing)."""
        self.read += n

    def record(
        self,
        line: int,
        entry: int,
        record_id: str | None,
        result: RecordResult,
        *,
        duplicate: bool = False,
    ) -> str:
        """Register one record's outcome; a duplicate keeps neither rows nor issues."""
        rows, issues = result.compact()
        return self.record_compact(line, entry, record_id, rows, issues, duplicate=duplicate)

    def record_compact(
        self,
        line: int,
        entry: int,
        record_id: str | None,
        rows: Sequence[Row],
        issues: Sequence[Issue],
        *,
        duplicate: bool = False,
    ) -> str:
        """:meth:`record` for rows and issues already in tuple form."""
        if duplicate:
            status = "duplicate"
        else:
            for table, values in rows:
                self._rows[table].append(values)
            head = (self.source, self.file, line, entry, record_id)
            self._quarantine.extend(head + issue for issue in issues)
            status = "quarantined" if issues else "accepted"
        self._ledger.append((self.source, self.file, line, entry, record_id, status))
        return status

    def extend(self, table: str, rows: Iterable[tuple]) -> None:
        """Add canonical rows (value tuples) that belong to no single record."""
        self._rows[table].extend(rows)

    def reject(self, line: int, entry: int, record_id: str | None, issue: Reject) -> None:
        """A record that yields nothing but one quarantine row."""
        self.record(line, entry, record_id, RecordResult(issues=[issue]))

    def result(self) -> ParsedSource:
        """The collected tables, quarantine and ledger as DataFrames."""
        tables = {
            name: pd.DataFrame(rows, columns=TABLE_COLUMNS[name])
            for name, rows in self._rows.items()
            if rows
        }
        return ParsedSource(
            source=self.source,
            tables=tables,
            quarantine=frame_of(self._quarantine, QUARANTINE_COLUMNS),
            ledger=frame_of(self._ledger, LEDGER_COLUMNS),
            read=self.read,
        )


def frame_of(rows: Iterable[tuple], columns: list[str]) -> pd.DataFrame:
    """DataFrame of tuples with ``line``/``entry`` as int64 even when empty."""
    frame = pd.DataFrame(list(rows), columns=columns)
    for column in ("line", "entry"):
        if column in frame:
            frame[column] = frame[column].astype("int64")
    return frame
