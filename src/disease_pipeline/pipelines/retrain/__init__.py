"""Champion/challenger: register the retrained model as ``@challenger``, compare it with
the champion on the same encounters, promote or keep (``pipeline_registry`` puts the
training stages in front of it as ``kedro run --pipeline=retrain``)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
