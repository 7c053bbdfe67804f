"""Champion and challenger inside the service (``serving.challenger``, docs/retraining.md §6).

- ``shadow``: every predicted patient is answered by the champion; afterwards, off the
  request path, the challenger scores the same checked record in a process of its own
  (:class:`ShadowScorer`: no shared interpreter lock, the answer never waits for it, and
  at ``SCHED_IDLE`` priority, so it only uses CPU time the service leaves idle) and
  its output is logged to the shadow prediction log (``shadow_table``) under the
  champion answer's ``request_id``, so every pair can be compared and, once a clinician
  confirms the diagnosis, scored.
- ``ab``: a fixed share (``ab_share``) of patients is answered by the challenger. The arm
  is drawn from the service's keyed pseudonym of the patient id (:func:`ab_arm`), so a
  patient always gets the same model and the assignment cannot be chosen by the caller;
  a record without a patient id is answered by the champion.

The challenger is a BentoML model-store tag (``model_tag``), imported from the MLflow
registry's ``@challenger`` by ``kedro run --pipeline=bento_packaging --params
bento_packaging.alias=challenger,bento_packaging.bento_model_name=disease_pipeline_challenger``.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from disease_pipeline.serving.audit import keyed_digest

logger = logging.getLogger(__name__)

MODES = ("off", "shadow", "ab")
CHAMPION, CHALLENGER = "champion", "challenger"
#: seconds the shadow process waits for work before checking that its parent lives
_POLL_S = 1.0


@dataclass(frozen=True)
class ChallengerSettings:
    """``serving.challenger`` of serving.yml."""

    mode: str = "off"
    #: BentoML model-store tag of the challenger (required unless ``mode`` is off)
    model_tag: str | None = None
    #: ``ab``: share of patients (by pseudonym) answered by the challenger
    ab_share: float = 0.1
    #: ``shadow``: most patients waiting for the challenger; beyond it new ones are not
    #: shadowed (counted in ``disease_shadow_skipped_total`` and the log), never delayed
    shadow_max_waiting: int = 2000
    #: ``shadow``: table of the challenger's outputs, beside the prediction log
    shadow_table: str = "prediction_log_shadow"

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> ChallengerSettings:
        """Checked settings; errors name the key (``serving.challenger.<key>``)."""
        raw = dict(raw or {})
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"serving.challenger: unknown keys {sorted(unknown)}")
        settings = cls(**raw)
        if settings.mode not in MODES:
            raise ValueError(f"serving.challenger.mode {settings.mode!r}: one of {list(MODES)}")
        if settings.mode != "off" and not settings.model_tag:
            raise ValueError(f"serving.challenger.model_tag is required in mode {settings.mode}")
        share = settings.ab_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
            raise ValueError("serving.challenger.ab_share must be a number between 0 and 1")
        if not isinstance(settings.shadow_max_waiting, int) or settings.shadow_max_waiting < 1:
            raise ValueError("serving.challenger.shadow_max_waiting must be a positive integer")
        if not str(settings.shadow_table).isidentifier():
            raise ValueError(
                f"serving.challenger.shadow_table {settings.shadow_table!r}: not an identifier"
            )
        return settings


def ab_arm(key: bytes, patient_id: str | None, share: float) -> str:
    """``champion`` or ``challenger`` for a patient: the keyed pseudonym of the id read as
    a number in [0, 1) against ``share``. Sticky (same key, same id, same arm) and
    unpredictable without the key; no id: ``champion``."""
    if not patient_id:
        return CHAMPION
    digest = keyed_digest(key, "ab", patient_id)
    return CHALLENGER if int(digest[:15], 16) / 16**15 < share else CHAMPION


@dataclass(frozen=True)
class ShadowJob:
    """What the shadow process needs of one model call: the checked records (without
    patient id), their notes, ``top_k`` and the champion answers' request ids."""

    batch: int
    records: list[Any]
    notes: list[list[str]]
    top_k: list[int]
    request_ids: list[str]


