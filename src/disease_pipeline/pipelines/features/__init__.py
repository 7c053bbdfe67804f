"""``features``: warehouse tables → feature matrix, registry cases and time-ordered splits."""

from disease_pipeline.pipelines.features.pipeline import create_pipeline

__all__ = ["create_pipeline"]
