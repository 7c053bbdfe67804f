"""Patients in, answers out: check each patient, predict the valid ones in one model
call per ``top_k``, audit every answer and refusal, count them.

Used by ``/predict`` (through :class:`~disease_pipeline.serving.batching.MicroBatcher`,
which merges concurrent calls) and by ``/predict_batch``. Each patient gets its own
result: a response dict, or the :class:`InputError` naming its bad fields; a refused
patient never fails its neighbours.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from disease_pipeline.records import PatientRecord
from disease_pipeline.serving.audit import AuditLog, keyed_digest
from disease_pipeline.serving.auth import Principal
from disease_pipeline.serving.challenger import CHALLENGER, CHAMPION
from disease_pipeline.serving.engine import PredictionEngine, output_summary
from disease_pipeline.serving.inputs import InputError

Result = dict[str, Any] | InputError


@dataclass(frozen=True)
class PatientJob:
    """One patient to predict: who asked, through which endpoint, and where the
    patient sits in the request (``patient`` or ``patients[3]``, the prefix of every
    field an error names)."""

    record: PatientRecord
    top_k: int
    principal: Principal
    endpoint: str
    where: str


def schema_error_entry(error: ValidationError, where: str, index: int) -> dict[str, Any]:
    """The in-place batch entry of a patient whose shape pydantic refused (status 400)."""
    detail = []
    for item in error.errors(include_url=False, include_context=False, include_input=False):
        loc = ["patients", index, *item["loc"]]
        field = where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in item["loc"])
        detail.append({"loc": loc, "field": field, "msg": item["msg"]})
    return {
        "error": f"{len(detail)} invalid field(s): " + ", ".join(d["field"] for d in detail),
        "status": 400,
        "index": index,
        "detail": detail,
    }


def input_error_entry(error: InputError, index: int) -> dict[str, Any]:
    """The in-place batch entry of a patient the knowledge base refused (status 422)."""
    return {**error.as_response(), "status": 422, "index": index}


class PatientPredictor:
    """Checks, predicts, audits and counts a list of :class:`PatientJob`.

    Champion and challenger (``serving.challenger``, :mod:`~disease_pipeline.serving.challenger`):
    with ``route`` (A/B) each checked patient is answered by the engine of its arm
    (``challenger_engine`` for ``challenger``); with ``shadow`` every answered call is
    handed to the shadow scorer once it is audited and logged.
    """

    def __init__(
        self,
        engine: PredictionEngine,
        audit: AuditLog,
        key: bytes,
        metrics: Any,
        model_version: str | None,
        *,
        prediction_log: Any = None,
        challenger_engine: PredictionEngine | None = None,
        route: Callable[[PatientRecord], str] | None = None,
        shadow: Any = None,
    ) -> None:
        if route is not None and challenger_engine is None:
            raise ValueError("A/B routing needs the challenger's engine")
        self.engine = engine
        self.challenger_engine = challenger_engine
        self.route = route
        #: optional :class:`~disease_pipeline.serving.challenger.ShadowScorer`
        self.shadow = shadow
        #: optional :class:`~disease_pipeline.serving.prediction_log.PredictionLogWriter`
        self.prediction_log = prediction_log
        self.audit = audit
        self.key = key
        self.metrics = metrics
        self.model_version = model_version

    def run(self, jobs: Sequence[PatientJob]) -> list[Result]:
        """One result per job, in order; every result is in the audit trail (fsync-ed)
        before this returns.

        Raises:
            AuditWriteError: the audit trail could not be written (nothing is answered).
        """
        started = time.perf_counter()
        results: list[Result | None] = [None] * len(jobs)
        checked: dict[int, tuple[PatientRecord, list[str]]] = {}
        for index, job in enumerate(jobs):
            try:
                checked[index] = self.engine.normaliser.normalise(job.record, job.where)
            except InputError as error:
                results[index] = error
        arms = [CHAMPION] * len(jobs)
        groups: dict[tuple[str, int], list[int]] = {}
        for index in checked:
            if self.route is not None:
                arms[index] = self.route(jobs[index].record)
            groups.setdefault((arms[index], jobs[index].top_k), []).append(index)
        for (arm, top_k), indices in groups.items():
            engine = self.challenger_engine if arm == CHALLENGER else self.engine
            predicted = self._predict(engine, jobs, checked, indices, top_k)
            for index, result in zip(indices, predicted, strict=True):
                results[index] = result
        elapsed_ms = (time.perf_counter() - started) * 1000
        entries = [
            self._entry(job, result, elapsed_ms / len(jobs), len(jobs), arm)
            for job, result, arm in zip(jobs, results, arms, strict=True)
        ]
        self.audit.append(entries)
        if self.prediction_log is not None:  # buffered: no I/O on the request path
            variants = arms if self.route is not None else None
            self.prediction_log.add(jobs, checked, results, elapsed_ms, variants)
        if self.shadow is not None:  # queued for the challenger's process: no model work here
            self.shadow.submit(jobs, checked, results)
        if self.metrics.batch_size is not None and jobs:
            self.metrics.batch_size.labels(endpoint=jobs[0].endpoint).observe(len(jobs))
        for result, arm in zip(results, arms, strict=True):
            if isinstance(result, dict):
                summary = output_summary(result)
                self.metrics.prediction(summary["category"], summary["severity"])
                if getattr(self.metrics, "answers", None) is not None:
                    self.metrics.answers.labels(variant=arm).inc()
        return results  # type: ignore[return-value]

    def _predict(
        self, engine: PredictionEngine, jobs, checked, indices: list[int], top_k: int
    ) -> list[Result]:
        """One model call for ``indices``; when the predictor refuses the merged call,
        each patient is tried alone so only the faulty one is refused."""
        records = [jobs[i].record for i in indices]
        clean = [checked[i][0] for i in indices]
        notes = [checked[i][1] for i in indices]
        try:
            responses, _ = engine.predict_checked(
                records, clean, notes, top_k, jobs[indices[0]].where
            )
            return list(responses)
        except InputError as error:
            if len(indices) == 1:
                return [error]
        return [self._predict(engine, jobs, checked, [i], top_k)[0] for i in indices]

    def _entry(
        self, job: PatientJob, result: Result, latency_ms: float, size: int, arm: str
    ) -> dict:
        """The audit entry of one patient's answer or refusal (no raw identifiers); under
        A/B it names the variant that answered."""
        answered_by = result.get("model") if isinstance(result, dict) else None
        base = {
            "endpoint": job.endpoint,
            "user": job.principal.user,
            "role": job.principal.role,
            "input_hash": keyed_digest(self.key, "input", job.record.model_dump_json()),
            "model_version": (answered_by or {}).get("version", self.model_version),
        }
        if self.route is not None:
            base["variant"] = arm
        if isinstance(result, InputError):
            return {
                "event": "refused",
                "request_id": None,
                **base,
                "output": {"errors": [e.field for e in result.errors]},
            }
        patient_id = job.record.patient_id
        return {
            "event": "prediction",
            "request_id": result["request_id"],
            **base,
            "patient": keyed_digest(self.key, "patient", patient_id) if patient_id else None,
            "output": output_summary(result),
            "latency_ms": round(latency_ms, 3),
            "batch_size": size,
        }
