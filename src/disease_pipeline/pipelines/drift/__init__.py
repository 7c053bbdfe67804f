"""Data drift between the training period and the latest period (the test split)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
