"""Nodes of the ingestion pipeline: raw exports → validated canonical ``int_*`` tables.

The parsing itself lives in one module per source (``fhir_bundles``, ``lis``,
``forms``, ``phenopackets``); these nodes check parameters, wire the sources
together, validate every table with its pandera schema and report data quality.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

import pandas as pd

from disease_pipeline.datasets import TextLines
from disease_pipeline.fhir.vocabulary import Vocabulary
from disease_pipeline.pipelines.ingestion import quality
from disease_pipeline.pipelines.ingestion.fhir_bundles import parse_fhir
from disease_pipeline.pipelines.ingestion.forms import parse_forms
from disease_pipeline.pipelines.ingestion.ledger import (
    LEDGER_COLUMNS,
    QUARANTINE_COLUMNS,
    TABLE_COLUMNS,
    ParsedSource,
)
from disease_pipeline.pipelines.ingestion.lis import parse_lis
from disease_pipeline.pipelines.ingestion.phenopackets import parse_phenopackets
from disease_pipeline.schemas import ENCOUNTER_CLASSES, SEVERITIES, SEXES, TABLE_SCHEMAS

REQUIRED_PARAMETERS: dict[str | None, set[str]] = {
    None: {
        "severity_codes", "encounter_classes", "sexes", "onset_units_days", "min_date",
        "max_date", "fhir", "lis", "forms", "phenopackets", "scoring",
    },
    "fhir": {
        "n_workers", "parallel_min_lines", "chunk_size", "start_method", "content_dedup_types",
    },
    "lis": {"required_columns", "dedup_ignore_columns"},
    "forms": {"dedup_ignore_fields"},
    "phenopackets": {"folder"},
    "scoring": {"scored_sources", "min_recall", "max_false_quarantine"},
}  # fmt: skip


def check_parameters(params: Mapping[str, Any]) -> None:
    """Fail early, naming the parameter, when ``ingestion:`` is incomplete or wrong."""
    for section, keys in REQUIRED_PARAMETERS.items():
        node = params if section is None else params.get(section)
        where = "ingestion" if section is None else f"ingestion.{section}"
        if not isinstance(node, Mapping):
            raise ValueError(f"parameter {where} must be a mapping")
        missing = sorted(keys - set(node))
        if missing:
            raise ValueError(f"parameter {where}: missing key(s) {', '.join(missing)}")
    fhir = params["fhir"]
    for key in ("n_workers", "parallel_min_lines", "chunk_size"):
        value = fhir[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"parameter ingestion.fhir.{key} must be a positive integer")
    if fhir["start_method"] not in ("spawn", "forkserver", "fork"):
        raise ValueError("parameter ingestion.fhir.start_method must be spawn, forkserver or fork")
    scoring = params["scoring"]
    for key in ("min_recall", "max_false_quarantine"):
        if not 0 <= float(scoring[key]) <= 1:
            raise ValueError(f"parameter ingestion.scoring.{key} must lie in [0, 1]")
    for key, allowed in (("severity_codes", SEVERITIES), ("sexes", SEXES)):
        unknown = sorted(set(map(str, params[key].values())) - set(allowed))
        if unknown:
            raise ValueError(f"parameter ingestion.{key}: values {unknown} not in {allowed}")
    unknown = sorted(set(params["encounter_classes"]) - set(ENCOUNTER_CLASSES))
    if unknown:
        raise ValueError(f"parameter ingestion.encounter_classes: {unknown} not in the schema")
    for key in ("min_date", "max_date"):
        try:
            date.fromisoformat(str(params[key]))
        except ValueError:
            raise ValueError(f"parameter ingestion.{key} must be a YYYY-MM-DD date") from None


def build_vocabulary(params: dict[str, Any]) -> Vocabulary:
    """Snapshot of the knowledge base and the normalisation rules of ``ingestion:``."""
    check_parameters(params)
    return Vocabulary.from_knowledge(params)


def parse_fhir_bundles(raw: TextLines, vocab: Vocabulary, params: dict[str, Any]) -> ParsedSource:
    """FHIR R4 bundles (one per line) → canonical rows, validated per resource."""
    return parse_fhir(raw, vocab, params["fhir"])


def parse_lab_results(raw: TextLines, vocab: Vocabulary, params: dict[str, Any]) -> ParsedSource:
    """LIS lab CSV → canonical labs (units converted to the canonical UCUM unit)."""
    return parse_lis(raw, vocab, params["lis"])


def parse_admission_forms(
    raw: TextLines, vocab: Vocabulary, params: dict[str, Any]
) -> ParsedSource:
    """Admission forms JSONL → reported symptoms and comorbidities."""
    return parse_forms(raw, vocab, params["forms"])


def parse_phenopacket_folder(
    partitions: Mapping[str, Callable[[], str]] | None,
    vocab: Vocabulary,
    params: dict[str, Any],
) -> ParsedSource:
    """Phenopacket v2 files (lazy partitions; None when the folder is empty)."""
    return parse_phenopackets(partitions, vocab, str(params["phenopackets"]["folder"]))


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _validated(name: str, frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """Each source's part coerced to the schema's dtypes, then the whole table validated."""
    schema = TABLE_SCHEMAS[name].to_schema()
    parts = [schema.coerce_dtype(frame) for frame in frames if len(frame)]
    return schema.validate(_concat(parts, columns))


def build_canonical_tables(
    fhir: ParsedSource, lis: ParsedSource, forms: ParsedSource, phenopackets: ParsedSource
) -> dict[str, pd.DataFrame]:
    """Concatenate the sources into the ``int_*`` tables, each validated by its schema.

    Returns a dict keyed by catalog name (``int_patients`` … ``int_quarantine``,
    ``int_ingestion_ledger``) plus ``int_ingestion_table_summary`` (row counts and rows
    referencing an encounter absent from the export). Raises
    ``pandera.errors.SchemaError`` on a table that breaks its contract (a bug: bad
    records are supposed to be quarantined before).
    """
    sources = (fhir, lis, forms, phenopackets)
    validated = {
        f"int_{name}": _validated(
            f"int_{name}", [s.tables.get(name, pd.DataFrame()) for s in sources], columns
        )
        for name, columns in TABLE_COLUMNS.items()
    }
    validated["int_quarantine"] = _validated(
        "int_quarantine", [s.quarantine for s in sources], QUARANTINE_COLUMNS
    )
    validated["int_ingestion_ledger"] = _concat([s.ledger for s in sources], LEDGER_COLUMNS)
    validated["int_ingestion_table_summary"] = {
        "table_rows": {name: len(validated[name]) for name in TABLE_SCHEMAS},
        "references": quality.reference_checks(validated),
    }
    return validated


def check_conservation(
    fhir: ParsedSource,
    lis: ParsedSource,
    forms: ParsedSource,
    phenopackets: ParsedSource,
    quarantine: pd.DataFrame,
) -> dict[str, Any]:
    """Records read = accepted + quarantined + duplicates, per source; raises otherwise."""
    return quality.conservation((fhir, lis, forms, phenopackets), quarantine)


def score_against_ground_truth(
    ledger: pd.DataFrame, ground_truth: pd.DataFrame | None, params: dict[str, Any]
) -> dict[str, Any]:
    """Recall of the simulator's injected errors/duplicates; ``available: False`` without it."""
    return quality.score(ledger, ground_truth, params["scoring"])


def build_quality_report(
    accounting: dict[str, Any],
    scoring: dict[str, Any],
    summary: dict[str, Any],
    quarantine: pd.DataFrame,
) -> tuple[dict[str, Any], str]:
    """Data-quality report (JSON dict and markdown): counts per source and reason."""
    report = quality.quality_report(
        accounting, quarantine, scoring, summary["references"], summary["table_rows"]
    )
    return report, quality.report_markdown(report)
