"""``calibration``: per model, isotonic / Platt / temperature scaling chosen by
cross-fitted ECE on the calibration split; reliability diagrams; the assembled predictor."""

from disease_pipeline.pipelines.calibration.pipeline import create_pipeline

__all__ = ["create_pipeline"]
