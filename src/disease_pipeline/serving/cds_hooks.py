"""CDS Hooks 2.0 for the clinician service: discovery, the ``patient-view`` service and
its feedback.

* ``GET /cds-services``: the discovery document: the service, its hook and the prefetch
  templates (the patient, the active conditions, the recent observations).
* ``POST /cds-services/disease-pipeline-differential``: a ``patient-view`` hook request
  with its prefetch → the prefetched resources are mapped by :mod:`disease_pipeline.fhir`
  (the mapping of ``/fhir/predict`` and of ingestion) and predicted through the
  ``/predict`` path → one card: the summary (≤ 140 characters), an indicator
  (``critical`` for a critical severity, ``warning`` for a high severity or a "must not
  miss" diagnosis, else ``info``), the explanation and the differential in the detail,
  the source labelled with the model name and version, a link to the clinician page,
  and suggestions to order the tests that would best separate the leading diagnoses.
  A request without the prefetch answers 412 (the service fetches nothing from the
  EHR); resources that cannot be read give an ``info`` card naming them, not a guess.
* ``POST /cds-services/disease-pipeline-differential/feedback``: accepted and
  overridden cards, stored with the clinician feedback (same warehouse, table
  ``cds_feedback``) after their audit entry.

The card's ``uuid`` is the prediction's ``request_id`` in the audit trail.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from disease_pipeline.fhir.patient import MappedBundle
from disease_pipeline.json_types import json_bytes
from disease_pipeline.serving.audit import AuditWriteError
from disease_pipeline.serving.feedback import FeedbackStore, WarehouseBusyError

SERVICE_ID = "disease-pipeline-differential"
HOOK = "patient-view"
SUMMARY_MAX = 140
DETAIL_ENTRIES = 5
RARE_ENTRIES = 3
SUGGESTED_TESTS = 2
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}&clinical-status=active",
    "observations": "Observation?patient={{context.patientId}}&_sort=-date&_count=100",
}
CDS_FEEDBACK_COLUMNS = {
    "feedback_id": "VARCHAR",
    "request_id": "VARCHAR",
    "received_at": "TIMESTAMP WITH TIME ZONE",
    "user_id": "VARCHAR",
    "role": "VARCHAR",
    "service_id": "VARCHAR",
    "outcome": "VARCHAR",
    "accepted_suggestions": "VARCHAR",
    "override_reason": "VARCHAR",
    "model_version": "VARCHAR",
    "predicted_top": "VARCHAR",
}
OUTCOMES = ("accepted", "overridden")


def discovery() -> dict[str, Any]:
    """The discovery document (CDS Hooks 2.0 ``services``)."""
    return {
        "services": [
            {
                "hook": HOOK,
                "id": SERVICE_ID,
                "title": "Differential diagnosis (common and rare diseases)",
                "description": (
                    "Ranks the likely diagnoses of the patient in view from the active "
                    "conditions and recent observations (HPO, SNOMED CT, ICD-10, LOINC), "
                    "with the severity, the must-not-miss diagnoses and the tests that "
                    "would best separate the leading ones."
                ),
                "prefetch": PREFETCH,
                "usageRequirements": (
                    "Send the prefetch: the service does not query the FHIR server."
                ),
            }
        ]
    }


def hook_problem(body: Any) -> tuple[int, str] | None:
    """(status, message) when the hook request is unusable, else None."""
    if not isinstance(body, dict):
        return 400, "the hook request must be a JSON object"
    if body.get("hook") != HOOK:
        return 400, f"hook: this service answers {HOOK!r} (got {body.get('hook')!r})"
    if not isinstance(body.get("hookInstance"), str) or not body["hookInstance"]:
        return 400, "hookInstance: required (a UUID string)"
    context = body.get("context")
    if not isinstance(context, dict) or not context.get("patientId"):
        return 400, "context.patientId: required"
    prefetch = body.get("prefetch")
    if not isinstance(prefetch, dict) or not isinstance(prefetch.get("patient"), dict):
        return 412, (
            "prefetch.patient missing: this service needs the prefetch of its discovery "
            "document (it does not query the FHIR server)"
        )
    return None


def prefetch_bundle(body: dict[str, Any]) -> dict[str, Any]:
    """The prefetched resources as one FHIR ``Bundle`` (search sets flattened; search
    outcomes skipped)."""
    prefetch = body["prefetch"]
    resources: list[Any] = [prefetch["patient"]]
    for key in ("conditions", "observations"):
        found = prefetch.get(key)
        if isinstance(found, dict) and found.get("resourceType") == "Bundle":
            for entry in found.get("entry") or []:
                search = entry.get("search") if isinstance(entry, dict) else None
                if isinstance(search, dict) and search.get("mode") == "outcome":
                    continue
                resources.append(entry.get("resource") if isinstance(entry, dict) else entry)
        elif found is not None:
            resources.append(found)
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


def indicator(prediction: dict[str, Any]) -> str:
    """``critical`` for a critical severity; ``warning`` for a high severity or a
    must-not-miss diagnosis in the differential; else ``info``."""
    level = (prediction.get("severity") or {}).get("level")
    if level == "critical":
        return "critical"
    if level == "high" or any(e.get("must_not_miss") for e in prediction.get("differential") or []):
        return "warning"
    return "info"


def summary(prediction: dict[str, Any]) -> str:
    """One line of at most 140 characters: the leading diagnosis, its probability, the
    severity and the must-not-miss count."""
    differential = prediction.get("differential") or []
    level = (prediction.get("severity") or {}).get("level") or "unknown"
    if not differential:
        return f"No differential (severity {level})"[:SUMMARY_MAX]
    top = differential[0]
    urgent = sum(1 for e in differential if e.get("must_not_miss"))
    tail = f"; severity {level}" + (f"; {urgent} must-not-miss" if urgent else "")
    head = f"Most likely: {top.get('name')} ({float(top.get('probability') or 0):.0%})"
    room = SUMMARY_MAX - len(tail)
    if len(head) > room:
        head = head[: room - 1] + "…"
    return head + tail


def detail(prediction: dict[str, Any]) -> str:
    """Markdown: the differential, must-not-miss advice, the explanation, the tests."""
    lines = ["**Differential**", ""]
    for entry in (prediction.get("differential") or [])[:DETAIL_ENTRIES]:
        flag = " — **must not miss**" if entry.get("must_not_miss") else ""
        lines.append(
            f"{entry.get('rank')}. {entry.get('name')} ({entry.get('code')}, "
            f"{entry.get('category')}): {float(entry.get('probability') or 0):.1%}{flag}"
        )
        if entry.get("rule_out"):
            lines.append(f"   - rule out: {entry['rule_out']}")
    rare = [e for e in prediction.get("differential") or [] if e.get("category") == "RARE"]
    if rare:
        lines += [
            "",
            f"**Rare-disease candidates** (P(rare) {float(prediction.get('p_rare') or 0):.1%})",
            "",
        ]
        for entry in rare[:RARE_ENTRIES]:
            matched = (entry.get("phenotypes") or {}).get("n_matched")
            also = f", {matched} matching phenotype(s)" if matched else ""
            lines.append(
                f"- {entry.get('name')} ({entry.get('code')}), rank {entry.get('rank')}: "
                f"{float(entry.get('probability') or 0):.1%}{also}"
            )
    severity = prediction.get("severity") or {}
    lines += ["", f"**Severity**: {severity.get('level')}"]
    if severity.get("note"):
        lines.append(f"({severity['note']})")
    explanation = prediction.get("explanation") or {}
    items = list(explanation.get("features") or []) + list(explanation.get("findings") or [])
    if items:
        lines += ["", f"**Why** ({explanation.get('target')})", ""]
        reasons = dict.fromkeys(f"- {i.get('text')} ({i.get('direction')})" for i in items)
        lines += list(reasons)[:8]
    tests = explanation.get("recommended_tests") or []
    if tests:
        lines += ["", "**Tests that would best separate the leading diagnoses**", ""]
        lines += [f"- {t.get('text')}" for t in tests[:3]]
    for note in prediction.get("input_notes") or []:
        lines.append(f"\n_Note: {note}_")
    return "\n".join(lines)


def suggestions(prediction: dict[str, Any], patient_ref: str | None) -> list[dict[str, Any]]:
    """Proposed orders (draft ``ServiceRequest``) of the tests that best separate the
    leading diagnoses."""
    tests = ((prediction.get("explanation") or {}).get("recommended_tests") or [])[:SUGGESTED_TESTS]
    found = []
    for test in tests:
        if test.get("kind") != "lab":
            continue
        request: dict[str, Any] = {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "proposal",
            "code": {
                "coding": [
                    {"system": "http://loinc.org", "code": test["loinc"], "display": test["name"]}
                ]
            },
        }
        if patient_ref:
            request["subject"] = {"reference": patient_ref}
        found.append(
            {
                "label": f"Order {test['name']}"[:SUMMARY_MAX],
                "uuid": str(
                    uuid.uuid5(uuid.NAMESPACE_URL, f"{prediction['request_id']}/{test['loinc']}")
                ),
                "actions": [
                    {"type": "create", "description": test.get("text"), "resource": request}
                ],
            }
        )
    return found


def prediction_card(prediction: dict[str, Any], mapped: MappedBundle, page_url: str) -> dict:
    """The card of one prediction (``uuid``: the audited ``request_id``)."""
    model = prediction.get("model") or {}
    card: dict[str, Any] = {
        "uuid": str(uuid.UUID(prediction["request_id"])),
        "summary": summary(prediction),
        "indicator": indicator(prediction),
        "detail": detail(prediction),
        "source": {
            "label": f"{model.get('name')} model, version {model.get('version')}",
            "topic": {
                "system": "urn:disease-pipeline:model",
                "code": str(model.get("name")),
                "display": f"version {model.get('version')}",
            },
        },
        "links": [
            {
                "label": "Full differential on the clinician page",
                "url": page_url,
                "type": "absolute",
            }
        ],
    }
    proposed = suggestions(prediction, mapped.patient_ref)
    if proposed:
        card["suggestions"] = proposed
        card["selectionBehavior"] = "any"
    return card


def refusal_card(problems: list[str]) -> dict[str, Any]:
    """The card of patient data the service cannot read (no prediction, no guess)."""
    lines = [f"- {text}" for text in problems[:20]]
    return {
        "uuid": str(uuid.uuid4()),
        "summary": f"Differential not computed: {len(problems)} problem(s) in the patient's data",
        "indicator": "info",
        "detail": "The service refused to guess. Fix or remove:\n\n" + "\n".join(lines),
        "source": {"label": "disease_pipeline input checks"},
    }


def absolute_page_url(request: Request, page_url: str, request_id: str) -> str:
    """The clinician page's absolute URL (cards need one) for a prediction."""
    base = (
        page_url
        if page_url.startswith(("http://", "https://"))
        else str(request.base_url).rstrip("/") + page_url
    )
    return f"{base}#request_id={request_id}"


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def call_hook(
    service: Any, gateway: Any, request: Request, service_id: str, top_k: int
) -> Response:
    """``POST /cds-services/{service_id}`` (see the module doc)."""
    started = time.perf_counter()
    if service_id != SERVICE_ID:
        return error(404, f"no CDS service {service_id!r}: see GET /cds-services")
    waiting = gateway.not_ready(service)
    if waiting is not None:
        return error(503, "service not ready: retry when /readyz answers 200")
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError as problem:
        return error(400, f"the hook request is not JSON: {problem}")
    problem = hook_problem(body)
    if problem is not None:
        return error(*problem)
    principal = request.state.principal
    endpoint = f"/cds-services/{SERVICE_ID}"
    mapped = gateway.map(
        prefetch_bundle(body),
        encounter_id=body["context"].get("encounterId"),
        now=datetime.now(UTC),
    )
    try:
        if mapped.errors:
            gateway.audit_refusal(service, endpoint, principal, raw, mapped.errors)
            return _cards(
                [refusal_card([f"{i.resource}: {i.element}: {i.message}" for i in mapped.errors])]
            )
        prediction = await gateway.predict_mapped(service, mapped, principal, endpoint, top_k)
    except AuditWriteError:
        return error(503, "audit trail unavailable: nothing answered, retry later")
    if isinstance(prediction, Response):  # the service's checks refused a field
        issues = json.loads(prediction.body)["issue"]
        return _cards([refusal_card([i["details"]["text"] for i in issues])])
    url = absolute_page_url(request, gateway.settings.page_url, prediction["request_id"])
    card = prediction_card(prediction, mapped, url)
    service.metrics.latency.labels(endpoint="/cds-services/{service}").observe(
        time.perf_counter() - started
    )
    return _cards([card])


