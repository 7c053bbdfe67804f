"""Ingestion pipeline: raw hospital exports and registry files → canonical tables."""

from disease_pipeline.pipelines.ingestion.pipeline import create_pipeline

__all__ = ["create_pipeline"]
