"""Query-style rows (pipelines/common_model/query_rows.py), built with a real fitted
FeatureBuilder. Of the P(rare) gate: registry cases of the gate's share of diseases as
RARE, catalogue-sampled symptom-only patients as COMMON. Of the common model: symptom-only
patients of perturbed copies of the catalogue. No onset, vitals or labs."""

from __future__ import annotations

import pandas as pd

from disease_pipeline.pipelines.common_model.query_rows import (
    build_common_query_rows,
    build_gate_query_rows,
)
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


# ------------------------------------------------- the common model's query-style rows
def _common_params(enabled: bool = True) -> dict:
    perturbations = [
        {"replace_share": 0.2, "extra_terms_mean": 1.0},
        {"replace_share": 0.8, "frequency_jitter": 1.25, "max_present": 4, "extra_by_usage": True},
    ]
    rows = {"enabled": enabled, "seed": 5, "per_disease": 3, "perturbations": perturbations}
    return {"seed": 3, "query_rows": rows}


def _train(diseases: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label_disease": [*diseases, "ORPHA:558"],
            "label_category": ["COMMON"] * len(diseases) + ["RARE"],
        }
    )


def test_common_query_rows_sample_every_trained_catalogue_disease_per_perturbation(builder):
    trained = ["J18.9", "I21", "K35.8", "NOT.A.CODE"]
    rows = build_common_query_rows(_train(trained), builder, _common_params())
    assert set(builder.feature_names) <= set(rows.columns)
    assert (rows["label_category"] == "COMMON").all()
    # catalogue diseases with COMMON training rows only; 3 patients x 2 perturbations each
    counts = rows["label_disease"].value_counts()
    assert set(counts.index) == {"J18.9", "I21", "K35.8"}
    assert (counts == 6).all()
    # terms, age and sex only: nothing measured, no onset
    measured = [
        c for c in rows.columns if c.startswith(("vitals_", "labs_")) and not c.endswith("_count")
    ]
    assert measured and rows[measured].isna().all().all()
    assert rows["symptoms_onset_days_max"].isna().all()
    assert (rows["symptoms_present_sum"] >= 1).all()
    # the same seed gives the same rows
    again = build_common_query_rows(_train(trained), builder, _common_params())
    pd.testing.assert_frame_equal(rows, again)


def test_common_query_rows_disabled_or_without_catalogue_diseases_are_empty(builder):
    assert build_common_query_rows(_train(["J18.9"]), builder, _common_params(False)).empty
    assert build_common_query_rows(_train(["NOT.A.CODE"]), builder, _common_params()).empty
