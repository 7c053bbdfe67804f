"""Registry cases through the ingestion parser, cleaned into model cases."""

from __future__ import annotations

import pandas as pd

from disease_pipeline.rare.cases import cases_from_frame
from disease_pipeline.rare.cases import registry_frame as build_registry_frame


def test_registry_frame_has_the_registry_case_columns(registry_frame):
    assert list(registry_frame.columns) == [
        "encounter_id", "label_disease", "disease_name", "present_terms", "excluded_terms",
        "age", "sex",
    ]  # fmt: skip
    assert registry_frame["label_disease"].str.startswith("OMIM:").all()
    assert registry_frame["encounter_id"].is_unique and len(registry_frame) == 60
    # the phenopackets' timeAtLastEncounter (49 of the 60 state one)
    assert registry_frame["age"].notna().sum() == 49
    assert registry_frame["age"].dropna().between(0, 90).all()


def test_registry_ages_come_from_the_reported_age_grouped_at_90():
    symptoms = pd.DataFrame(
        {"encounter_id": ["a", "b", "c"], "hpo_id": ["HP:0001250"] * 3, "present": True}
    )
    diagnoses = pd.DataFrame(
        {
            "encounter_id": ["a", "b", "c"],
            "code": ["OMIM:154700"] * 3,
            "system": "OMIM",
            "name": "Marfan syndrome",
            "role": "primary",
        }
    )
    encounters = pd.DataFrame(
        {"encounter_id": ["a", "b", "c"], "reported_age_years": [45.04, 95.5, None]}
    )
    grouping = {"age_top_code": 90, "age_decimals": 1}
    frame = build_registry_frame(symptoms, diagnoses, encounters=encounters, **grouping)
    assert frame["age"].iloc[:2].tolist() == [45.0, 90.0] and pd.isna(frame["age"].iloc[2])
    assert build_registry_frame(symptoms, diagnoses, **grouping)["age"].isna().all()
    coarser = {"age_top_code": 80, "age_decimals": 0}  # the parameters decide, not constants
    frame = build_registry_frame(symptoms, diagnoses, encounters=encounters, **coarser)
    assert frame["age"].iloc[:2].tolist() == [45.0, 80.0]


def test_cases_are_cleaned_and_empty_ones_counted(base):
    frame = pd.DataFrame(
        {
            "case_id": ["a", "b", "c"],
            "disease_id": ["OMIM:154700", "OMIM:154700", None],
            "present_terms": [["HP:0001166", "HP:9999999"], ["HP:0000006"], ["HP:0001166"]],
            "excluded_terms": [["HP:0001250"], [], []],
        }
    )
    cases, stats = cases_from_frame(frame, base.ontology, base.space, "registry")
    assert [c.case_id for c in cases] == ["a"]
    assert cases[0].present == ["HP:0001166"] and cases[0].excluded == ["HP:0001250"]
    assert stats == {"rows": 3, "no_disease": 1, "no_terms": 1, "unknown_terms": 1, "mapped": 0}
    kept, _ = cases_from_frame(frame, base.ontology, base.space, "registry", keep_empty=True)
    assert [c.case_id for c in kept] == ["a", "b"] and kept[1].present == []
