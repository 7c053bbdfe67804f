"""De-identification of the canonical tables into the warehouse (layer 03)."""

from disease_pipeline.pipelines.anonymization.pipeline import create_pipeline

__all__ = ["create_pipeline"]
