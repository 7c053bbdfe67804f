"""The entries of one FHIR R4 ``Bundle`` → canonical rows, one :class:`RecordResult`
per entry (the ingestion pipeline's exports and the service's requests alike).

The bundle's first Patient and first Encounter are the default subject of every
entry; a Patient birth date later than the encounter start is quarantined.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from disease_pipeline.fhir.resources import BundleContext, resource_result
from disease_pipeline.fhir.rows import TABLE_COLUMNS, RecordResult
from disease_pipeline.fhir.vocabulary import Reject, Vocabulary

BIRTH_DATE = TABLE_COLUMNS["patients"].index("birth_date")


def entry_resources(bundle: dict[str, Any]) -> list[Any]:
    """The ``resource`` of each entry (None where an entry has none)."""
    entries = bundle.get("entry") or []
    return [e.get("resource") if isinstance(e, dict) else None for e in entries]


def bundle_context(
    resources: list[Any], condition_role: str = "primary", encounter_id: str | None = None
) -> BundleContext:
    """Ids of the first Patient and Encounter of ``resources`` (``encounter_id`` when
    the bundle has no Encounter, e.g. a CDS Hooks prefetch of one encounter)."""
    first_id: dict[Any, str] = {}
    for resource in resources:
        if isinstance(resource, dict) and resource.get("id"):
            first_id.setdefault(resource.get("resourceType"), str(resource["id"]))
    return BundleContext(
        first_id.get("Patient"), first_id.get("Encounter") or encounter_id, condition_role
    )


def map_resources(
    resources: list[Any], ctx: BundleContext, vocab: Vocabulary
) -> list[RecordResult]:
    """Validate and flatten each resource (same order), then check the birth date."""
    results = [resource_result(resource, ctx, vocab) for resource in resources]
    check_birth_before_start(results, resources)
    return results


def check_birth_before_start(results: list[RecordResult], resources: list[Any]) -> None:
    """Quarantine a Patient birth date later than the local date of the encounter start."""
    # the raw resources: a malformed period is the Encounter's own issue (validation
    # names it), not a reason to skip the others
    start = next(
        (
            r["period"].get("start") if isinstance(r.get("period"), dict) else None
            for r in resources
            if isinstance(r, dict) and r.get("resourceType") == "Encounter"
        ),
        None,
    )
    try:
        local_day = datetime.fromisoformat(str(start)).date()
    except ValueError:
        return
    for result in results:
        for i, (table, values) in enumerate(result.rows):
            birth = values[BIRTH_DATE] if table == "patients" else None
            if birth is not None and birth.date() > local_day:
                issue = Reject(
                    "Patient.birthDate",
                    birth.date().isoformat(),
                    "implausible_value",
                    f"after the encounter start {start}",
                )
                result.issues.append(issue)
                result.rows[i] = (table, (*values[:BIRTH_DATE], None, *values[BIRTH_DATE + 1 :]))
