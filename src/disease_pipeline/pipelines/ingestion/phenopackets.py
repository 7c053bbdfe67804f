"""GA4GH Phenopacket v2 files → one patient, one encounter, symptoms and diagnoses each.

Both ids are the phenopacket's ``id``. The encounter's ``reported_age_years`` is
``subject.timeAtLastEncounter`` (an ISO 8601 age) in years, null when absent; an age
over 120 years is quarantined. Phenotypic features keep their ``excluded``
flag (``present`` False); ``onset_days`` is the time from the feature's onset age to
``subject.timeAtLastEncounter`` when both are ISO 8601 ages. Diagnoses come from
``interpretations[].diagnosis.disease`` and ``diseases[].term`` (OMIM/ORPHA, RARE);
the registry names a disease that the annotation release does not know yet, so such
ids are kept with the phenopacket's label. A file whose ``id`` was already seen is a
duplicate. An element of the wrong JSON type (a feature that is not an object, a
``subject`` that is a string…) is quarantined as ``malformed_value`` naming its field,
and the rest of the file is read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from disease_pipeline.fhir.vocabulary import Reject, Vocabulary
from disease_pipeline.pipelines.ingestion.ledger import (
    Collector,
    ParsedSource,
    RecordResult,
    attempt,
)
from disease_pipeline.schemas import MAX_REPORTED_AGE_YEARS

SOURCE = "phenopacket"
_DURATION = re.compile(r"^P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?"
                       r"(?:(\d+(?:\.\d+)?)D)?(?:T.*)?$")  # fmt: skip
_DAYS = (365.25, 30.4375, 7.0, 1.0)


def iso_age_days(value: Any) -> float | None:
    """``P3Y6M`` → days; None when ``value`` is not an ISO 8601 duration."""
    match = _DURATION.match(str(value or ""))
    if match is None or not any(match.groups()) or str(value) == "P":
        return None
    return sum(float(part or 0) * days for part, days in zip(match.groups(), _DAYS, strict=True))


def reported_age_years(subject: dict[str, Any], age_days: float | None) -> float | None:
    """The subject's age at the encounter in years (``timeAtLastEncounter``), or None.

    Raises :class:`Reject` (``implausible_value``) above ``MAX_REPORTED_AGE_YEARS``.
    """
    if age_days is None:
        return None
    years = age_days / _DAYS[0]
    if years > MAX_REPORTED_AGE_YEARS:
        value = ((subject.get("timeAtLastEncounter") or {}).get("age") or {}).get("iso8601duration")
        raise Reject(
            "subject.timeAtLastEncounter.age.iso8601duration",
            value,
            "implausible_value",
            f"age over {MAX_REPORTED_AGE_YEARS:g} years",
        )
    return years


def _object(value: Any, field: str, out: RecordResult) -> dict[str, Any]:
    """``value`` when it is an object, ``{}`` when absent; anything else is quarantined
    (``malformed_value``, naming ``field``) and read as absent."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    out.issues.append(Reject(field, value, "malformed_value", "not an object"))
    return {}


