"""``severity_model``: four severity levels (low, moderate, high, critical) with XGBoost;
a multiclass model and an ordinal (cumulative) one compared on validation."""

from disease_pipeline.pipelines.severity_model.pipeline import create_pipeline

__all__ = ["create_pipeline"]
