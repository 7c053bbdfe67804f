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


def _params(
    enabled: bool = True, match_missing: bool = False, match_excluded: bool = False
) -> dict:
    rows = {
        "enabled": enabled,
        "registry_share": 0.5,
        "common_ratio": 2.0,
        "match_missing": match_missing,
        "match_excluded": match_excluded,
    }
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


def _missing(rows: pd.DataFrame) -> tuple[float, float]:
    """Shares of rows without an age and without a known sex."""
    no_sex = (rows["sex_female"] == 0) & (rows["sex_male"] == 0)
    return float(rows["age_years"].isna().mean()), float(no_sex.mean())


def test_common_rows_lack_age_and_sex_as_often_as_the_rare_rows(builder):
    registry = pd.concat([_registry()] * 10, ignore_index=True)
    registry["label_disease"] = [f"OMIM:{610000 + i}" for i in range(len(registry))]
    registry["encounter_id"] = [f"case-{i}" for i in range(len(registry))]
    matched = build_gate_query_rows(registry, builder, _params(match_missing=True))
    rare_age, rare_sex = _missing(matched[matched["label_category"] == "RARE"])
    common_age, common_sex = _missing(matched[matched["label_category"] == "COMMON"])
    assert 0.3 < rare_age < 0.7 and 0.3 < rare_sex < 0.7  # the fixture: every other case
    assert abs(common_age - rare_age) < 0.1
    assert abs(common_sex - rare_sex) < 0.1
    # seeded: the same rows again
    again = build_gate_query_rows(registry, builder, _params(match_missing=True))
    pd.testing.assert_frame_equal(matched, again)
    # without the option every sampled patient keeps its age and sex: missing means rare
    plain = build_gate_query_rows(registry, builder, _params())
    assert _missing(plain[plain["label_category"] == "COMMON"]) == (0.0, 0.0)


def test_matched_missingness_follows_the_reference_rates():
    from disease_pipeline.pipelines.common_model.query_rows import matched_missingness
    from disease_pipeline.records import PatientRecord

    like = [PatientRecord(age=None if i % 4 == 0 else 30.0, sex="female") for i in range(400)]
    records = [PatientRecord(age=50.0, sex="male") for _ in range(2000)]
    out = matched_missingness(records, like, seed=1)
    assert abs(sum(r.age is None for r in out) / len(out) - 0.25) < 0.04
    assert all(r.sex == "male" for r in out)  # the reference always knows the sex
    assert matched_missingness(records, [], seed=1) == records
    assert all(r.age == 50.0 for r in records)  # the input is not changed


def test_common_rows_exclude_as_many_findings_as_the_rare_rows(builder):
    registry = pd.concat([_registry()] * 10, ignore_index=True)
    registry["label_disease"] = [f"OMIM:{620000 + i}" for i in range(len(registry))]
    registry["encounter_id"] = [f"case-{i}" for i in range(len(registry))]
    # none of them a present term of the fixture
    many = [f"HP:{n:07d}" for n in (486, 2020, 12735, 1945, 2315, 2094, 1742, 2013)]
    registry["excluded_terms"] = [many[: 2 + i % 7] for i in range(len(registry))]
    excluded = "symptoms_excluded_sum"
    plain = build_gate_query_rows(registry, builder, _params())
    matched = build_gate_query_rows(registry, builder, _params(match_excluded=True))
    rare = matched.loc[matched["label_category"] == "RARE", excluded]
    common = matched.loc[matched["label_category"] == "COMMON", excluded]
    before = plain.loc[plain["label_category"] == "COMMON", excluded]
    assert before.mean() < 2 < rare.mean()  # sampled patients exclude about one finding
    assert abs(common.mean() - rare.mean()) < 1.0
    assert common.min() >= 2  # every RARE row excludes at least two
    # the added negatives are not findings the patients show
    assert (matched["symptoms_present_sum"] == plain["symptoms_present_sum"]).all()


def test_matched_excluded_adds_absent_findings_from_the_pool_only():
    from disease_pipeline.pipelines.common_model.query_rows import matched_excluded
    from disease_pipeline.records import PatientRecord, Symptom

    like = [
        PatientRecord(symptoms=[Symptom(code=f"HP:{900 + j:07d}", present=False) for j in range(5)])
        for _ in range(3)
    ]
    pool = ["HP:0012735", "HP:0002020", "HP:0001945", "HP:0002315", "HP:0000486", "HP:0001250"]
    record = PatientRecord(symptoms=[Symptom(code="HP:0012735")])
    (out,) = matched_excluded([record], like, pool, seed=2)
    absent = [s.code for s in out.symptoms if not s.present]
    assert len(absent) == 5 and set(absent) <= set(pool) - {"HP:0012735"}
    assert [s.code for s in out.symptoms if s.present] == ["HP:0012735"]
    assert matched_excluded([record], [], pool, seed=2) == [record]


def test_common_rows_can_come_from_each_of_the_common_models_perturbations(builder):
    registry = pd.concat([_registry()] * 10, ignore_index=True)
    registry["label_disease"] = [f"OMIM:{630000 + i}" for i in range(len(registry))]
    registry["encounter_id"] = [f"case-{i}" for i in range(len(registry))]
    params = _params() | {"query_rows": _common_params()["query_rows"]}
    single = build_gate_query_rows(registry, builder, params)
    params["gate"]["query_rows"]["perturbed_like_common"] = True
    mixed = build_gate_query_rows(registry, builder, params)
    n_common = (mixed["label_category"] == "COMMON").sum()
    # at least as many COMMON rows, split over the two perturbations (a multiple of 2)
    assert n_common >= (single["label_category"] == "COMMON").sum()
    assert n_common % 2 == 0
    # the second perturbation keeps at most 4 annotated findings: fewer per patient
    present = "symptoms_present_sum"
    common = mixed.loc[mixed["label_category"] == "COMMON", present]
    assert common.mean() < single.loc[single["label_category"] == "COMMON", present].mean()
    pd.testing.assert_frame_equal(mixed, build_gate_query_rows(registry, builder, params))
    # the RARE rows are the same either way
    rare = mixed[mixed["label_category"] == "RARE"].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        rare, single[single["label_category"] == "RARE"].reset_index(drop=True)
    )


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