def _array(value: Any, field: str, out: RecordResult) -> list[Any]:
    """``value`` when it is a list, ``[]`` when absent; anything else is quarantined
    (``malformed_value``, naming ``field``) and read as empty."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    out.issues.append(Reject(field, value, "malformed_value", "not a list"))
    return []


def _diseases(packet: dict[str, Any], out: RecordResult) -> list[tuple[str, str, str | None]]:
    """``(field, id, label)`` of every diagnosed disease, first mention kept (a malformed
    element is quarantined naming its field)."""
    found: dict[str, tuple[str, str, str | None]] = {}
    for i, item in enumerate(_array(packet.get("interpretations"), "interpretations", out)):
        at = f"interpretations[{i}]"
        interpretation = _object(item, at, out)
        diagnosis = _object(interpretation.get("diagnosis"), f"{at}.diagnosis", out)
        disease = _object(diagnosis.get("disease"), f"{at}.diagnosis.disease", out)
        if disease.get("id"):
            disease_id = str(disease["id"])
            found.setdefault(
                disease_id, (f"{at}.diagnosis.disease.id", disease_id, disease.get("label"))
            )
    for i, item in enumerate(_array(packet.get("diseases"), "diseases", out)):
        disease = _object(item, f"diseases[{i}]", out)
        term = _object(disease.get("term"), f"diseases[{i}].term", out)
        if term.get("id") and not disease.get("excluded"):
            disease_id = str(term["id"])
            found.setdefault(disease_id, (f"diseases[{i}].term.id", disease_id, term.get("label")))
    return list(found.values())


def _age(element: Any, field: str, out: RecordResult) -> float | None:
    """Days of a ``TimeElement``'s ISO 8601 ``age``; None when it has none (an ontology
    class or a timestamp); a malformed element is quarantined naming ``field``."""
    age = _object(_object(element, field, out).get("age"), f"{field}.age", out)
    return iso_age_days(age.get("iso8601duration"))


def packet_result(packet: dict[str, Any], vocab: Vocabulary) -> RecordResult:
    """One phenopacket → patient, encounter, symptom and diagnosis rows and issues."""
    out = RecordResult()
    packet_id = str(packet["id"])
    subject = _object(packet.get("subject"), "subject", out)
    sex = subject.get("sex")
    out.add(
        "patients",
        {
            "patient_id": packet_id,
            "source": SOURCE,
            **dict.fromkeys(["mrn", "given_name", "family_name", "birth_date"]),
            "sex": attempt(out, vocab.sex, "subject.sex", sex, default="unknown")
            if sex
            else "unknown",
            **dict.fromkeys(["address_line", "city", "state", "postal_code", "phone", "email"]),
        },
    )
    last_age = _age(subject.get("timeAtLastEncounter"), "subject.timeAtLastEncounter", out)
    row = {"encounter_id": packet_id, "patient_id": packet_id, "source": SOURCE}
    out.add(
        "encounters",
        {
            **row,
            "start": None,
            "encounter_class": None,
            "reported_age_years": attempt(out, reported_age_years, subject, last_age),
        },
    )
    features = _array(packet.get("phenotypicFeatures"), "phenotypicFeatures", out)
    for i, feature in enumerate(features):
        if not isinstance(feature, dict):
            out.issues.append(
                Reject(f"phenotypicFeatures[{i}]", feature, "malformed_value", "not an object")
            )
            continue
        code = _object(feature.get("type"), f"phenotypicFeatures[{i}].type", out).get("id")
        present = not bool(feature.get("excluded", False))
        # a present finding with a newer HPO release's term is read as its nearest
        # ancestor in ours (original_code keeps the recorded term)
        hpo = attempt(out, vocab.finding, f"phenotypicFeatures[{i}].type.id", code, present)
        if hpo is None:
            continue
        onset_age = _age(feature.get("onset"), f"phenotypicFeatures[{i}].onset", out)
        onset = None
        if last_age is not None and onset_age is not None and last_age >= onset_age:
            onset = last_age - onset_age
        out.add(
            "symptoms",
            {
                "encounter_id": packet_id,
                "hpo_id": hpo,
                "present": present,
                "severity": None,
                "onset_days": onset,
                "source": SOURCE,
                "original_system": "HPO",
                "original_code": str(code),
            },
        )
    diseases = _diseases(packet, out)
    if not diseases:
        out.issues.append(Reject("interpretations", None, "missing_field", "no diagnosis"))
    for field, disease_id, label in diseases:
        system = disease_id.split(":", 1)[0].upper().replace("ORPHANET", "ORPHA")
        diagnosis = attempt(out, vocab.diagnosis, field, system, disease_id, True, label)
        if diagnosis is not None:
            row = {"encounter_id": packet_id, **diagnosis, "role": "primary", "severity": None}
            out.add("diagnoses", row)
    return out


def parse_phenopackets(
    partitions: Mapping[str, Callable[[], str]] | None, vocab: Vocabulary, folder: str
) -> ParsedSource:
    """Every phenopacket of the partitioned folder (sorted by path) → canonical rows.

    ``partitions`` maps a relative path (without ``.json``) to its loader, or is None
    when the folder holds no phenopacket (the source is then empty, not an error).
    """
    collector = Collector(SOURCE, folder)
    seen: set[str] = set()
    for partition in sorted(partitions or {}):
        file = f"{folder.rstrip('/')}/{partition}.json"
        collector.file = file
        collector.count_read()
        try:
            text = partitions[partition]()
        except Exception as exc:  # any read failure quarantines the file
            issue = Reject("file", file, "unreadable_file", f"{type(exc).__name__}: {exc}")
            collector.reject(0, -1, None, issue)
            continue
        try:
            packet = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            collector.reject(0, -1, None, Reject("file", text, "malformed_json", str(exc)))
            continue
        if not isinstance(packet, dict) or not packet.get("id"):
            issue = Reject("id", None, "missing_field", "not a phenopacket with an id")
            collector.reject(0, -1, None, issue)
            continue
        packet_id = str(packet["id"])
        if packet_id in seen:
            collector.record(0, -1, packet_id, RecordResult(), duplicate=True)
            continue
        seen.add(packet_id)
        collector.record(0, -1, packet_id, packet_result(packet, vocab))
    collector.file = folder
    return collector.result()
