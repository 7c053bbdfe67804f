"""The predictor's classifiers, calibrators and knowledge blend as arrays and ONNX files.

XGBoost boosters become flat node arrays (:mod:`disease_pipeline.edge_export.trees`) the
edge walks and sums in numpy exactly as XGBoost does (its default engine), and ONNX
``TreeEnsembleClassifier`` graphs (onnxmltools) for deployments whose standard runtime
is ONNX (the edge's ``onnx`` engine, within about 1e-7 of XGBoost); what the wrappers of
``predictor.classifiers`` add around them (SMOTE fill values, the class prior
correction, classes without training rows) and the calibrators are arrays the edge
runtime applies with numpy, in the same order as the full predictor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from disease_pipeline.edge_export.trees import tree_arrays
from disease_pipeline.predictor.calibrators import (
    Calibrator,
    IsotonicCalibrator,
    PlattCalibrator,
    TemperatureCalibrator,
)
from disease_pipeline.predictor.classifiers import (
    ConstantClassifier,
    CumulativeOrdinalClassifier,
    TreeClassifier,
)

#: the ai.onnx.ml opset onnxmltools 1.16 writes tree ensembles with
ONNX_ML_TARGET_OPSET = 15


def xgboost_onnx(model: Any, n_features: int) -> bytes:
    """An ``XGBClassifier`` as serialised ONNX (input ``X`` float32, outputs ``label``
    and ``probabilities``)."""
    from onnxmltools.convert import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    onx = convert_xgboost(
        model,
        initial_types=[("X", FloatTensorType([None, n_features]))],
        target_opset=ONNX_ML_TARGET_OPSET,
    )
    return onx.SerializeToString()


def onnx_margin_model(data: bytes) -> bytes:
    """The ONNX booster ``data`` without its probability transform: ``probabilities``
    are then the raw margins (binary: column 1 is XGBoost's margin, column 0 its
    negation), to compare the tree sums with ``output_margin=True``."""
    import onnx

    model = onnx.load_from_string(data)
    for node in model.graph.node:
        if node.op_type == "TreeEnsembleClassifier":
            for attribute in node.attribute:
                if attribute.name == "post_transform":
                    attribute.s = b"NONE"
    return model.SerializeToString()


def booster_spec(prefix: str, model: Any, n_features: int) -> tuple[dict, dict[str, np.ndarray]]:
    """``(config, arrays)`` of one ``XGBClassifier``: its trees under ``{prefix}_*`` in
    ``trees.npz``; the config names the prefix."""
    config, arrays = tree_arrays(model, n_features)
    return {"prefix": prefix, **config}, {f"{prefix}_{k}": v for k, v in arrays.items()}


def model_spec(
    name: str, model: Any, feature_names: list[str]
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray], dict[str, bytes]]:
    """``(config, arrays, tree arrays, onnx files)`` of one fitted classifier of
    ``predictor.classifiers`` (``arrays`` go to ``models.npz``, the trees to
    ``trees.npz``; each booster also as ``{name}.onnx`` or ``{name}_{k}.onnx``)."""
    columns = {c: j for j, c in enumerate(feature_names)}
    missing = [c for c in model.feature_names if c not in columns]
    if missing:
        raise ValueError(f"{name}: model features missing from the builder's: {missing[:5]}")
    arrays = {f"{name}_features": np.array([columns[c] for c in model.feature_names], np.int32)}
    config: dict[str, Any] = {"classes": [str(c) for c in model.classes_]}
    n = len(model.feature_names)
    if isinstance(model, TreeClassifier):
        config["kind"] = "tree"
        for key in ("fill_values", "prior_factor", "output_columns"):
            value = getattr(model, key, None)
            config[key] = value is not None
            if value is not None:
                arrays[f"{name}_{key}"] = np.asarray(value)
        config["trees"], trees = booster_spec(name, model.model, n)
        config["onnx"] = f"{name}.onnx"
        return config, arrays, trees, {config["onnx"]: xgboost_onnx(model.model, n)}
    if isinstance(model, ConstantClassifier):
        config["kind"] = "constant"
        arrays[f"{name}_prior"] = np.asarray(model.prior, float)
        return config, arrays, {}, {}
    if isinstance(model, CumulativeOrdinalClassifier):
        config["kind"] = "ordinal"
        trees, files, thresholds = {}, {}, []
        for k, sub in enumerate(model.models):
            if isinstance(sub, float):
                thresholds.append({"constant": float(sub)})
            else:
                spec, sub_trees = booster_spec(f"{name}_{k}", sub, n)
                trees |= sub_trees
                file = f"{name}_{k}.onnx"
                files[file] = xgboost_onnx(sub, n)
                thresholds.append({"trees": spec, "onnx": file})
        config["thresholds"] = thresholds
        return config, arrays, trees, files
    raise TypeError(f"{name}: {type(model).__name__} has no edge export")


def calibrator_spec(name: str, calibrator: Calibrator | None) -> tuple[dict, dict]:
    """``(config, arrays)`` of one calibrator of ``predictor.calibrators``."""
    if calibrator is None:
        return {"method": "none"}, {}
    if isinstance(calibrator, IsotonicCalibrator):
        arrays, mapped = {}, []
        for k, iso in enumerate(calibrator.maps):
            mapped.append(iso is not None)
            if iso is not None:
                arrays[f"{name}_iso{k}_x"] = np.asarray(iso.X_thresholds_)
                arrays[f"{name}_iso{k}_y"] = np.asarray(iso.y_thresholds_)
                arrays[f"{name}_iso{k}_range"] = np.array([iso.X_min_, iso.X_max_], float)
        return {"method": "isotonic", "mapped": mapped}, arrays
    if isinstance(calibrator, PlattCalibrator):
        return {"method": "platt"}, {
            f"{name}_slope": np.asarray(calibrator.slope, float),
            f"{name}_intercept": np.asarray(calibrator.intercept, float),
        }
    if isinstance(calibrator, TemperatureCalibrator):
        return {"method": "temperature", "temperature": float(calibrator.temperature)}, {}
    if type(calibrator) is Calibrator:
        return {"method": "none"}, {}
    raise TypeError(f"calibrator {name}: {type(calibrator).__name__} has no edge export")


def blend_config(blend: Any) -> dict[str, Any] | None:
    """The knowledge blend's classes and per-pattern weights (None without a blend)."""
    if blend is None:
        return None
    return {
        "model_classes": list(blend.model_classes),
        "extra": list(blend.extra),
        "weights": {k: [float(a), float(b)] for k, (a, b) in blend.weights.items()},
        "protected": list(getattr(blend, "protected", [])),
        "protected_patterns": list(getattr(blend, "protected_patterns", [])),
    }
