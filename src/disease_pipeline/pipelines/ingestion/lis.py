"""LIS lab results CSV → canonical ``labs`` rows (or ``vitals`` for vital-sign LOINCs).

Each physical line after the header is one data row (``line`` = 1-based data row).
A header missing a required column makes every row unusable: each is quarantined
with reason ``missing_column``. A later row equal to an earlier one on every column
except ``dedup_ignore_columns`` (the accession id of a resend) is a duplicate.
"""

from __future__ import annotations

import csv
from operator import itemgetter
from typing import Any

from disease_pipeline.datasets import TextLines
from disease_pipeline.fhir.vocabulary import Reject, Vocabulary
from disease_pipeline.pipelines.ingestion.ledger import (
    Collector,
    ParsedSource,
    RecordResult,
    attempt,
)

SOURCE = "lis"


def split_row(text: str) -> list[str]:
    """One CSV line → fields; ``csv.Error`` for broken quoting."""
    if '"' not in text:  # the common case, ten times faster than the csv module
        return text.split(",")
    return next(csv.reader([text], strict=True), [])


def lab_result(row: dict[str, str], vocab: Vocabulary) -> RecordResult:
    """One LIS row (header → value) → a canonical lab (or vital) row and issues."""
    out = RecordResult()
    encounter_id = (row.get("encounter_id") or "").strip()
    if not encounter_id:
        out.issues.append(Reject("encounter_id", row.get("encounter_id"), "missing_field"))
        return out
    unit = (row.get("unit") or "").strip()
    try:
        info, value = vocab.measurement(
            ("loinc", "value", "unit"), row.get("loinc"), (row.get("value") or "").strip(), unit
        )
    except Reject as exc:
        out.issues.append(exc)
        return out
    collected = (row.get("collected_at") or "").strip()
    when = attempt(out, vocab.datetime, "collected_at", collected) if collected else None
    base = {"encounter_id": encounter_id, "loinc": str(row["loinc"]).strip(), "name": info.name}
    if info.kind == "vital":
        out.add("vitals", {**base, "value": value, "unit": info.unit})
    else:
        out.add(
            "labs",
            {
                **base,
                "value": value,
                "unit": info.unit,
                "original_value": float(row["value"]),
                "original_unit": unit,
                "collected_at": when,
            },
        )
    return out


def parse_lis(raw: TextLines, vocab: Vocabulary, options: dict[str, Any]) -> ParsedSource:
    """All rows of the LIS CSV → canonical rows, quarantine and ledger.

    ``options``: ``required_columns`` and ``dedup_ignore_columns``.
    """
    collector = Collector(SOURCE, raw.path)
    if raw.error is not None or not raw.lines:
        collector.count_read()
        detail = raw.error or "empty file (no header)"
        collector.reject(0, -1, None, Reject("file", raw.path, "unreadable_file", detail))
        return collector.result()
    header = [name.strip().lstrip("\ufeff") for name in split_row(raw.lines[0])]
    missing = [name for name in options["required_columns"] if name not in header]
    ignored = {header.index(name) for name in options["dedup_ignore_columns"] if name in header}
    key_of = itemgetter(*[i for i in range(len(header)) if i not in ignored] or [0])
    seen: set[tuple[str, ...]] = set()
    for number, text in enumerate(raw.lines[1:], start=1):
        if not text.strip():
            continue
        collector.count_read()
        physical_line = number + 1
        if physical_line in raw.undecodable:
            collector.reject(number, -1, None, Reject("row", text, "malformed_encoding"))
            continue
        if missing:
            issue = Reject(", ".join(missing), ",".join(header), "missing_column")
            collector.reject(number, -1, None, issue)
            continue
        try:
            fields = split_row(text)
        except csv.Error as exc:
            collector.reject(number, -1, None, Reject("row", text, "malformed_row", str(exc)))
            continue
        if len(fields) != len(header):
            detail = f"{len(fields)} fields, header has {len(header)}"
            collector.reject(number, -1, None, Reject("row", text, "malformed_row", detail))
            continue
        row = dict(zip(header, fields, strict=True))
        record_id = row.get("accession_id") or None
        key = key_of(fields)
        if key in seen:
            collector.record(number, -1, record_id, RecordResult(), duplicate=True)
            continue
        seen.add(key)
        collector.record(number, -1, record_id, lab_result(row, vocab))
    return collector.result()
