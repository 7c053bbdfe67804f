"""Evaluation of the predictor on the test split and the acceptance gate."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
