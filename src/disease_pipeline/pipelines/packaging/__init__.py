"""Packaging of the gate-approved predictor: MLflow Model Registry (BentoML comes later)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
