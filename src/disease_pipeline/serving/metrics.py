"""The service's Prometheus metrics, exposed on BentoML's ``/metrics``.

Created on first use inside the worker process (after BentoML has set
``PROMETHEUS_MULTIPROC_DIR``), as BentoML 1.4 asks, so every worker's counts reach the
shared endpoint. Names carry the ``disease_`` prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

#: Latency buckets (seconds): fine below 100 ms, where single predictions live.
#: Batch-size buckets: how many patients one model call answered.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 512, 2048)
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


def error_kind(status: int) -> str:
    """``auth`` (401/403), ``schema`` (400), ``validation`` (other 4xx), ``not_ready``
    (503) or ``internal`` (other 5xx)."""
    if status in (401, 403):
        return "auth"
    if status == 400:
        return "schema"
    if status < 500:
        return "validation"
    return "not_ready" if status == 503 else "internal"


@dataclass(frozen=True)
class ServiceMetrics:
    """Counters and histograms of the clinician service."""

    predictions: Any
    severity: Any
    latency: Any
    errors: Any
    feedback: Any
    unknown_terms: Any = None
    batch_size: Any = None
    #: champion/challenger (serving.challenger): answers by variant, shadow scoring
    answers: Any = None
    shadow_scored: Any = None
    shadow_skipped: Any = None
    shadow_delay: Any = None

    def unknown_term(self, code: str) -> None:
        """Count one input HPO id the model's HPO release lacks (read as its nearest
        ancestor or ignored, never refused)."""
        if self.unknown_terms is not None:
            self.unknown_terms.inc()

    def prediction(self, category: str | None, severity: str | None) -> None:
        """Count one patient's prediction by the category of its top candidate."""
        self.predictions.labels(category=category or "NONE").inc()
        self.severity.labels(level=severity or "NONE").inc()

    def error(self, endpoint: str, status: int) -> None:
        """Count a refused or failed request (any response with status >= 400)."""
        self.errors.labels(endpoint=endpoint, status=str(status), kind=error_kind(status)).inc()


@cache
def service_metrics() -> ServiceMetrics:
    """The process's metrics (created once)."""
    from prometheus_client import Counter, Histogram

    return ServiceMetrics(
        predictions=Counter(
            "disease_predictions",
            "Patients predicted, by category (COMMON/RARE) of the top-ranked disease",
            ["category"],
        ),
        severity=Counter(
            "disease_predicted_severity", "Patients predicted, by severity level", ["level"]
        ),
        latency=Histogram(
            "disease_request_latency_seconds",
            "Service time of a request inside the service (check, predict, audit)",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
        ),
        errors=Counter(
            "disease_request_errors",
            "Refused or failed requests by endpoint, HTTP status and kind "
            "(auth, schema, validation, not_ready, internal)",
            ["endpoint", "status", "kind"],
        ),
        feedback=Counter("disease_feedback", "Feedback entries stored", ["rank"]),
        unknown_terms=Counter(
            "disease_unknown_hpo_terms",
            "Input HPO ids not in the model's HPO release (ignored with an input note)",
        ),
        batch_size=Histogram(
            "disease_model_batch_size",
            "Patients per model call (concurrent /predict calls are merged)",
            ["endpoint"],
            buckets=BATCH_BUCKETS,
        ),
        answers=Counter(
            "disease_answers",
            "Patients answered, by the model variant that answered (champion, challenger)",
            ["variant"],
        ),
        shadow_scored=Counter(
            "disease_shadow_scored", "Patients the shadow challenger scored after the answer"
        ),
        shadow_skipped=Counter(
            "disease_shadow_skipped",
            "Answered patients not shadowed (too many waiting, or the shadow process ended)",
        ),
        shadow_delay=Histogram(
            "disease_shadow_delay_seconds",
            "Time from a champion answer to its challenger output (shadow mode)",
            buckets=(0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0),
        ),
    )
