"""FHIR R4 NDJSON bundles → canonical rows, one encounter per bundle line.

Lines are parsed and validated in worker processes (chunks of lines, order kept),
which send back plain tuples; de-duplication and the ledger are then done here, in
file order, so the result is the same whatever the number of workers:

* a bundle whose Encounter id was already seen is a resent copy: all its entries are
  duplicates;
* a resource of ``content_dedup_types`` (Observation, …) whose content, ignoring
  ``id`` and ``meta``, was already seen is a duplicate;
* a Patient already seen (returning patient) is accepted but its row is not repeated;
  the row kept is the patient's first copy without issues, when there is one (a birth
  date after the encounter start is an error of that bundle, not of the patient).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from disease_pipeline.datasets import TextLines
from disease_pipeline.fhir.bundle import bundle_context, entry_resources, map_resources
from disease_pipeline.fhir.vocabulary import Reject, Vocabulary
from disease_pipeline.pipelines.ingestion.ledger import (
    TABLE_COLUMNS,
    Collector,
    Issue,
    ParsedSource,
    RecordResult,
    Row,
)
from disease_pipeline.pipelines.ingestion.parallel import chunked, ordered_map

SOURCE = "fhir"
PATIENT_ID = TABLE_COLUMNS["patients"].index("patient_id")

#: One bundle entry: (entry index, resource type, resource id, content key, rows, issues).
Entry = tuple[int, str | None, str | None, bytes | None, tuple[Row, ...], tuple[Issue, ...]]
#: One NDJSON line: (line number, whole-line issue or None, Encounter id, entries).
Line = tuple[int, Issue | None, str | None, list[Entry]]


def content_key(resource: dict[str, Any]) -> bytes:
    """Digest of a resource's content ignoring ``id`` and ``meta``."""
    content = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    dumped = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(dumped, digest_size=16).digest()


def _line_issue(line: int, issue: Reject) -> Line:
    return (line, RecordResult(issues=[issue]).compact()[1][0], None, [])


def parse_bundle_line(line: int, text: str, vocab: Vocabulary) -> Line:
    """Parse, validate and flatten one NDJSON line holding a FHIR ``Bundle``."""
    try:
        bundle = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return _line_issue(line, Reject("bundle", text, "malformed_json", str(exc)))
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        kind = bundle.get("resourceType") if isinstance(bundle, dict) else type(bundle).__name__
        return _line_issue(line, Reject("bundle.resourceType", kind, "invalid_fhir", "no Bundle"))
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        return _line_issue(line, Reject("bundle.entry", entries, "missing_field"))
    resources = entry_resources(bundle)
    ctx = bundle_context(resources)
    results = map_resources(resources, ctx, vocab)
    out: list[Entry] = []
    for index, (resource, result) in enumerate(zip(resources, results, strict=True)):
        is_dict = isinstance(resource, dict)
        rtype = str(resource.get("resourceType")) if is_dict else None
        rid = str(resource["id"]) if is_dict and resource.get("id") else None
        key = content_key(resource) if is_dict else None
        out.append((index, rtype, rid, key, *result.compact()))
    return (line, None, ctx.encounter_id, out)


_WORKER_VOCAB: Vocabulary | None = None


def _init_worker(vocab: Vocabulary) -> None:
    global _WORKER_VOCAB  # noqa: PLW0603 - per-process state of the worker pool
    _WORKER_VOCAB = vocab


def _parse_chunk(chunk: list[tuple[int, str]]) -> list[Line]:
    assert _WORKER_VOCAB is not None, "worker not initialised"
    return [parse_bundle_line(line, text, _WORKER_VOCAB) for line, text in chunk]


def parse_fhir(raw: TextLines, vocab: Vocabulary, options: dict[str, Any]) -> ParsedSource:
    """All bundles of ``raw`` → canonical rows, quarantine and ledger (see module doc).

    ``options``: ``n_workers``, ``parallel_min_lines`` (fewer lines are parsed in this
    process: starting workers costs more), ``chunk_size``, ``start_method`` and
    ``content_dedup_types`` (resource types de-duplicated by content).
    """
    collector = Collector(SOURCE, raw.path)
    if raw.error is not None:
        collector.count_read()
        collector.reject(0, -1, None, Reject("file", raw.path, "unreadable_file", raw.error))
        return collector.result()
    numbered = [(i, text) for i, text in enumerate(raw.lines, start=1) if text.strip()]
    workers = int(options["n_workers"])
    results = ordered_map(
        _parse_chunk,
        chunked(numbered, int(options["chunk_size"])),
        n_workers=workers if len(numbered) >= int(options["parallel_min_lines"]) else 1,
        initializer=_init_worker,
        initargs=(vocab,),
        start_method=str(options["start_method"]),
        desc="FHIR bundles",
    )
    dedup_types = set(options["content_dedup_types"])
    seen_encounters: set[str] = set()
    seen_content: set[bytes] = set()
    patients: dict[str, tuple[tuple, bool]] = {}  # id → (row values, clean)
    undecodable = Reject("bundle", None, "malformed_encoding")
    for chunk in results:
        for line, error, encounter_id, entries in chunk:
            if line in raw.undecodable:
                collector.count_read()
                collector.reject(line, -1, None, undecodable)
                continue
            if error is not None:
                collector.count_read()
                collector.record_compact(line, -1, None, (), (error,))
                continue
            collector.count_read(len(entries))
            resent = encounter_id is not None and encounter_id in seen_encounters
            for entry, rtype, rid, key, rows, issues in entries:
                duplicate = resent or (rtype in dedup_types and key in seen_content)
                if not duplicate and rtype in dedup_types:
                    seen_content.add(key)
                if not duplicate and rtype == "Patient":
                    _keep_patient(patients, rows, clean=not issues)
                    rows = ()  # noqa: PLW2901 - the merged patient row is added at the end
                collector.record_compact(line, entry, rid, rows, issues, duplicate=duplicate)
            if encounter_id is not None:
                seen_encounters.add(encounter_id)
    collector.extend("patients", (values for values, _ in patients.values()))
    return collector.result()


def _keep_patient(patients: dict[str, tuple[tuple, bool]], rows: tuple[Row, ...], clean: bool):
    """Keep the first copy of each patient, or the first clean copy after a flawed one."""
    for table, values in rows:
        if table != "patients":
            continue
        known = patients.get(values[PATIENT_ID])
        if known is None or (clean and not known[1]):
            patients[values[PATIENT_ID]] = (values, clean)
