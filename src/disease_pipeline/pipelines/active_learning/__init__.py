"""Active learning: the review queue of the most informative recent predictions."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
