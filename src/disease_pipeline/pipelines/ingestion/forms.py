"""Admission forms JSONL → patient-reported ``symptoms`` and comorbidity ``diagnoses``.

One form per line. A bad symptom or comorbidity code quarantines that item only; the
rest of the form is kept. A later form with the same content as an earlier one,
ignoring ``dedup_ignore_fields`` (the form id of a resubmission), is a duplicate.
``smoker: true`` becomes a comorbidity diagnosis, ICD-10 ``Z72.0`` "Tobacco use" (the
``forms.smoker_code`` parameter), so smoking reaches the features like any other
comorbidity; ``false`` or absent adds nothing, and any other value is quarantined.
``patient_name`` and ``mrn`` are direct identifiers: they have no column in the
canonical tables (the patient is already known by its pseudonymised encounter).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from disease_pipeline.datasets import TextLines
from disease_pipeline.fhir.vocabulary import ICD10, Reject, Vocabulary
from disease_pipeline.pipelines.ingestion.ledger import (
    Collector,
    ParsedSource,
    RecordResult,
    attempt,
)

SOURCE = "forms"
SYMPTOM_SYSTEMS = {"HPO": "HPO", "HP": "HPO", "SNOMEDCT": "SNOMEDCT", "SNOMED": "SNOMEDCT"}


def _symptom(item: Any, index: int, encounter_id: str, vocab: Vocabulary, out: RecordResult):
    field = f"reported_symptoms[{index}]"
    if not isinstance(item, dict):
        raise Reject(field, item, "malformed_value", "not an object")
    system = SYMPTOM_SYSTEMS.get(str(item.get("system") or "").strip().upper())
    if system is None:
        raise Reject(f"{field}.system", item.get("system"), "unknown_code")
    hpo, original = vocab.symptom(f"{field}.code", system, item.get("code"))
    duration = item.get("duration_days")
    onset = (
        attempt(out, vocab.onset_days, f"{field}.duration_days", duration)
        if duration is not None
        else None
    )
    out.add(
        "symptoms",
        {
            "encounter_id": encounter_id,
            "hpo_id": hpo,
            "present": True,
            "severity": None,
            "onset_days": onset,
            "source": SOURCE,
            "original_system": original,
            "original_code": str(item.get("code")).strip(),
        },
    )


def _smoker(value: Any, encounter_id: str, smoker_code: str, vocab: Vocabulary, out: RecordResult):
    if value is None or value is False:
        return
    if value is not True:
        raise Reject("smoker", value, "malformed_value", "not true or false")
    diagnosis = vocab.diagnosis("smoker", ICD10, smoker_code, False)
    row = {"encounter_id": encounter_id, **diagnosis}
    out.add("diagnoses", {**row, "role": "comorbidity", "severity": None})


def form_result(form: dict[str, Any], vocab: Vocabulary, smoker_code: str) -> RecordResult:
    """One admission form → symptom and comorbidity rows and issues."""
    out = RecordResult()
    encounter_id = str(form.get("encounter_id") or "").strip()
    if not encounter_id:
        out.issues.append(Reject("encounter_id", form.get("encounter_id"), "missing_field"))
        return out
    if form.get("submitted_at") is not None:
        attempt(out, vocab.datetime, "submitted_at", form["submitted_at"])
    symptoms = form.get("reported_symptoms") or []
    comorbidities = form.get("comorbidities") or []
    for name, items in (("reported_symptoms", symptoms), ("comorbidities", comorbidities)):
        if not isinstance(items, list):
            out.issues.append(Reject(name, items, "malformed_value", "not a list"))
    for index, item in enumerate(symptoms if isinstance(symptoms, list) else []):
        attempt(out, _symptom, item, index, encounter_id, vocab, out)
    for index, code in enumerate(comorbidities if isinstance(comorbidities, list) else []):
        diagnosis = attempt(out, vocab.diagnosis, f"comorbidities[{index}]", ICD10, code, False)
        if diagnosis is not None:
            row = {"encounter_id": encounter_id, **diagnosis}
            out.add("diagnoses", {**row, "role": "comorbidity", "severity": None})
    attempt(out, _smoker, form.get("smoker"), encounter_id, smoker_code, vocab, out)
    return out


def form_key(form: dict[str, Any], ignore: set[str]) -> bytes:
    """Digest of a form's content without the fields in ``ignore``."""
    content = {k: v for k, v in form.items() if k not in ignore}
    return hashlib.blake2b(
        orjson.dumps(content, option=orjson.OPT_SORT_KEYS), digest_size=16
    ).digest()


def parse_forms(raw: TextLines, vocab: Vocabulary, options: dict[str, Any]) -> ParsedSource:
    """All admission forms → canonical rows, quarantine and ledger.

    ``options``: ``dedup_ignore_fields``, ``smoker_code``.
    """
    collector = Collector(SOURCE, raw.path)
    if raw.error is not None:
        collector.count_read()
        collector.reject(0, -1, None, Reject("file", raw.path, "unreadable_file", raw.error))
        return collector.result()
    ignore = set(options["dedup_ignore_fields"])
    smoker_code = str(options["smoker_code"])
    seen: set[bytes] = set()
    for number, text in enumerate(raw.lines, start=1):
        if not text.strip():
            continue
        collector.count_read()
        if number in raw.undecodable:
            collector.reject(number, -1, None, Reject("form", text, "malformed_encoding"))
            continue
        try:
            form = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            collector.reject(number, -1, None, Reject("form", text, "malformed_json", str(exc)))
            continue
        if not isinstance(form, dict):
            issue = Reject("form", text, "malformed_json", "not a JSON object")
            collector.reject(number, -1, None, issue)
            continue
        record_id = str(form["form_id"]) if form.get("form_id") else None
        key = form_key(form, ignore)
        if key in seen:
            collector.record(number, -1, record_id, RecordResult(), duplicate=True)
            continue
        seen.add(key)
        collector.record(number, -1, record_id, form_result(form, vocab, smoker_code))
    return collector.result()
