"""Query-style rows of the P(rare) gate (pipelines/common_model/query_rows.py), built with
a real fitted FeatureBuilder: registry cases of the gate's share of diseases as RARE,
catalogue-sampled symptom-only patients as COMMON, no onset, vitals or labs."""

from __future__ import annotations

import pandas as pd

from disease_pipeline.pipelines.common_model.query_rows import build_gate_query_rows
from disease_pipeline.rare.gate_check import in_gate_share

DISEASES = [f"OMIM:{600000 + i}" for i in range(40)]


def _registry() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "encounter_id": [f"case-{i}" for i in range(len(DISEASES))],
            "label_disease": DISEASES,
            "present_terms": [["HP:0001250", "HP:0001263", "HP:0000252"]] * len(DISEASES),
            "excluded_terms": [["HP:0000486"]] * len(DISEASES),
            "age": [4.0, None] * (len(DISEASES) // 2),
            "sex": ["male", "unknown"] * (len(DISEASES) // 2),
        }
    )


def _params(enabled: bool = True) -> dict:
    rows = {"enabled": enabled, "registry_share": 0.5, "common_ratio": 2.0}
    return {"seed": 3, "gate": {"query_rows": rows}}


def test_gate_share_cases_are_rare_rows_and_catalogue_patients_common(builder):
    rows = build_gate_query_rows(_registry(), builder, _params())
    in_share = sum(in_gate_share(d, 0.5) for d in DISEASES)
    assert 0 < in_share < len(DISEASES)  # the hash splits the diseases
    counts = rows["label_category"].value_counts()
    assert counts["RARE"] == in_share
    assert counts["COMMON"] >= 2 * in_share
    assert set(builder.feature_names) <= set(rows.columns)
    # phenotypes, age and sex only: nothing measured, no onset
    rare = rows[rows["label_category"] == "RARE"]
    measured = [c for c in rows.columns if c.startswith(("vitals_", "labs_"))]
    values = [c for c in measured if not c.endswith("_count")]
    assert values and rare[values].isna().all().all()
    assert (rare[["vitals_count", "labs_count"]] == 0).all().all()


def test_the_share_is_stable_and_monotone():
    small = {d for d in DISEASES if in_gate_share(d, 0.2)}
    large = {d for d in DISEASES if in_gate_share(d, 0.8)}
    assert small <= large
    assert {d for d in DISEASES if in_gate_share(d, 0.2)} == small


def test_disabled_or_no_registry_gives_no_rows(builder):
    assert build_gate_query_rows(_registry(), builder, _params(enabled=False)).empty
    assert build_gate_query_rows(_registry().iloc[:0], builder, _params()).empty
