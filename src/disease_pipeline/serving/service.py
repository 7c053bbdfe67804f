"""The clinician service: ``bentoml serve disease_pipeline.serving.service:DiseaseService``.

BentoML endpoints (POST, JSON): ``/predict`` (one patient), ``/predict_batch`` (many),
``/feedback`` (the confirmed diagnosis of an earlier prediction). A FastAPI app mounted
on the same server adds ``GET /model_info``, ``GET /audit/export``, ``GET /hpo/search``
and the clinician page at ``/ui/``. BentoML provides ``/healthz``, ``/readyz`` (503
until the predictor is loaded) and Prometheus ``/metrics``.

Every request passes :class:`~disease_pipeline.serving.guard.GuardMiddleware` (body
size limit, security headers) and :class:`~disease_pipeline.serving.auth.BearerAuthMiddleware`
(tokens, roles, deny by default, per-token rate limit; health, readiness, metrics, docs
and the page are public); BentoML's ``traffic.max_concurrency`` bounds the requests in
flight. Concurrent ``/predict`` calls are merged into one model call
(:class:`~disease_pipeline.serving.batching.MicroBatcher`); ``/predict_batch`` answers
each patient on its own. Every prediction, refused input and feedback is appended to
the HMAC-chained audit trail before the response.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

import bentoml
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from pydantic import Field, ValidationError

from disease_pipeline.json_types import json_bytes
from disease_pipeline.records import PatientRecord
from disease_pipeline.serving import cds_hooks
from disease_pipeline.serving.alerts import AlertBusyError, AlertStore, AlertUpdate
from disease_pipeline.serving.audit import AuditLog, AuditWriteError
from disease_pipeline.serving.auth import BearerAuthMiddleware, Principal, bootstrap_token
from disease_pipeline.serving.batching import MicroBatcher
from disease_pipeline.serving.challenger import ShadowScorer, ab_arm
from disease_pipeline.serving.config import audit_key, load_config, service_key
from disease_pipeline.serving.contract import PatientItem, patch_openapi
from disease_pipeline.serving.ehr_auth import EhrTokenVerifier
from disease_pipeline.serving.engine import PredictionEngine, load_predictor
from disease_pipeline.serving.feedback import (
    FeedbackStore,
    PredictionIndex,
    WarehouseBusyError,
    feedback_row,
    record_feedback,
)
from disease_pipeline.serving.fhir_api import BUNDLE_BODY, FhirGateway, FhirSettings
from disease_pipeline.serving.guard import (
    GuardMiddleware,
    route_template,
    template_bentoml_metrics,
)
from disease_pipeline.serving.hpo_search import HpoSearch
from disease_pipeline.serving.inputs import InputError, RecordNormaliser, check_disease_code
from disease_pipeline.serving.metrics import service_metrics
from disease_pipeline.serving.model_info import lab_vocabulary, model_info
from disease_pipeline.serving.monitoring import start_monitoring, start_shadow_log
from disease_pipeline.serving.predicting import (
    PatientJob,
    PatientPredictor,
    input_error_entry,
    schema_error_entry,
)
from disease_pipeline.serving.review import ReviewQueue
from disease_pipeline.serving.runtime import (
    limit_threads,
    redact_request_errors,
    tune_collector,
)

logger = logging.getLogger("disease_pipeline.serving")
redact_request_errors()  # a refused body's values never reach the server's log

CONFIG = load_config()
FHIR = FhirSettings.from_config(CONFIG)  # FHIR R4 and CDS Hooks: docs/fhir.md
STATIC_DIR = Path(str(files("disease_pipeline.serving") / "static"))
TopK = Annotated[int, Field(ge=1, le=CONFIG.max_top_k)]

pages = FastAPI(title="disease_pipeline clinician page", docs_url=None, redoc_url=None)
pages.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")


@pages.exception_handler(RequestValidationError)
async def _query_error(_: Request, error: RequestValidationError) -> JSONResponse:
    """Bad query parameters: 422 in the service's error schema (``error``, ``detail``)."""
    detail = [
        {"loc": list(item["loc"]), "field": ".".join(map(str, item["loc"])), "msg": item["msg"]}
        for item in error.errors()
    ]
    fields = ", ".join(d["field"] for d in detail)
    return JSONResponse({"error": f"invalid query: {fields}", "detail": detail}, 422)


