"""FHIR R4 in, ``RiskAssessment`` out: ``POST /fhir/predict`` of the clinician service.

The body is a FHIR R4 ``Bundle`` (Patient; Condition and Observation coded in HPO,
SNOMED CT, ICD-10 and LOINC with UCUM units; an Encounter for the date). It is mapped
by :mod:`disease_pipeline.fhir` (the mapping the ingestion pipeline uses for exports)
into a ``PatientRecord`` that takes the ``/predict`` path (adaptive batching, the same
checks, the audit trail, the metrics). The answer holds the FHIR ``RiskAssessment``
and, beside it, the JSON the clinician page reads (``prediction``); resources that
were not used are listed in an ``OperationOutcome`` of warnings. A bundle with a bad
resource is refused (422, or 400 when the body is not a JSON Bundle) with an
``OperationOutcome`` naming the resource, the element and the problem.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from disease_pipeline.fhir.answers import operation_outcome, risk_assessment
from disease_pipeline.fhir.patient import BundleIssue, MappedBundle, map_bundle
from disease_pipeline.fhir.vocabulary import Vocabulary, read_parameters
from disease_pipeline.json_types import json_bytes
from disease_pipeline.serving.audit import AuditWriteError, keyed_digest
from disease_pipeline.serving.config import ServingConfig
from disease_pipeline.serving.ehr_auth import CdsSettings
from disease_pipeline.serving.inputs import InputError
from disease_pipeline.serving.predicting import PatientJob

logger = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
#: OpenAPI request body of ``/fhir/predict`` (a Bundle; checked by the endpoint).
BUNDLE_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "a FHIR R4 Bundle (Patient, Encounter, Condition, Observation)",
                "required": ["resourceType", "entry"],
                "properties": {
                    "resourceType": {"type": "string", "enum": ["Bundle"]},
                    "type": {"type": "string"},
                    "entry": {"type": "array", "items": {"type": "object"}},
                },
            }
        }
    },
}


@dataclass(frozen=True)
class FhirSettings:
    """``serving.fhir`` and ``serving.cds_hooks`` of the serving configuration."""

    parameters_file: Path
    page_url: str
    cds: CdsSettings | None

    @classmethod
    def from_config(cls, config: ServingConfig) -> FhirSettings:
        serving = (config.document or {}).get("serving") or {}
        fhir = serving.get("fhir") or {}
        cds = serving.get("cds_hooks")
        return cls(
            parameters_file=Path(
                fhir.get("parameters_file") or "conf/base/parameters_ingestion.yml"
            ),
            page_url=str(fhir.get("page_url") or "/ui/"),
            cds=CdsSettings.from_dict(cds, config.source) if cds else None,
        )


class FhirGateway:
    """The FHIR vocabulary (loaded once, in the background) and the FHIR answers."""

    def __init__(self, settings: FhirSettings) -> None:
        self.settings = settings
        self.vocab: Vocabulary | None = None
        self.load_error: str | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Snapshot the knowledge base with the ingestion parameters (about 5 s)."""
        with self._lock:
            if self.vocab is not None:
                return
            try:
                self.vocab = Vocabulary.from_knowledge(
                    read_parameters(self.settings.parameters_file)
                )
            except Exception as error:  # reported by every FHIR call (503)
                self.load_error = f"{type(error).__name__}: {error}"
                logger.exception("the FHIR vocabulary could not be loaded")

    def not_ready(self, service: Any) -> Response | None:
        """A 503 ``OperationOutcome`` while the model or the vocabulary loads."""
        if service.batcher is not None and self.vocab is not None:
            return None
        detail = service.load_error or self.load_error or "loading; retry when /readyz answers 200"
        issue = BundleIssue("service", "service", "unsupported_resource", f"not ready: {detail}")
        return fhir_response(operation_outcome([issue]), 503)

    def map(self, bundle: Any, **options: Any) -> MappedBundle:
        assert self.vocab is not None, "the FHIR vocabulary is not loaded"
        return map_bundle(bundle, self.vocab, **options)

    async def predict_mapped(
        self, service: Any, mapped: MappedBundle, principal: Any, endpoint: str, top_k: int
    ) -> dict[str, Any] | Response:
        """The prediction of a mapped bundle through the ``/predict`` path, or the 422
        ``OperationOutcome`` whose issues name the resources behind the refused fields."""
        assert mapped.record is not None
        job = PatientJob(mapped.record, top_k, principal, endpoint, "record")
        try:
            return await service.batcher.submit(job)
        except InputError as error:
            issues = [refused_field(mapped, e.field, e.message) for e in error.errors]
            return fhir_response(operation_outcome(issues), 422)

    def audit_refusal(
        self, service: Any, endpoint: str, principal: Any, body: bytes, issues
    ) -> None:
        """A refused bundle in the audit trail (its keyed digest, the elements at fault and
        why; no resource id)."""
        service.audit.append(
            [
                {
                    "event": "refused",
                    "request_id": None,
                    "endpoint": endpoint,
                    "user": principal.user,
                    "role": principal.role,
                    "input_hash": keyed_digest(
                        service.key, "input", body.decode("utf-8", "replace")
                    ),
                    "model_version": (service.info.get("model") or {}).get("version"),
                    # the element and the reason only: a resource's id is the EHR's own
                    # identifier (Patient/<id>), which the audit trail never holds
                    "output": {"errors": [f"{i.element} {i.reason}" for i in issues][:50]},
                }
            ]
        )

    async def predict(self, service: Any, request: Request, config: ServingConfig) -> Response:
        """``POST /fhir/predict`` (see the module doc)."""
        started = time.perf_counter()
        waiting = self.not_ready(service)
        if waiting is not None:
            return waiting
        principal = request.state.principal
        body = await request.body()
        top_k, problem = parse_top_k(request.query_params.get("top_k"), config)
        if problem is not None:
            return fhir_response(operation_outcome([problem]), 400)
        try:
            bundle = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            issue = BundleIssue("Bundle", "Bundle", "malformed_json", f"not JSON: {error}")
            return fhir_response(operation_outcome([issue]), 400)
        mapped = self.map(bundle)
        try:
            if mapped.errors:
                self.audit_refusal(service, "/fhir/predict", principal, body, mapped.errors)
                shaped = isinstance(bundle, dict) and bundle.get("resourceType") == "Bundle"
                status = 422 if shaped else 400
                return fhir_response(operation_outcome(mapped.issues), status)
            prediction = await self.predict_mapped(
                service, mapped, principal, "/fhir/predict", top_k
            )
        except AuditWriteError as error:
            logger.error("%s", error)
            issue = BundleIssue(
                "service", "audit", "unsupported_resource", "audit trail unavailable"
            )
            return fhir_response(operation_outcome([issue]), 503)
        if isinstance(prediction, Response):
            return prediction
        answer: dict[str, Any] = {
            "riskAssessment": risk_assessment(mapped, prediction),
            "prediction": prediction,
        }
        warnings = [i for i in mapped.issues if i.severity == "warning"]
        if warnings:
            answer["operationOutcome"] = operation_outcome(warnings)
        service.metrics.latency.labels(endpoint="/fhir/predict").observe(
            time.perf_counter() - started
        )
        return Response(content=json_bytes(answer), media_type="application/json")


def refused_field(mapped: MappedBundle, field: str, message: str) -> BundleIssue:
    """The issue of a record field the service's checks refused (``record.labs[0].unit``)."""
    path = field.removeprefix("record").lstrip(".")
    resource, element = mapped.locate(path) if path else ("Bundle", "Bundle")
    return BundleIssue(resource, element, "unknown_code", message)


def parse_top_k(raw: str | None, config: ServingConfig) -> tuple[int, BundleIssue | None]:
    """``top_k`` query parameter (default ``serving.top_k``), or the issue naming it."""
    if raw is None:
        return config.top_k, None
    if raw.isdigit() and 1 <= int(raw) <= config.max_top_k:
        return int(raw), None
    message = f"top_k must be an integer from 1 to {config.max_top_k} (got {raw[:20]!r})"
    return 0, BundleIssue("request", "top_k", "malformed_value", message)


def fhir_response(resource: dict[str, Any], status: int) -> Response:
    """A FHIR resource as ``application/fhir+json`` with ``status``."""
    return Response(content=json_bytes(resource), status_code=status, media_type=FHIR_JSON)
