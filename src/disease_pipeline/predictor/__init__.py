"""The fitted bundle shared by evaluation and serving: feature building, models, calibrators."""

__all__ = ["DiseasePredictor"]


def __getattr__(name: str):
    """``disease_pipeline.predictor.DiseasePredictor`` without importing the models eagerly."""
    if name == "DiseasePredictor":
        from disease_pipeline.predictor.bundle import DiseasePredictor

        return DiseasePredictor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
