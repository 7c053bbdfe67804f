"""disease_pipeline: predicts common and rare diseases, and severity, from clinical records."""

__version__ = "0.1.0"
