"""``kedro run --pipeline=monitor``: drift, live performance and service health over a
time window of the prediction log (docs/monitoring.md)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