def shadow_job(batch: int, jobs: Sequence[Any], checked: dict, results: Sequence[Any]):
    """``(positions, ShadowJob)`` of the predicted patients of one model call (refused
    ones have nothing to compare), or None when none was predicted."""
    positions = [i for i, result in enumerate(results) if isinstance(result, dict)]
    if not positions:
        return None
    return positions, ShadowJob(
        batch=batch,
        records=[checked[i][0].model_copy(update={"patient_id": None}) for i in positions],
        notes=[list(checked[i][1]) for i in positions],
        top_k=[jobs[i].top_k for i in positions],
        request_ids=[results[i]["request_id"] for i in positions],
    )


def score_shadow_job(engine: Any, job: ShadowJob) -> tuple[list[dict[str, Any]], float]:
    """The challenger's responses to ``job`` (one model call per ``top_k``, in order), each
    under the champion answer's request id, and the model time in ms."""
    responses: list[dict[str, Any] | None] = [None] * len(job.records)
    elapsed = 0.0
    for top_k in sorted(set(job.top_k)):
        picked = [i for i, k in enumerate(job.top_k) if k == top_k]
        records = [job.records[i] for i in picked]
        answered, ms = engine.predict_checked(
            records, records, [job.notes[i] for i in picked], top_k
        )
        elapsed += ms
        for i, response in zip(picked, answered, strict=True):
            responses[i] = response | {"request_id": job.request_ids[i]}
    return responses, elapsed  # type: ignore[return-value]


def background_priority() -> str:
    """Let this process run only on CPU time the service leaves idle: Linux's
    ``SCHED_IDLE`` policy where available (no privilege needed), else the lowest nice
    level. Returns the policy applied."""
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return "SCHED_IDLE"
        except OSError:
            pass
    os.nice(19)
    return "nice 19"


def _shadow_process(spec: dict[str, Any], inbox: Any, outbox: Any) -> None:
    """The shadow process: load the challenger (``spec``: ``model_dir``, ``model``,
    ``threads``, ``parent``), then score every queued job until the ``None`` sentinel
    arrives or the parent process is gone."""
    from disease_pipeline.serving.engine import PredictionEngine, load_predictor
    from disease_pipeline.serving.runtime import limit_threads

    # a stop signal to the service's process group reaches this process too: it finishes
    # the queued work when the parent sends the sentinel (or exits once the parent is gone)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    background_priority()
    try:
        limit_threads(spec["threads"])
        predictor = load_predictor(Path(spec["model_dir"]))
        engine = PredictionEngine(predictor, spec["model"], normaliser=None)
    except Exception as error:  # reported by the parent, which stops shadowing
        outbox.put(("unloadable", None, f"{type(error).__name__}: {error}"))
        return
    parent = spec["parent"]
    outbox.put(("ready", None, None))
    while True:
        try:
            job = inbox.get(timeout=_POLL_S)
        except queue.Empty:
            if os.getppid() != parent:
                return
            continue
        if job is None:
            outbox.put(("closed", None, None))
            return
        try:
            outbox.put(("scored", job.batch, score_shadow_job(engine, job)))
        except Exception as error:  # one bad call must not end shadowing
            outbox.put(("failed", job.batch, f"{type(error).__name__}: {error}"))


