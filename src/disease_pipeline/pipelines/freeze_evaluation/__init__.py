"""Freeze the current test split as the evaluation set of every later champion/challenger
comparison (``kedro run --pipeline=freeze_evaluation``)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
