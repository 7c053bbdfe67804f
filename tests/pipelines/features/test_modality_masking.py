"""Modality masking: training and calibration encounters lose vitals and/or labs by share."""

from __future__ import annotations

import pandas as pd
import pytest

from disease_pipeline.pipelines.features.nodes import mask_modalities


def _tables(n: int):
    ids = [f"e{i}" for i in range(n)]
    vitals = pd.DataFrame({"encounter_id": ids, "loinc": "8867-4", "value": 80.0})
    labs = pd.DataFrame({"encounter_id": ids, "loinc": "1988-5", "value": 3.0})
    split = ["train"] * (n // 2) + ["calibration"] * (n // 4) + ["test"] * (n - n // 2 - n // 4)
    assignment = pd.DataFrame({"encounter_id": ids, "split": split})
    return {"vitals": vitals, "labs": labs, "symptoms": pd.DataFrame()}, assignment


def test_shares_of_patterns_in_the_masked_splits_only():
    tables, assignment = _tables(4000)
    params = {
        "seed": 1,
        "splits": ["train", "calibration"],
        "shares": {"symptoms_only": 0.3, "labs": 0.2},
    }
    out = mask_modalities(tables, assignment, params)
    masked = set(assignment.loc[assignment["split"] != "test", "encounter_id"])
    has_v = set(out["vitals"]["encounter_id"])
    has_l = set(out["labs"]["encounter_id"])
    symptoms_only = [e for e in masked if e not in has_v and e not in has_l]
    labs_only = [e for e in masked if e not in has_v and e in has_l]
    assert abs(len(symptoms_only) / len(masked) - 0.3) < 0.04
    assert abs(len(labs_only) / len(masked) - 0.2) < 0.04
    assert all(e in has_l for e in masked if e in has_v)  # no "vitals only" asked
    test_ids = set(assignment.loc[assignment["split"] == "test", "encounter_id"])
    assert test_ids <= has_v and test_ids <= has_l
    assert len(tables["vitals"]) == 4000  # the input is not modified


def test_bad_shares_are_refused():
    tables, assignment = _tables(10)
    with pytest.raises(ValueError, match="modality_masking"):
        mask_modalities(tables, assignment, {"splits": ["train"], "shares": {"bogus": 0.1}})
    with pytest.raises(ValueError, match="modality_masking"):
        mask_modalities(
            tables, assignment, {"splits": ["train"], "shares": {"labs": 0.8, "vitals": 0.5}}
        )
