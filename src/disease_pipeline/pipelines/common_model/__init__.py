"""``common_model``: XGBoost over the common diseases (imbalance strategy and Optuna search
chosen on validation, logistic-regression baseline beside it) and the gate model P(rare)."""

from disease_pipeline.pipelines.common_model.pipeline import create_pipeline

__all__ = ["create_pipeline"]
