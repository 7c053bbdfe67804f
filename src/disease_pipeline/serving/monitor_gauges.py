"""The last monitoring report's figures as Prometheus gauges on the service's ``/metrics``.

``kedro run --pipeline=monitor`` writes ``data/08_reporting/monitoring/summary.json``;
the service re-reads it (every ``interval_s`` seconds, when its modification time
changed) and sets the ``disease_monitor_*`` gauges, so the alert rules of
``deploy/prometheus/alerts.yml`` see drift and live performance next to latency and
errors from one scrape target. Chosen over a Pushgateway or node-exporter textfile
collector: no extra daemon to run and secure, and the figures disappear with the
service that would act on them. Gauges are ``livemax`` across worker processes (every
worker reads the same file).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: summary path (dotted keys) → gauge name (``disease_monitor_`` prefix) and help
SCALAR_GAUGES = {
    "n_predictions": ("predictions", "Predictions in the last monitoring window"),
    "drift.max_psi": ("max_psi", "Largest feature PSI against the training reference"),
    "drift.n_drifted_psi": ("drifted_features", "Features with PSI above the threshold"),
    "performance.n_labelled": ("labelled", "Predictions with confirmed feedback in the window"),
    "performance.top1": ("top1", "Live top-1 accuracy on confirmed feedback"),
    "performance.top3": ("top3", "Live top-3 accuracy on confirmed feedback"),
    "performance.reference_top3": ("reference_top3", "Top-3 of the model card (test split)"),
    "performance.top3_drop": ("top3_drop", "Reference top-3 minus live top-3"),
    "performance.macro_auroc": ("macro_auroc", "Live macro AUROC on confirmed feedback"),
    "performance.auroc_drop": ("auroc_drop", "Reference macro AUROC minus live macro AUROC"),
    "performance.max_subgroup_gap": ("subgroup_gap", "Largest top-3 gap between subgroups"),
    "health.refusal_rate": ("refusal_rate", "Share of refused patients in the window"),
    "window_end_epoch": ("window_end_timestamp_seconds", "End of the monitoring window"),
}


def _dig(summary: dict[str, Any], dotted: str) -> float | None:
    value: Any = summary
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass
class MonitorGauges:
    """Gauges fed from one summary file."""

    path: Path
    scalars: dict[str, Any]
    feature_psi: Any
    feature_drifted: Any
    mtime: float | None = None
    #: features labelled by an earlier summary (their series outlive the report)
    labelled: set[str] = field(default_factory=set)

    @classmethod
    def create(cls, path: Path) -> MonitorGauges:
        """The gauges (create inside the worker process, after BentoML has set
        ``PROMETHEUS_MULTIPROC_DIR``)."""
        from prometheus_client import Gauge

        scalars = {
            key: Gauge(f"disease_monitor_{name}", text, multiprocess_mode="livemax")
            for key, (name, text) in SCALAR_GAUGES.items()
        }
        feature_psi = Gauge(
            "disease_monitor_feature_psi",
            "PSI of a top-ranked feature against the training reference",
            ["feature"],
            multiprocess_mode="livemax",
        )
        feature_drifted = Gauge(
            "disease_monitor_feature_drifted",
            "1 when the monitor flagged a top-ranked feature (PSI above the threshold and "
            "beyond the window's sampling noise), else 0",
            ["feature"],
            multiprocess_mode="livemax",
        )
        return cls(Path(path), scalars, feature_psi, feature_drifted)

    def refresh(self) -> bool:
        """Re-read the summary when it changed; True when the gauges were updated."""
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return False
        if mtime == self.mtime:
            return False
        try:
            summary = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:  # written meanwhile: next time
            logger.warning("monitoring summary %s unreadable: %s", self.path, error)
            return False
        self.mtime = mtime
        for key, gauge in self.scalars.items():
            value = _dig(summary, key)
            gauge.set(float("nan") if value is None else value)
        drift = summary.get("drift", {})
        flagged = set(drift.get("drifted_features") or [])
        current = set()
        for feature, psi in (drift.get("top_psi") or {}).items():
            if isinstance(psi, int | float):
                self.feature_psi.labels(feature=feature).set(float(psi))
                self.feature_drifted.labels(feature=feature).set(float(feature in flagged))
                current.add(feature)
        # a feature no longer among the report's top ones is not flagged any more (its
        # series would otherwise keep the old PSI and fire the drift alert until restart)
        for feature in self.labelled - current:
            self.feature_psi.labels(feature=feature).set(float("nan"))
            self.feature_drifted.labels(feature=feature).set(0.0)
        self.labelled |= current
        return True

    def watch(self, interval_s: float = 30.0) -> threading.Thread:
        """Refresh now and then every ``interval_s`` seconds in a daemon thread."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                try:
                    self.refresh()
                except Exception:  # never take the service down for a report
                    logger.exception("monitoring gauges: refresh failed")
                stop.wait(interval_s)

        thread = threading.Thread(target=loop, name="monitor-gauges", daemon=True)
        thread.start()
        return thread
