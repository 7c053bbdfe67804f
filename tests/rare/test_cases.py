"""Registry cases through the ingestion parser, cleaned into model cases."""

from __future__ import annotations

import pandas as pd

from disease_pipeline.rare.cases import cases_from_frame


def test_registry_frame_has_the_registry_case_columns(registry_frame):
    assert list(registry_frame.columns) == [
        "encounter_id", "label_disease", "disease_name", "present_terms", "excluded_terms",
        "age", "sex",
    ]  # fmt: skip
    assert registry_frame["label_disease"].str.startswith("OMIM:").all()
    assert registry_frame["encounter_id"].is_unique and len(registry_frame) == 60


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
