"""Patient cases with a known rare disease: registry phenopackets and simulated encounters.

A :class:`Case` is the model's unit of training and evaluation. Cases come from the
feature tables of the pipeline (``feat_registry_cases``, warehouse symptoms of
simulated encounters) or, for the stand-alone evaluation script, from the ingestion
pipeline's canonical tables of a phenopacket folder (:func:`registry_frame`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from disease_pipeline.core.ages import top_code_age
from disease_pipeline.knowledge.hpo import Ontology
from disease_pipeline.rare.terms import TermSpace, clean_terms

#: ``Case.source`` of published case reports (registry phenopackets), as opposed to
#: ``simulated`` encounters
PUBLISHED = "registry"


@dataclass
class Case:
    """One patient with a confirmed disease and cleaned HPO terms."""

    case_id: str
    disease_id: str
    present: list[str]
    excluded: list[str] = field(default_factory=list)
    age: float | None = None
    sex: str = "unknown"
    disease_name: str = ""
    source: str = PUBLISHED


def registry_frame(
    symptoms: pd.DataFrame,
    diagnoses: pd.DataFrame,
    patients: pd.DataFrame | None = None,
    encounters: pd.DataFrame | None = None,
    *,
    age_top_code: float,
    age_decimals: int,
) -> pd.DataFrame:
    """Canonical ingestion tables of registry cases → the ``feat_registry_cases`` shape.

    Columns: ``encounter_id, label_disease, disease_name, present_terms,
    excluded_terms, age, sex`` (one row per encounter with a primary diagnosis; the
    first diagnosis by code is kept). ``patients`` (``patient_id`` = encounter id for
    phenopackets, ``sex``) is optional; so is ``encounters``, whose
    ``reported_age_years`` gives ``age``, grouped as the warehouse groups ages
    (``age_top_code`` and ``age_decimals``, the ``anonymization`` parameters) so that
    stand-alone registry cases match the pipeline's; NaN when unknown.
    """
    primary = diagnoses[diagnoses["role"] == "primary"].copy()
    code = primary["code"].astype(str)
    primary["label_disease"] = np.where(
        code.str.contains(":"), code, primary["system"].astype(str) + ":" + code
    )
    primary = primary.sort_values(["encounter_id", "label_disease"]).drop_duplicates("encounter_id")
    present = symptoms["present"].astype(bool)
    frame = primary[["encounter_id", "label_disease", "name"]].rename(
        columns={"name": "disease_name"}
    )
    for column, mask in (("present_terms", present), ("excluded_terms", ~present)):
        lists = symptoms[mask].groupby("encounter_id")["hpo_id"].agg(lambda s: sorted(set(s)))
        frame[column] = frame["encounter_id"].map(lists)
        frame[column] = frame[column].map(lambda v: v if isinstance(v, list) else [])
    sex = (
        {} if patients is None else dict(zip(patients["patient_id"], patients["sex"], strict=False))
    )
    ages: dict = {}
    if encounters is not None and "reported_age_years" in encounters:
        grouped = top_code_age(encounters["reported_age_years"], age_top_code, age_decimals)
        ages = dict(zip(encounters["encounter_id"], grouped["age_years"], strict=True))
    frame["age"] = frame["encounter_id"].map(ages).astype("float64")
    frame["sex"] = frame["encounter_id"].map(sex).fillna("unknown")
    return frame.sort_values("encounter_id").reset_index(drop=True)


def _as_list(value: object) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [v for v in re.split(r"[;,|\s]+", value) if v]
    return [str(v) for v in value]


def cases_from_frame(
    frame: pd.DataFrame,
    ontology: Ontology,
    space: TermSpace,
    source: str,
    *,
    id_column: str = "case_id",
    disease_column: str = "disease_id",
    keep_empty: bool = False,
) -> tuple[list[Case], dict[str, int]]:
    """Clean a case table (ids, disease, present/excluded term lists, age, sex) into cases.

    Returns the cases and counts of what was dropped: cases without a disease, cases
    without any usable present term (kept when ``keep_empty``, for evaluation), unknown
    and remapped term ids.
    """
    stats = {"rows": len(frame), "no_disease": 0, "no_terms": 0, "unknown_terms": 0, "mapped": 0}
    cases = []
    for row in frame.to_dict("records"):
        disease = row.get(disease_column)
        if not isinstance(disease, str) or not disease:
            stats["no_disease"] += 1
            continue
        cleaned = clean_terms(
            ontology,
            space,
            _as_list(row.get("present_terms", row.get("present"))),
            _as_list(row.get("excluded_terms", row.get("excluded"))),
        )
        stats["unknown_terms"] += len(cleaned.unknown)
        stats["mapped"] += len(cleaned.mapped)
        if not cleaned.present:
            stats["no_terms"] += 1
            if not keep_empty:
                continue
        age = row.get("age")
        cases.append(
            Case(
                case_id=str(row.get(id_column)),
                disease_id=disease,
                present=cleaned.present,
                excluded=cleaned.excluded,
                age=None if age is None or pd.isna(age) else float(age),
                sex=str(row.get("sex") or "unknown").lower(),
                disease_name=str(row.get("disease_name") or ""),
                source=source,
            )
        )
    return cases, stats


def group_by_disease(cases: Iterable[Case]) -> dict[str, list[Case]]:
    """Cases keyed by disease id, in input order."""
    groups: dict[str, list[Case]] = {}
    for case in cases:
        groups.setdefault(case.disease_id, []).append(case)
    return groups