def _count_error(path: str, status: int) -> None:
    service_metrics().error(route_template(path), status)


def _error(status: int, body: dict, ctx: bentoml.Context | None = None) -> JSONResponse:
    """A JSON error response; BentoML API methods also set ``ctx``'s status, which
    BentoML applies to the returned response."""
    if ctx is not None:
        ctx.response.status_code = status
    return JSONResponse(body, status_code=status)


def _json(body: dict) -> Response:
    """A 200 JSON response serialised once by orjson (BentoML's own path would dump the
    dict through pydantic and the standard json module: ~15 % of a large batch)."""
    return Response(content=json_bytes(body), media_type="application/json")


def _principal(request: Request) -> Principal:
    return request.state.principal


template_bentoml_metrics()


@bentoml.service(
    name="disease_pipeline",
    workers=CONFIG.workers,
    traffic={"timeout": 120, "max_concurrency": CONFIG.max_concurrency},
    resources={"cpu": "1"},
    envs=[{"name": "BENTOML_DO_NOT_TRACK", "value": "true"}],
    **({"ssl": CONFIG.ssl} if CONFIG.ssl else {}),
)
@bentoml.asgi_app(pages, path="/")
class DiseaseService:
    """Differential diagnosis, severity and explanation for clinicians."""

    bento_model = bentoml.models.BentoModel(CONFIG.model_tag)

    def __init__(self) -> None:
        self.key = service_key(CONFIG)
        if bootstrap_token(CONFIG):
            logger.warning(
                "No access token was configured: created one for user 'local' (clinician) "
                "in %s (readable only by this account; delete it once copied) - open /ui/ "
                "and paste it. Add more with `python -m disease_pipeline.serving.auth "
                "add-token`.",
                CONFIG.first_token_file,
            )
        self.audit = AuditLog(CONFIG.audit_log, key=audit_key(CONFIG))
        self.predictions = PredictionIndex(CONFIG.audit_log)
        self.feedback_store = FeedbackStore(CONFIG.feedback_warehouse, CONFIG.feedback_table)
        # the screen pipeline's alerts (docs/screening.md), in the same warehouse
        self.alerts = AlertStore(CONFIG.feedback_warehouse)
        # the active_learning pipeline's review queue, in the same warehouse
        self.review = ReviewQueue(CONFIG.feedback_warehouse, feedback_table=CONFIG.feedback_table)
        self.prediction_log = start_monitoring(CONFIG, self.key)  # docs/monitoring.md
        self.fhir = FhirGateway(FHIR)
        self.cds_feedback = FeedbackStore(
            CONFIG.feedback_warehouse, "cds_feedback", columns=cds_hooks.CDS_FEEDBACK_COLUMNS
        )
        self.metrics = service_metrics()
        self.engine: PredictionEngine | None = None
        self.patients: PatientPredictor | None = None
        self.batcher: MicroBatcher | None = None
        self.shadow: ShadowScorer | None = None
        self.shadow_log: Any = None
        self.hpo: HpoSearch | None = None
        self.info: dict[str, Any] = {}
        self.load_error: str | None = None
        self.started = time.perf_counter()
        threading.Thread(target=self._load, name="load-predictor", daemon=True).start()

    def _load(self) -> None:
        """Load the predictor and the vocabularies, then answer one warm-up request."""
        try:
            limit_threads(CONFIG.threads)
            stored = self.bento_model
            predictor = load_predictor(Path(stored.path))
            normaliser = RecordNormaliser(on_unknown_term=self.metrics.unknown_term)
            self.info = model_info(stored, predictor)
            engine = PredictionEngine(predictor, self.info["model"], normaliser)
            self.hpo = HpoSearch(normaliser.ontology)
            engine.predict([_WARM_UP], top_k=CONFIG.top_k)
            tune_collector()
            self.patients = PatientPredictor(
                engine,
                self.audit,
                self.key,
                self.metrics,
                self.info["model"]["version"],
                prediction_log=self.prediction_log,
                **self._challenger(normaliser),
            )
            if self.prediction_log is not None:
                self.prediction_log.model.update(self.info["model"])
            self.batcher = MicroBatcher(
                self.patients.run, CONFIG.batch_max_size, CONFIG.batch_max_wait_ms
            )
            self.fhir.load()
            self.engine = engine
            logger.info(
                "predictor %s ready in %.1f s",
                self.info["model"]["bento_tag"],
                time.perf_counter() - self.started,
            )
        except Exception as error:  # reported by /readyz and every prediction call
            self.load_error = f"{type(error).__name__}: {error}"
            logger.exception("the predictor could not be loaded")

    def _challenger(self, normaliser: RecordNormaliser) -> dict[str, Any]:
        """The champion/challenger arguments of :class:`PatientPredictor` for
        ``serving.challenger`` (docs/retraining.md §6): none when off; the challenger's
        engine and the sticky patient split for ``ab``; the shadow scorer for ``shadow``."""
        settings = CONFIG.challenger
        if settings.mode == "off":
            return {}
        stored = bentoml.models.get(settings.model_tag)
        model = model_info(stored, None)["model"]
        self.info["challenger"] = {"mode": settings.mode, **model}
        if settings.mode == "ab":
            engine = PredictionEngine(load_predictor(Path(stored.path)), model, normaliser)
            engine.predict([_WARM_UP], top_k=CONFIG.top_k)
            share = settings.ab_share
            logger.info("A/B: %.0f %% of patients answered by %s", 100 * share, stored.tag)
            return {
                "challenger_engine": engine,
                "route": lambda record: ab_arm(self.key, record.patient_id, share),
            }
        self.shadow_log = start_shadow_log(CONFIG, self.key, model)
        self.shadow = ShadowScorer(
            Path(stored.path),
            model,
            self.shadow_log.add,
            threads=CONFIG.threads,
            max_waiting=settings.shadow_max_waiting,
            metrics=self.metrics,
        )
        logger.info("shadow: %s scores every answered patient after the answer", stored.tag)
        return {"shadow": self.shadow}

    @bentoml.on_shutdown
    def _close_prediction_log(self) -> None:
        """Write the buffered prediction-log rows (and the shadow challenger's outputs
        still queued) before the worker exits."""
        if self.shadow is not None:
            self.shadow.close()
        if self.shadow_log is not None:
            self.shadow_log.close()
        if self.prediction_log is not None:
            self.prediction_log.close()

    def __is_ready__(self) -> bool:
        """``/readyz``: 200 once the predictor is loaded and has answered a warm-up."""
        return self.engine is not None

    def __is_alive__(self) -> bool:
        """``/healthz``: 503 when loading failed (restarting will not help without a fix,
        but an orchestrator sees it; the reason is in the log and in 503 answers)."""
        return self.load_error is None

    # ---- predictions ---------------------------------------------------------------
    def _not_ready(self, ctx: bentoml.Context | None = None) -> JSONResponse:
        detail = self.load_error or "the model is still loading; retry when /readyz answers 200"
        return _error(503, {"error": f"service not ready: {detail}"}, ctx)

    def _unaudited(self, error: AuditWriteError, ctx=None) -> JSONResponse:
        logger.error("%s", error)
        return _error(503, {"error": "audit trail unavailable: nothing answered, retry later"}, ctx)

    @bentoml.api(route="/predict")
    async def predict(
        self, patient: PatientRecord, ctx: bentoml.Context, top_k: TopK = CONFIG.top_k
    ) -> dict:
        """Differential (top ``top_k``, default 10), P(rare), severity and explanation for
        one patient. Concurrent calls are answered by one model call (adaptive batching);
        each answer is the one the patient gets alone."""
        if self.batcher is None:
            return self._not_ready(ctx)
        started = time.perf_counter()
        job = PatientJob(patient, top_k, _principal(ctx.request), "/predict", "patient")
        try:
            response = await self.batcher.submit(job)
        except InputError as error:
            return _error(422, error.as_response(), ctx)
        except AuditWriteError as error:
            return self._unaudited(error, ctx)
        self.metrics.latency.labels(endpoint="/predict").observe(time.perf_counter() - started)
        return _json(response)

    @bentoml.api(route="/predict_batch")
    def predict_batch(
        self, patients: list[PatientItem], ctx: bentoml.Context, top_k: TopK = CONFIG.top_k
    ) -> dict:
        """The same output as ``/predict`` for each patient, in input order. A refused
        patient's entry is its error (``error``, ``status``, ``index``, ``detail``); the
        others are predicted. 422 when no patient could be predicted."""
        if not patients or len(patients) > CONFIG.max_batch_size:
            return _error(
                422,
                {
                    "error": f"patients: send 1 to {CONFIG.max_batch_size} patients "
                    f"(got {len(patients)})",
                    "detail": [{"loc": ["patients"], "field": "patients", "msg": "bad size"}],
                },
                ctx,
            )
        if self.patients is None:
            return self._not_ready(ctx)
        started = time.perf_counter()
        principal = _principal(ctx.request)
        entries: list[dict | None] = [None] * len(patients)
        # validated, predicted, audited and logged model_call_size patients at a time;
        # each parsed patient is dropped from the request once validated, so a large
        # batch holds one call's records beside its answers, not every record at once
        size = CONFIG.model_call_size
        for start in range(0, len(patients), size):
            jobs, positions = [], []
            for index in range(start, min(start + size, len(patients))):
                raw, patients[index] = patients[index], None
                where = f"patients[{index}]"
                try:
                    record = PatientRecord.model_validate(raw)
                except ValidationError as error:
                    entries[index] = schema_error_entry(error, where, index)
                    continue
                jobs.append(PatientJob(record, top_k, principal, "/predict_batch", where))
                positions.append(index)
            try:
                results = self.patients.run(jobs) if jobs else []
            except AuditWriteError as error:
                return self._unaudited(error, ctx)
            for index, result in zip(positions, results, strict=True):
                entries[index] = (
                    input_error_entry(result, index) if isinstance(result, InputError) else result
                )
        refused = [e for e in entries if "error" in e]
        if len(refused) == len(entries):
            detail = [d for e in refused for d in e["detail"]]
            fields = ", ".join(d["field"] for d in detail)
            body = {"error": f"no patient could be predicted: {fields}", "detail": detail}
            return _error(422, body, ctx)
        self.metrics.latency.labels(endpoint="/predict_batch").observe(
            time.perf_counter() - started
        )
        return _json(
            {
                "count": len(entries),
                "predicted": len(entries) - len(refused),
                "refused": len(refused),
                "predictions": entries,
            }
        )

    @bentoml.api(route="/feedback")
    def feedback(
        self,
        request_id: Annotated[str, Field(min_length=8, max_length=64)],
        confirmed_code: Annotated[str, Field(min_length=2, max_length=32)],
        ctx: bentoml.Context,
        notes: Annotated[str | None, Field(max_length=4000)] = None,
    ) -> dict:
        """Store the clinician's confirmed diagnosis for the prediction ``request_id``."""
        started = time.perf_counter()
        principal = _principal(ctx.request)
        try:
            code = check_disease_code(confirmed_code, "confirmed_code")
        except InputError as error:
            return _error(422, error.as_response(), ctx)
        prediction = self.predictions.lookup(request_id)
        if prediction is None:
            return _error(
                404,
                {"error": f"request_id: no prediction {request_id!r} in the audit trail"},
                ctx,
            )
        row = feedback_row(
            request_id,
            code,
            notes,
            prediction,
            user=principal.user,
            role=principal.role,
            keep_notes=CONFIG.feedback_notes == "scrub",
        )
        latency_ms = (time.perf_counter() - started) * 1000
        try:
            record_feedback(self.audit, self.feedback_store, row, latency_ms)
        except AuditWriteError as error:
            return self._unaudited(error, ctx)
        except WarehouseBusyError as error:
            return _error(503, {"error": f"feedback not stored, retry later: {error}"}, ctx)
        self.metrics.feedback.labels(rank=str(row["confirmed_rank"] or "none")).inc()
        return {
            "feedback_id": row["feedback_id"],
            "request_id": request_id,
            "confirmed_code": code,
            "confirmed_rank": row["confirmed_rank"],
            "stored_in": f"{CONFIG.feedback_warehouse.name}:{CONFIG.feedback_table}",
            "notes_stored": row["notes"] is not None,
        }

    # ---- pages and admin (FastAPI, GET) ---------------------------------------------
    @pages.get("/model_info")
    def get_model_info(self) -> JSONResponse:
        """Model version, training date, data version, evaluation metrics, diseases."""
        if self.engine is None:
            return self._not_ready()
        return JSONResponse(self.info)

    @pages.get("/audit/export")
    def audit_export(
        self, request: Request, since_seq: Annotated[int, Query(ge=0)] = 0
    ) -> StreamingResponse:
        """The audit trail as JSON lines (entries with ``seq > since_seq``); headers
        ``X-Audit-Entries`` and ``X-Audit-Head`` give the chain head to anchor."""
        principal = _principal(request)
        try:
            self.audit.append(
                [{"event": "audit_export", "user": principal.user, "role": principal.role}]
            )
        except AuditWriteError as error:
            return self._unaudited(error)
        seq, head = self.audit.head
        size = CONFIG.audit_log.stat().st_size
        return StreamingResponse(
            _read_entries(CONFIG.audit_log, size, since_seq),
            media_type="application/x-ndjson",
            headers={"X-Audit-Entries": str(seq), "X-Audit-Head": head},
        )

    @pages.get("/alerts")
    def list_alerts(
        self,
        request: Request,
        state: Annotated[str | None, Query(max_length=16)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ):
        """The screening alerts (docs/screening.md), critical first; audited."""
        principal = _principal(request)
        try:
            alerts = self.alerts.list_alerts(state, limit)
        except ValueError as error:
            return _error(422, {"error": str(error)})
        except AlertBusyError as error:
            return _error(503, {"error": f"alerts not readable, retry later: {error}"})
        entry = {"event": "alerts_view", "user": principal.user, "role": principal.role}
        try:
            self.audit.append([entry | {"state": state, "count": len(alerts)}])
        except AuditWriteError as error:
            return self._unaudited(error)
        return {"alerts": alerts}

    @pages.get("/review")
    def list_review(self, request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50):
        """The review queue (docs/retraining.md): the most informative recent predictions
        still without a confirmed diagnosis, in queue order; audited. Confirm one with
        ``POST /feedback``."""
        principal = _principal(request)
        try:
            cases = self.review.pending(limit)
        except AlertBusyError as error:
            return _error(503, {"error": f"review queue not readable, retry later: {error}"})
        entry = {"event": "review_view", "user": principal.user, "role": principal.role}
        try:
            self.audit.append([entry | {"count": len(cases)}])
        except AuditWriteError as error:
            return self._unaudited(error)
        return {"cases": cases}

    @pages.post("/alerts/update")
    def update_alert(self, request: Request, body: AlertUpdate):
        """Acknowledge or close one alert as the calling clinician; audited first."""
        principal = _principal(request)
        entry = {"event": "alert_update", "user": principal.user, "role": principal.role}
        entry |= {"alert_id": body.alert_id, "action": body.action}
        try:
            self.audit.append([entry])
        except AuditWriteError as error:
            return self._unaudited(error)
        try:
            return self.alerts.update(body.alert_id, body.action, principal.user)
        except KeyError as error:
            status, problem = 404, str(error.args[0])
        except ValueError as error:
            status, problem = 409, str(error)
        except AlertBusyError as error:
            status, problem = 503, f"alert not updated, retry later: {error}"
        try:
            self.audit.append([entry | {"event": "alert_update_refused", "status": status}])
        except AuditWriteError as error:
            return self._unaudited(error)
        return _error(status, {"error": problem})

    @pages.get("/hpo/search")
    def hpo_search(
        self,
        q: Annotated[str, Query(max_length=100)] = "",
        limit: Annotated[int, Query(ge=0, le=50)] = 0,
    ):
        """HPO phenotype terms whose name matches ``q`` (for autocomplete)."""
        if self.hpo is None:
            return self._not_ready()
        cap = min(limit or CONFIG.hpo_search_limit, 50)
        return {"query": q, "results": self.hpo.search(q, cap)}

    # ---- FHIR R4 and CDS Hooks (serving.fhir_api, serving.cds_hooks) --------------
    @pages.post("/fhir/predict", openapi_extra={"requestBody": BUNDLE_BODY})
    async def fhir_predict(self, request: Request) -> Response:
        """A FHIR R4 Bundle → a RiskAssessment beside the page's JSON (``?top_k=``)."""
        return await self.fhir.predict(self, request, CONFIG)

    @pages.get("/cds-services")
    def cds_discovery(self) -> dict:
        """CDS Hooks discovery: the services, their hooks and prefetch templates."""
        return cds_hooks.discovery()

    @pages.post("/cds-services/{service_id}")
    async def cds_call(self, service_id: str, request: Request) -> Response:
        """A CDS Hooks call (the EHR's JWT): cards of the differential."""
        return await cds_hooks.call_hook(self, self.fhir, request, service_id, CONFIG.top_k)

    @pages.post("/cds-services/{service_id}/feedback")
    async def cds_feedback_call(self, service_id: str, request: Request) -> Response:
        """CDS Hooks feedback: accepted and overridden cards."""
        return await cds_hooks.record_hook_feedback(self, self.cds_feedback, request, service_id)

    @pages.get("/ui")
    def ui_redirect(self) -> RedirectResponse:
        """``/ui`` → ``/ui/``."""
        return RedirectResponse("/ui/")

    @pages.get("/ui/")
    def ui_page(self) -> FileResponse:
        """The clinician page."""
        return FileResponse(STATIC_DIR / "index.html")

    @pages.get("/ui/vocabulary")
    def ui_vocabulary(self) -> dict:
        """Vitals and labs the page offers: LOINC, name, canonical and accepted units."""
        return {"measurements": lab_vocabulary(), "top_k": CONFIG.top_k, "now": _now()}


DiseaseService.add_asgi_middleware(
    GuardMiddleware, max_body_bytes=CONFIG.max_body_bytes, on_error=_count_error
)
DiseaseService.add_asgi_middleware(
    BearerAuthMiddleware,
    on_error=_count_error,
    ehr=EhrTokenVerifier(FHIR.cds).verify if FHIR.cds else None,
)
DiseaseService.add_asgi_middleware(patch_openapi)

_WARM_UP = PatientRecord(
    age=40, sex="female", symptoms=[{"code": "HP:0001945"}], vitals=[], labs=[]
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _read_entries(path: Path, size: int, since_seq: int):
    """The audit file's bytes up to ``size`` (a snapshot), skipping ``seq <= since_seq``."""
    with path.open("rb") as handle:
        remaining = size
        for line in handle:
            if remaining <= 0:
                break
            remaining -= len(line)
            if since_seq and json.loads(line)["seq"] <= since_seq:
                continue
            yield line