def _cards(cards: list[dict[str, Any]]) -> Response:
    return Response(content=json_bytes({"cards": cards}), media_type="application/json")


def feedback_rows(
    body: Any, service_id: str, principal: Any, lookup
) -> tuple[list[dict], str | None]:
    """``cds_feedback`` rows of a CDS Hooks feedback request, or the problem."""
    items = body.get("feedback") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        return [], "feedback: a non-empty list is required"
    rows = []
    for index, item in enumerate(items):
        where = f"feedback[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("card"), str):
            return [], f"{where}.card: required (the card's uuid)"
        if item.get("outcome") not in OUTCOMES:
            return [], f"{where}.outcome: must be one of {list(OUTCOMES)}"
        request_id = item["card"].replace("-", "")
        prediction = lookup(request_id)
        if prediction is None:
            return [], f"{where}.card: no card {item['card']!r} was answered by this service"
        reason = ((item.get("overrideReason") or {}).get("reason") or {}).get("code")
        accepted = [
            s.get("id") for s in item.get("acceptedSuggestions") or [] if isinstance(s, dict)
        ]
        rows.append(
            {
                "feedback_id": uuid.uuid4().hex,
                "request_id": request_id,
                "received_at": datetime.now(UTC),
                "user_id": principal.user,
                "role": principal.role,
                "service_id": service_id,
                "outcome": item["outcome"],
                "accepted_suggestions": json.dumps(accepted),
                "override_reason": str(reason) if reason else None,
                "model_version": prediction.get("model_version"),
                "predicted_top": json.dumps([code for code, _ in prediction.get("top", [])]),
            }
        )
    return rows, None


