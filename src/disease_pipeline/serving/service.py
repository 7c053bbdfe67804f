"""The clinician service: ``bentoml serve disease_pipeline.serving.service:DiseaseService``.

BentoML endpoints (POST, JSON): ``/predict`` (one patient), ``/predict_batch`` (many),
``/feedback`` (the confirmed diagnosis of an earlier prediction). A FastAPI app mounted
on the same server adds ``GET /model_info``, ``GET /audit/export``, ``GET /hpo/search``
and the clinician page at ``/ui/``. BentoML provides ``/healthz``, ``/readyz`` (503
until the predictor is loaded) and Prometheus ``/metrics``.

Every request passes :class:`~disease_pipeline.serving.auth.BearerAuthMiddleware`
(health, readiness, metrics, docs and the page are public). Every prediction, refused
input and feedback is appended to the hash-chained audit trail before the response.
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
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from pydantic import Field

from disease_pipeline.json_types import json_bytes
from disease_pipeline.records import PatientRecord
from disease_pipeline.serving.audit import AuditLog, keyed_digest
from disease_pipeline.serving.auth import BearerAuthMiddleware, Principal, bootstrap_token
from disease_pipeline.serving.config import load_config, service_key
from disease_pipeline.serving.engine import PredictionEngine, load_predictor, output_summary
from disease_pipeline.serving.feedback import (
    FeedbackStore,
    PredictionIndex,
    WarehouseBusyError,
    feedback_row,
)
from disease_pipeline.serving.hpo_search import HpoSearch
from disease_pipeline.serving.inputs import InputError, RecordNormaliser, check_disease_code
from disease_pipeline.serving.metrics import service_metrics
from disease_pipeline.serving.model_info import lab_vocabulary, model_info
from disease_pipeline.serving.runtime import limit_threads, tune_collector

logger = logging.getLogger("disease_pipeline.serving")

CONFIG = load_config()
STATIC_DIR = Path(str(files("disease_pipeline.serving") / "static"))
TopK = Annotated[int, Field(ge=1, le=CONFIG.max_top_k)]

pages = FastAPI(title="disease_pipeline clinician page", docs_url=None, redoc_url=None)
pages.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")


def _count_error(path: str, status: int) -> None:
    service_metrics().error(path, status)


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


@bentoml.service(
    name="disease_pipeline",
    workers=CONFIG.workers,
    traffic={"timeout": 120},
    resources={"cpu": "1"},
    envs=[{"name": "BENTOML_DO_NOT_TRACK", "value": "true"}],
)
@bentoml.asgi_app(pages, path="/")
class DiseaseService:
    """Differential diagnosis, severity and explanation for clinicians."""

    bento_model = bentoml.models.BentoModel(CONFIG.model_tag)

    def __init__(self) -> None:
        self.key = service_key(CONFIG)
        first_token = bootstrap_token(CONFIG)
        if first_token:
            logger.warning(
                "No access token was configured: created one for user 'local' (clinician), "
                "shown only now: %s  - open /ui/ and paste it. Its hash is in %s; add more "
                "with `python -m disease_pipeline.serving.auth add-token`.",
                first_token,
                CONFIG.tokens_file,
            )
        self.audit = AuditLog(CONFIG.audit_log)
        self.predictions = PredictionIndex(CONFIG.audit_log)
        self.feedback_store = FeedbackStore(CONFIG.feedback_warehouse, CONFIG.feedback_table)
        self.metrics = service_metrics()
        self.engine: PredictionEngine | None = None
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
            self.engine = engine
            logger.info(
                "predictor %s ready in %.1f s",
                self.info["model"]["bento_tag"],
                time.perf_counter() - self.started,
            )
        except Exception as error:  # reported by /readyz and every prediction call
            self.load_error = f"{type(error).__name__}: {error}"
            logger.exception("the predictor could not be loaded")

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

    def _run(self, endpoint: str, records: list[PatientRecord], top_k, where: str, ctx):
        """Check, predict and audit; returns the responses or an error response."""
        started = time.perf_counter()
        principal = _principal(ctx.request)
        if self.engine is None:
            return self._not_ready(ctx), None
        try:
            responses, _ = self.engine.predict(records, top_k=top_k, where=where)
        except InputError as error:
            self.audit.append([self._audit_refusal(endpoint, principal, records, error)])
            return _error(422, error.as_response(), ctx), None
        latency_ms = (time.perf_counter() - started) * 1000
        version = self.info["model"]["version"]
        entries = []
        for record, response in zip(records, responses, strict=True):
            summary = output_summary(response)
            self.metrics.prediction(summary["category"], summary["severity"])
            entries.append(
                {
                    "event": "prediction",
                    "endpoint": endpoint,
                    "request_id": response["request_id"],
                    "user": principal.user,
                    "role": principal.role,
                    "patient": self._pseudonym(record.patient_id),
                    "input_hash": keyed_digest(self.key, "input", record.model_dump_json()),
                    "output": summary,
                    "model_version": version,
                    "latency_ms": round(latency_ms / len(records), 3),
                    "batch_size": len(records),
                }
            )
        self.audit.append(entries)
        self.metrics.latency.labels(endpoint=endpoint).observe(time.perf_counter() - started)
        return None, responses

    def _pseudonym(self, patient_id: str | None) -> str | None:
        return keyed_digest(self.key, "patient", patient_id) if patient_id else None

    def _audit_refusal(self, endpoint, principal, records, error: InputError) -> dict:
        return {
            "event": "refused",
            "endpoint": endpoint,
            "request_id": None,
            "user": principal.user,
            "role": principal.role,
            "input_hash": keyed_digest(
                self.key, "input", "\n".join(r.model_dump_json() for r in records)
            ),
            "output": {"errors": [e.field for e in error.errors]},
            "model_version": self.info.get("model", {}).get("version"),
        }

    @bentoml.api(route="/predict")
    def predict(
        self, patient: PatientRecord, ctx: bentoml.Context, top_k: TopK = CONFIG.top_k
    ) -> dict:
        """Differential (top ``top_k``, default 10), P(rare), severity and explanation for
        one patient."""
        failure, responses = self._run("/predict", [patient], top_k, "patient", ctx)
        return failure or _json(responses[0])

    @bentoml.api(route="/predict_batch")
    def predict_batch(
        self, patients: list[PatientRecord], ctx: bentoml.Context, top_k: TopK = CONFIG.top_k
    ) -> dict:
        """The same output as ``/predict`` for each patient, in input order."""
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
        failure, responses = self._run("/predict_batch", patients, top_k, "patients", ctx)
        if failure is not None:
            return failure
        return _json({"count": len(responses), "predictions": responses})

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
            request_id, code, notes, prediction, user=principal.user, role=principal.role
        )
        try:
            self.feedback_store.append(row)
        except WarehouseBusyError as error:
            return _error(503, {"error": f"feedback not stored, retry later: {error}"}, ctx)
        self.audit.append(
            [
                {
                    "event": "feedback",
                    "request_id": request_id,
                    "user": principal.user,
                    "role": principal.role,
                    "output": {"confirmed_code": code, "confirmed_rank": row["confirmed_rank"]},
                    "model_version": prediction.get("model_version"),
                    "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                }
            ]
        )
        self.metrics.feedback.labels(rank=str(row["confirmed_rank"] or "none")).inc()
        return {
            "feedback_id": row["feedback_id"],
            "request_id": request_id,
            "confirmed_code": code,
            "confirmed_rank": row["confirmed_rank"],
            "stored_in": f"{CONFIG.feedback_warehouse.name}:{CONFIG.feedback_table}",
        }

    # ---- pages and admin (FastAPI, GET) ---------------------------------------------
    @pages.get("/model_info")
    def get_model_info(self) -> JSONResponse:
        """Model version, training date, data version, evaluation metrics, diseases."""
        if self.engine is None:
            return self._not_ready()
        return JSONResponse(self.info)

    @pages.get("/audit/export")
    def audit_export(self, request: Request, since_seq: int = 0) -> StreamingResponse:
        """The audit trail as JSON lines (entries with ``seq > since_seq``); headers
        ``X-Audit-Entries`` and ``X-Audit-Head`` give the chain head to anchor."""
        principal = _principal(request)
        self.audit.append(
            [{"event": "audit_export", "user": principal.user, "role": principal.role}]
        )
        seq, head = self.audit.head
        size = CONFIG.audit_log.stat().st_size
        return StreamingResponse(
            _read_entries(CONFIG.audit_log, size, since_seq),
            media_type="application/x-ndjson",
            headers={"X-Audit-Entries": str(seq), "X-Audit-Head": head},
        )

    @pages.get("/hpo/search")
    def hpo_search(self, q: Annotated[str, Query(max_length=100)] = "", limit: int = 0):
        """HPO phenotype terms whose name matches ``q`` (for autocomplete)."""
        if self.hpo is None:
            return self._not_ready()
        cap = min(limit or CONFIG.hpo_search_limit, 50)
        return {"query": q, "results": self.hpo.search(q, cap)}

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


DiseaseService.add_asgi_middleware(BearerAuthMiddleware, on_error=_count_error)

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
