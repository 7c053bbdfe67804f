"""Import the MLflow ``@champion`` predictor into the BentoML model store."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
