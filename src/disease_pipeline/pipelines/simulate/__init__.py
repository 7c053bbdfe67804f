"""``simulate`` pipeline: realistic, messy hospital exports generated from the knowledge base."""

from disease_pipeline.pipelines.simulate.pipeline import create_pipeline

__all__ = ["create_pipeline"]
