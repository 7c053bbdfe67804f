"""Retraining triggers: monitoring summary + trusted feedback + registry → retrain / wait."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