class ShadowScorer:
    """The challenger in a child process, fed after each answer (see the module doc).

    ``on_scored(jobs, checked, responses, elapsed_ms)`` receives each scored call in this
    process (a collector thread), in the shape the prediction log takes.
    """

    def __init__(
        self,
        model_dir: Path,
        model: dict[str, Any],
        on_scored: Callable[[list, dict, list, float], None],
        *,
        threads: int = 1,
        max_waiting: int = 2000,
        metrics: Any = None,
    ) -> None:
        self.model = model
        self.max_waiting = max_waiting
        self.metrics = metrics
        self.on_scored = on_scored
        self.scored = 0
        self.skipped = 0
        self.failed = 0
        self.ready = threading.Event()
        self._waiting = 0
        self._pending: dict[int, tuple[list, dict, float]] = {}
        self._lock = threading.Lock()
        self._batches = itertools.count()
        self._closed = False
        context = multiprocessing.get_context("spawn")
        self._inbox = context.Queue()
        self._outbox = context.Queue()
        self._process = context.Process(
            target=_shadow_process,
            args=(
                {
                    "model_dir": str(model_dir),
                    "model": dict(model),
                    "threads": threads,
                    "parent": os.getpid(),
                },
                self._inbox,
                self._outbox,
            ),
            name="shadow-challenger",
            daemon=True,
        )
        self._process.start()
        self._collector = threading.Thread(target=self._collect, name="shadow-log", daemon=True)
        self._collector.start()

    @property
    def waiting(self) -> int:
        """Patients sent to the challenger and not scored yet."""
        return self._waiting

    def submit(self, jobs: Sequence[Any], checked: dict, results: Sequence[Any]) -> None:
        """Queue one answered model call for the challenger (no model work here). When
        ``max_waiting`` patients already wait, the call is not shadowed and counted."""
        if self._closed:
            return
        with self._lock:
            made = shadow_job(next(self._batches), jobs, checked, results)
            if made is None:
                return
            positions, job = made
            if self._waiting + len(positions) > self.max_waiting:
                self._skip(len(positions), "too many patients waiting for the challenger")
                return
            self._waiting += len(positions)
            self._pending[job.batch] = (
                [jobs[i] for i in positions],
                {n: checked[i] for n, i in enumerate(positions)},
                time.perf_counter(),
            )
        self._inbox.put(job)

    def close(self, timeout: float = 60.0) -> None:
        """Score what is queued, then stop the process and the collector (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._process.is_alive():
            self._inbox.put(None)
            self._collector.join(timeout)
            self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
        for channel in (self._inbox, self._outbox):
            channel.close()
            channel.join_thread()
        logger.info(
            "shadow challenger closed: %d patients scored, %d skipped, %d failed",
            self.scored,
            self.skipped,
            self.failed,
        )

    def _skip(self, count: int, reason: str) -> None:
        self.skipped += count
        if self.metrics is not None:
            self.metrics.shadow_skipped.inc(count)
        logger.warning("shadow challenger: %d patients not shadowed (%s)", count, reason)

    def _collect(self) -> None:
        """Hand each scored call to ``on_scored``; stop at the process's end."""
        while True:
            try:
                kind, batch, payload = self._outbox.get(timeout=_POLL_S)
            except queue.Empty:
                if not self._process.is_alive():
                    self._lost(f"the shadow process ended (exit code {self._process.exitcode})")
                    return
                continue
            if kind == "unloadable":
                self._lost(f"the challenger could not be loaded: {payload}")
                return
            if kind == "ready":
                self.ready.set()
                logger.info("shadow challenger %s ready", self.model.get("version"))
                continue
            if kind == "closed":
                return
            with self._lock:
                jobs, checked, submitted = self._pending.pop(batch)
                self._waiting -= len(jobs)
            if kind == "failed":
                self.failed += len(jobs)
                logger.error("shadow challenger: %d patients failed: %s", len(jobs), payload)
                continue
            responses, elapsed_ms = payload
            self.scored += len(jobs)
            if self.metrics is not None:
                self.metrics.shadow_scored.inc(len(jobs))
                self.metrics.shadow_delay.observe(time.perf_counter() - submitted)
            try:
                self.on_scored(jobs, checked, responses, elapsed_ms)
            except Exception:  # the collector must survive a bad row; logged with its cause
                logger.exception("shadow challenger: logging a scored call failed")

    def _lost(self, reason: str) -> None:
        with self._lock:
            lost = sum(len(pending[0]) for pending in self._pending.values())
            self._pending.clear()
            self._waiting = 0
        if lost or not self._closed:
            self._skip(lost, reason)
