"""The service's HTTP contract beyond what BentoML generates: every status code each
route can answer, with one error body schema, in ``/docs.json``.

BentoML 1.4 documents only 200 (and its own 400/404/500 bodies) for its APIs;
:func:`patch_openapi` (an ASGI middleware) completes the document as it is served.
:data:`PatientItem` is a ``/predict_batch`` item: documented as a ``PatientRecord`` but
validated one by one by the endpoint, so one malformed patient does not refuse its
neighbours.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from disease_pipeline.records import PatientRecord

#: Error body of every 4xx/5xx answer.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "what went wrong, in words"},
        "detail": {
            "type": "array",
            "description": "one item per bad field",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "field": {"type": "string", "description": "dotted path of the field"},
                    "msg": {"type": "string"},
                },
            },
        },
    },
}
DESCRIPTIONS = {
    400: "malformed request (shape, types, ranges, unknown fields); names every bad field",
    401: "missing, unknown, revoked or expired bearer token",
    403: "the token's role lacks the route's permission (or the route has none)",
    404: "unknown request_id",
    413: "request body larger than serving.max_body_bytes",
    412: "CDS Hooks call without the prefetch this service needs",
    422: "content the knowledge base refuses; names every bad field",
    429: "per-token rate limit or the service's concurrency limit reached (Retry-After)",
    503: "model loading, token file unreadable, audit trail or warehouse unavailable",
}
_PROTECTED = (401, 403, 429, 503)
#: Status codes (besides 200) of each route; ``None``: public routes.
ROUTE_STATUSES: dict[tuple[str, str], tuple[int, ...]] = {
    ("POST", "/predict"): (400, 413, 422, *_PROTECTED),
    ("POST", "/predict_batch"): (400, 413, 422, *_PROTECTED),
    ("POST", "/feedback"): (400, 404, 413, 422, *_PROTECTED),
    ("GET", "/model_info"): _PROTECTED,
    ("GET", "/audit/export"): (422, *_PROTECTED),
    ("GET", "/hpo/search"): (422, *_PROTECTED),
    ("POST", "/fhir/predict"): (400, 413, 422, *_PROTECTED),
    ("POST", "/cds-services/{service_id}"): (400, 401, 404, 412, 413, 429, 503),
    ("POST", "/cds-services/{service_id}/feedback"): (400, 401, 404, 413, 429, 503),
}
#: Routes whose own errors are FHIR ``OperationOutcome`` resources (serving.fhir_api);
#: the middleware's refusals (401, 403, 413, 429) keep the error body.
FHIR_ROUTES = frozenset({("POST", "/fhir/predict")})
#: Shape of an ``OperationOutcome`` (validated against the R4B model by the service).
OPERATION_OUTCOME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
        "issue": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"type": "string"},
                    "code": {"type": "string"},
                    "diagnostics": {"type": "string"},
                    "expression": {"type": "array", "items": {"type": "string"}},
                    "location": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
_PUBLIC_STATUSES = (429, 503)


class _PatientShaped:
    """Documents an item as a ``PatientRecord`` while accepting any JSON value."""

    def __get_pydantic_json_schema__(self, core_schema, handler):
        return handler(PatientRecord.__pydantic_core_schema__)


#: A ``/predict_batch`` item (checked by the endpoint, patient by patient).
PatientItem = Annotated[Any, _PatientShaped()]


def complete_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with every route's status codes and the error schema."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorBody"] = ERROR_SCHEMA
    schemas["OperationOutcome"] = OPERATION_OUTCOME_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    outcome = {
        "application/fhir+json": {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}
    }
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = ROUTE_STATUSES.get((method.upper(), path), _PUBLIC_STATUSES)
            responses = {str(k): v for k, v in operation["responses"].items()}
            responses.pop("500", None)
            content = {**error, **outcome} if (method.upper(), path) in FHIR_ROUTES else error
            for code in codes:
                responses[str(code)] = {"description": DESCRIPTIONS[code], "content": content}
            operation["responses"] = responses
    return spec


def patch_openapi(app):
    """ASGI middleware: ``GET /docs.json`` answers the completed specification."""

    async def middleware(scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != "/docs.json":
            await app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def collect(message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            if start.get("status") == 200:
                body = json.dumps(complete_spec(json.loads(body))).encode()
            headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await app(scope, receive, collect)

    return middleware
