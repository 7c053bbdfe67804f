"""What ``GET /model_info`` and the clinician page tell about the model and vocabularies.

The registry facts (MLflow version, run, training date, data version, evaluation
metrics) were written into the BentoML model's labels and metadata by the
``bento_packaging`` pipeline; the disease counts come from the loaded predictor.
"""

from __future__ import annotations

from typing import Any

from disease_pipeline.knowledge.catalogue import load_lab_table


def supported_diseases(predictor: Any) -> dict[str, int]:
    """How many diseases the predictor can rank, by category."""
    codes = getattr(predictor, "supported_diseases", None)
    if callable(codes):
        codes = codes()
    if codes is None:
        common = list(getattr(getattr(predictor, "common_model", None), "classes_", []))
        rare = list(getattr(predictor, "rare_codes", None) or [])
        codes = {**dict.fromkeys(common, "COMMON"), **dict.fromkeys(rare, "RARE")}
    if isinstance(codes, dict):
        categories = [str(value) for value in codes.values()]
    else:
        categories = [
            "RARE" if str(code).startswith(("OMIM:", "ORPHA:")) else "COMMON" for code in codes
        ]
    return {
        "total": len(categories),
        "common": categories.count("COMMON"),
        "rare": categories.count("RARE"),
    }


def model_info(stored: Any, predictor: Any) -> dict[str, Any]:
    """The ``/model_info`` document for a BentoML model (``bentoml.Model``)."""
    labels = dict(stored.info.labels or {})
    metadata = dict(stored.info.metadata or {})
    return {
        "model": {
            "name": labels.get("registered_model", stored.tag.name),
            "version": labels.get("mlflow_version", str(stored.tag.version)),
            "alias": labels.get("alias"),
            "bento_tag": str(stored.tag),
            "mlflow_run_id": metadata.get("mlflow_run_id"),
        },
        "training_date": metadata.get("training_date"),
        "data_version": labels.get("data_version") or metadata.get("data_version"),
        "metrics": metadata.get("metrics", {}),
        "supported_diseases": supported_diseases(predictor),
        "imported_at": stored.info.creation_time.isoformat(),
    }


def lab_vocabulary() -> list[dict[str, Any]]:
    """Vitals and labs of the LOINC table with their accepted units (for the page)."""
    rows = []
    for row in load_lab_table().to_dict("records"):
        units = [*row["units"], *row.get("affine", {})]
        canonical = row["canonical_unit"]
        rows.append(
            {
                "loinc": row["loinc"],
                "name": row["name"],
                "short": row["short"],
                "kind": row["kind"],
                "unit": canonical,
                "units": [canonical, *[u for u in units if u != canonical]],
                "normal": row["normal"]["mean"],
            }
        )
    return rows
