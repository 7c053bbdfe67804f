"""``rare_model``: known cases → few-shot rare-disease hybrid → real-case validation."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
