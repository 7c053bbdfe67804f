"""Assemble and write the edge package folder (see :mod:`disease_pipeline.edge_export`)."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from disease_pipeline.edge_export.features import feature_config, ontology_arrays, record_config
from disease_pipeline.edge_export.knowledge import (
    knowledge_arrays,
    knowledge_config,
    must_not_miss_config,
)
from disease_pipeline.edge_export.models import blend_config, calibrator_spec, model_spec
from disease_pipeline.edge_export.rare import rare_arrays
from disease_pipeline.knowledge.hpo import load_ontology

#: version of the folder layout; the runtime refuses another one (2: the boosters as
#: node arrays in ``trees.npz``, evaluated in numpy, instead of ONNX tree ensembles;
#: the ONNX tree ensembles are written beside them for the runtime's ``onnx`` engine,
#: which a package without them refuses)
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
CONFIG = "config.json"
MODELS = ("common", "gate", "severity")
CALIBRATED = ("common", "gate", "severity")


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """``arrays`` as a compressed ``.npz`` (no pickled objects: loadable with
    ``allow_pickle=False``)."""
    buffer = io.BytesIO()
    clean = {}
    for key, value in arrays.items():
        array = np.asarray(value)
        if array.dtype == object:
            array = array.astype(str)
        clean[key] = array
    np.savez_compressed(buffer, **clean)
    return buffer.getvalue()


def build_package(predictor: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    """``(config, files)`` of the edge package of ``predictor`` (``files``: name → bytes)."""
    onto = load_ontology()
    builder = predictor.feature_builder
    onto_arrays = ontology_arrays(onto)
    files: dict[str, bytes] = {}
    model_arrays: dict[str, np.ndarray] = {}
    trees: dict[str, np.ndarray] = {}
    config: dict[str, Any] = {
        "hpo_version": onto.version,
        "features": feature_config(builder),
        "record": record_config(),
        "models": {},
        "calibrators": {},
        "blend": blend_config(getattr(predictor, "knowledge_blend", None)),
        "common_classes": list(predictor.common_classes),
        "disease_names": {str(k): str(v) for k, v in predictor.disease_names.items()},
        "rare_rank_floor": float(getattr(predictor, "rare_rank_floor", 0.0)),
        "knowledge": None,
        "must_not_miss": None,
        "rare": None,
    }
    for name in MODELS:
        spec, arrays, model_trees, onnx_files = model_spec(
            name, getattr(predictor, f"{name}_model"), builder.feature_names
        )
        config["models"][name] = spec
        model_arrays |= arrays
        trees |= model_trees
        files |= onnx_files
    for name in CALIBRATED:
        spec, arrays = calibrator_spec(name, predictor.calibrators.get(name))
        config["calibrators"][name] = spec
        model_arrays |= arrays
    files["models.npz"] = npz_bytes(model_arrays)
    files["trees.npz"] = npz_bytes(trees)
    files["ontology.npz"] = npz_bytes(onto_arrays)
    scorer = getattr(builder, "knowledge_scorer", None)
    if scorer is not None:
        config["knowledge"] = knowledge_config(scorer)
        files["knowledge.npz"] = npz_bytes(knowledge_arrays(scorer, onto, onto_arrays["hpo_ids"]))
    serving_scorer = getattr(predictor, "knowledge_scorer", None)
    if serving_scorer is not None:
        config["must_not_miss"] = must_not_miss_config(
            serving_scorer, getattr(predictor, "must_not_miss", None) or {}
        )
    rare = getattr(predictor, "rare_model", None)
    if rare is not None:
        if rare.ontology.version != onto.version or len(rare.ontology.names) != len(onto.names):
            raise ValueError(
                f"rare model built on HPO {rare.ontology.version}, this install has "
                f"{onto.version}: export with the HPO release the model was trained on"
            )
        rare_config, arrays, onnx_files = rare_arrays(rare)
        config["rare"] = rare_config
        files["rare.npz"] = npz_bytes(arrays)
        files |= onnx_files
    files[CONFIG] = json.dumps(config, indent=1, sort_keys=True).encode()
    return config, files


def manifest(
    files: dict[str, bytes], *, model_version: str, data_version: str, hpo_version: str, source: str
) -> dict[str, Any]:
    """Versions, the sha256 and size of every file, and what the runtime needs."""
    return {
        "format_version": FORMAT_VERSION,
        "model_version": model_version,
        "data_version": data_version,
        "hpo_release": hpo_version,
        "source": source,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "exported_with": {
            name: metadata.version(name)
            for name in ("numpy", "onnx", "onnxmltools", "onnxruntime", "torch", "xgboost")
        },
        "runtime_requires": ["numpy", "onnxruntime"],
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in sorted(files.items())
        },
    }


def write_package(
    predictor: Any,
    out_dir: Path,
    *,
    model_version: str = "unregistered",
    data_version: str = "unknown",
    source: str = "",
) -> dict[str, Any]:
    """Write the edge package of ``predictor`` to ``out_dir`` (created; files it holds
    from an earlier export are replaced); returns the manifest."""
    config, files = build_package(predictor)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out_dir / name).write_bytes(data)
    record = manifest(
        files,
        model_version=model_version,
        data_version=data_version,
        hpo_version=config["hpo_version"],
        source=source,
    )
    (out_dir / MANIFEST).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record
