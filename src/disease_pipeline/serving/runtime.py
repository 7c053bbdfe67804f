"""Settings of the serving process: thread pools (``serving.threads``) and the garbage
collector, applied once the predictor is loaded, and the redaction of request-validation
errors in BentoML's log lines, from the start."""

from __future__ import annotations

import gc
import logging

from pydantic import ValidationError


def limit_threads(threads: int) -> None:
    """Cap the thread pools of OpenMP and BLAS in this process (``serving.threads``), and
    PyTorch's when something imported it (the predictor itself does not)."""
    import sys

    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


#: collection thresholds while serving: a batch of 1,000 patients allocates about half
#: a million short-lived objects, which the default first generation (700) would scan
#: some 700 times; a larger first generation costs a few MB and ~7 % of a batch's time
GC_THRESHOLDS = (50_000, 20, 100)


def tune_collector() -> None:
    """Garbage-collector settings for serving, once the predictor is loaded.

    The loaded model is hundreds of thousands of long-lived objects: ``gc.freeze``
    moves them out of the collector's view, so a full collection during a large batch
    does not walk them all again (a third of a batch's time otherwise).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


#: loggers through which BentoML reports a request it could not validate (with the
#: traceback, whose pydantic message quotes the rejected values)
REQUEST_ERROR_LOGGERS = ("bentoml._internal.server.http_app",)


class ValidationInputRedactor(logging.Filter):
    """Replaces the traceback of a request-validation error in a log record by what
    failed, without the values: pydantic's message quotes each rejected input (a name,
    a patient id), and no identifier may reach a log line. The client's 400 answer is
    unchanged (BentoML builds it without the inputs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ValidationError):
            where = "; ".join(
                f"{'.'.join(str(part) for part in e['loc'])}: {e['type']}"
                for e in error.errors(include_url=False, include_context=False, include_input=False)
            )
            record.msg = (
                f"{record.getMessage()}: {error.error_count()} validation error(s) ({where})"
            )
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def redact_request_errors() -> None:
    """Install :class:`ValidationInputRedactor` on BentoML's request-error loggers
    (idempotent)."""
    for name in REQUEST_ERROR_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, ValidationInputRedactor) for f in target.filters):
            target.addFilter(ValidationInputRedactor())