async def record_hook_feedback(
    service: Any, store: FeedbackStore, request: Request, service_id: str
) -> Response:
    """``POST /cds-services/{service_id}/feedback``: each item audited, then stored."""
    if service_id != SERVICE_ID:
        return error(404, f"no CDS service {service_id!r}: see GET /cds-services")
    try:
        body = json.loads(await request.body())
    except ValueError as problem:
        return error(400, f"the feedback request is not JSON: {problem}")
    principal = request.state.principal
    rows, problem = feedback_rows(body, service_id, principal, service.predictions.lookup)
    if problem is not None:
        status = 404 if "no card" in problem else 400
        return error(status, problem)
    try:
        service.audit.append(
            [
                {
                    "event": "cds_feedback",
                    "request_id": row["request_id"],
                    "feedback_id": row["feedback_id"],
                    "user": row["user_id"],
                    "role": row["role"],
                    "model_version": row["model_version"],
                    "output": {
                        "outcome": row["outcome"],
                        "override_reason": row["override_reason"],
                    },
                }
                for row in rows
            ]
        )
        for row in rows:
            store.append(row)
    except AuditWriteError:
        return error(503, "audit trail unavailable: nothing stored, retry later")
    except WarehouseBusyError as problem:
        return error(503, f"feedback not stored, retry later: {problem}")
    return JSONResponse({"stored": len(rows)})
