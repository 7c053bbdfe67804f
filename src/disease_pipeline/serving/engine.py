"""The predictor inside the service: loading it from the BentoML model store, running
it on checked records, and the summaries the audit trail keeps.

The BentoML model is the MLflow pyfunc model registered as ``@champion`` (imported by
the ``bento_packaging`` pipeline). Its ``artifacts/predictor.pkl`` is the pickled
``DiseasePredictor``, loaded here with the package the service runs from, so
serving and evaluation call the same object (``predict_tables`` on the tables of the
checked records).
"""

from __future__ import annotations

import logging
import pickle
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from disease_pipeline.predictor.small_trees import prepare_small_inputs
from disease_pipeline.records import PatientRecord, records_to_tables
from disease_pipeline.serving.inputs import FieldError, InputError, RecordNormaliser

logger = logging.getLogger(__name__)

#: Folder of the MLflow model inside a BentoML model imported with ``bentoml.mlflow``.
MLFLOW_MODEL_FOLDER = "mlflow_model"
#: Differential entries kept in the audit trail's output summary.
AUDIT_TOP = 3


def predictor_path(model_dir: Path, artifact: str = "predictor") -> Path:
    """Path of the pickled predictor inside a BentoML model directory (read from the
    MLflow ``MLmodel`` file, so a renamed artifact file is still found)."""
    mlflow_dir = model_dir / MLFLOW_MODEL_FOLDER
    mlmodel = mlflow_dir / "MLmodel"
    if not mlmodel.is_file():
        raise FileNotFoundError(
            f"{model_dir}: no {MLFLOW_MODEL_FOLDER}/MLmodel (not an MLflow model)"
        )
    spec = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    artifacts = spec.get("flavors", {}).get("python_function", {}).get("artifacts", {})
    if artifact not in artifacts:
        raise FileNotFoundError(f"{mlmodel}: the pyfunc model has no artifact {artifact!r}")
    return mlflow_dir / artifacts[artifact]["path"]


def load_predictor(model_dir: Path) -> Any:
    """Unpickle the ``DiseasePredictor`` of a BentoML model directory and prepare its
    tree models' numpy walk for calls of one or a few patients
    (:mod:`disease_pipeline.predictor.small_trees`: the same probabilities, bit for bit,
    without XGBoost's per-call cost)."""
    with predictor_path(model_dir).open("rb") as handle:
        predictor = pickle.load(handle)  # noqa: S301 - our own registered artifact
    prepare_small_inputs(predictor)
    return predictor


def output_summary(prediction: dict[str, Any]) -> dict[str, Any]:
    """What the audit trail keeps of a prediction: top codes, category, P(rare), severity."""
    differential = prediction.get("differential") or []
    top = [
        [item.get("code"), round(float(item.get("probability") or 0.0), 4)]
        for item in differential[:AUDIT_TOP]
    ]
    return {
        "top": top,
        "category": differential[0].get("category") if differential else None,
        "p_rare": round(float(prediction.get("p_rare") or 0.0), 4),
        "severity": (prediction.get("severity") or {}).get("level"),
    }


class PredictionEngine:
    """Checks records, calls the predictor once per request, shapes the responses."""

    def __init__(self, predictor: Any, model: dict[str, Any], normaliser: RecordNormaliser):
        self.predictor = predictor
        self.model = model
        self.normaliser = normaliser

    def check_each(self, records: list[PatientRecord], where: str) -> list[Any]:
        """Per record: ``(normalised record, notes)`` or the ``InputError`` naming its
        bad fields (``where`` is ``patient`` or ``patients``)."""
        checked: list[Any] = []
        for index, record in enumerate(records):
            prefix = where if len(records) == 1 and where == "patient" else f"{where}[{index}]"
            try:
                checked.append(self.normaliser.normalise(record, prefix))
            except InputError as error:
                checked.append(error)
        return checked

    def check(self, records: list[PatientRecord], where: str) -> tuple[list, list[list[str]]]:
        """Normalised records and their notes; one ``InputError`` listing every bad field
        of every record."""
        checked = self.check_each(records, where)
        errors = [e for item in checked if isinstance(item, InputError) for e in item.errors]
        if errors:
            raise InputError(errors)
        return [item[0] for item in checked], [item[1] for item in checked]

    def predict(
        self, records: list[PatientRecord], top_k: int, where: str = "patient"
    ) -> tuple[list[dict[str, Any]], float]:
        """One response dict per record and the predictor's own time in ms.

        Raises:
            InputError: bad input fields, or a ``ValueError`` of the predictor.
        """
        clean, notes = self.check(records, where)
        return self.predict_checked(records, clean, notes, top_k, where)

    def predict_checked(
        self,
        records: list[PatientRecord],
        clean: list[PatientRecord],
        notes: list[list[str]],
        top_k: int,
        where: str = "patient",
    ) -> tuple[list[dict[str, Any]], float]:
        """Responses of records already checked by :meth:`check_each` (``clean`` and
        ``notes`` in the same order as ``records``).

        Raises:
            InputError: a ``ValueError`` of the predictor.
        """
        clean = [c.model_copy(update={"encounter_id": f"r{i}"}) for i, c in enumerate(clean)]
        started = time.perf_counter()
        try:
            # the records are already in the predictor's vocabulary (checked above), so the
            # tables go straight to predict_tables (what predict_records does after its own,
            # here redundant, normalisation)
            raw = self.predictor.predict_tables(records_to_tables(clean), top_k=top_k)
        except ValueError as error:  # the predictor's own input checks
            raise InputError([FieldError(where, str(error))]) from error
        elapsed_ms = (time.perf_counter() - started) * 1000
        # numpy scalars and NaN are left as the predictor gives them: the service
        # serialises responses with ``json_bytes``, which converts them (one pass)
        outputs = list(raw)
        if len(outputs) != len(records):
            raise RuntimeError(
                f"predictor returned {len(outputs)} outputs for {len(records)} records"
            )
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        responses = []
        for record, output, record_notes in zip(records, outputs, notes, strict=True):
            output.pop("encounter_id", None)
            differential = [
                {"rank": rank, **item}
                for rank, item in enumerate(output.pop("differential", []), 1)
            ]
            responses.append(
                {
                    "request_id": uuid.uuid4().hex,
                    "patient_id": record.patient_id,
                    "timestamp": stamp,
                    "model": {"name": self.model["name"], "version": self.model["version"]},
                    "differential": differential,
                    **output,
                    "input_notes": record_notes,
                }
            )
        return responses, elapsed_ms
