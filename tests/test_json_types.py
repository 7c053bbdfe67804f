"""The one conversion to plain JSON types used by serving, MLflow and reports."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from disease_pipeline.json_types import json_types
from disease_pipeline.records import PatientRecord


def test_numpy_nan_models_and_frames_become_plain_json():
    record = PatientRecord(age=40, sex="female", symptoms=[{"code": "HP:0001945"}])
    value = {
        "p": np.float32(0.25),
        "n": np.int64(3),
        "gap": float("nan"),
        "inf": np.float64("inf"),
        "array": np.array([1.0, np.nan]),
        "pair": (1, "a"),
        7: True,
        "record": record,
        "frame": pd.DataFrame({"a": [1, 2]}),
    }
    out = json_types(value)
    assert out["p"] == 0.25 and type(out["p"]) is float and type(out["n"]) is int
    assert out["gap"] is None and out["inf"] is None and out["array"] == [1.0, None]
    assert out["pair"] == [1, "a"] and out["7"] is True
    assert out["record"]["age"] == 40 and out["record"]["symptoms"][0]["code"] == "HP:0001945"
    assert out["frame"] == [{"a": 1}, {"a": 2}]
    json.dumps(out, allow_nan=False)  # strictly valid JSON
