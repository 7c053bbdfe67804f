"""The whole predictor as ONE MLflow pyfunc model.

:class:`DiseasePredictorModel` wraps the pickled
:class:`disease_pipeline.predictor.DiseasePredictor`: ``predict`` takes patient records
(a DataFrame with one ``PatientRecord``-shaped row per patient, or a list of dicts) and
returns one JSON-ready prediction per record. The package source is shipped with the
model (``code_paths``) so ``mlflow.pyfunc.load_model("models:/<name>@champion")`` works
wherever the pinned requirements are installed.

This module is what a loaded model imports: it carries no Kedro. The Kedro dataset that
logs and registers the model is
:class:`disease_pipeline.datasets.champion_model.ChampionModelDataset`.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

import mlflow
import pandas as pd

from disease_pipeline.json_types import json_types


def records_from_input(model_input: Any) -> list[Any]:
    """``PatientRecord`` objects from a DataFrame of records or a list of dicts.

    Missing scalar cells of a DataFrame (NaN/None) are dropped so that optional fields
    take their defaults; invalid rows raise pydantic's ``ValidationError`` naming the field.
    """
    from disease_pipeline.records import PatientRecord

    if isinstance(model_input, pd.DataFrame):
        rows = model_input.to_dict(orient="records")
    elif isinstance(model_input, dict):
        rows = [model_input]
    else:
        rows = list(model_input)
    records = []
    for row in rows:
        if isinstance(row, PatientRecord):
            records.append(row)
            continue
        clean = {
            key: value
            for key, value in dict(row).items()
            if not (value is None or (isinstance(value, float) and math.isnan(value)))
        }
        records.append(PatientRecord.model_validate(clean))
    return records


class DiseasePredictorModel(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper of the pickled ``DiseasePredictor`` (artifact ``predictor``)."""

    def __init__(self, top_k: int = 5) -> None:
        self.top_k = top_k
        self.predictor = None

    def load_context(self, context) -> None:
        """Unpickle the predictor from the model's ``predictor`` artifact."""
        with open(context.artifacts["predictor"], "rb") as handle:
            self.predictor = pickle.load(handle)  # noqa: S301 - our own registered artifact

    # The hint only silences MLflow's "add type hints" warning: MLflow passes a DataFrame
    # hint's input through unchanged, and records are validated by pydantic below.
    def predict(self, context, model_input: pd.DataFrame, params=None):
        """Predictions for ``model_input`` (DataFrame of ``PatientRecord`` rows, or a list
        of dicts): one dict per record with the ranked differential, P(rare), severity and
        explanation. ``params={"top_k": n}`` changes the length of the differential."""
        top_k = int((params or {}).get("top_k", self.top_k))
        records = records_from_input(model_input)
        return json_types(self.predictor.predict_records(records, top_k=top_k))
