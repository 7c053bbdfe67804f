"""Population screening: every encounter of a time window scored by the served
predictor, a screening table in the warehouse, alerts raised, de-duplicated and sent."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
