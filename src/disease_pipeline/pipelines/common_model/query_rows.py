"""Query-style rows for the P(rare) gate: what a clinician sends when only phenotypes,
age and sex are known.

Simulated encounters carry onsets, severities, vitals and labs; real requests often carry
none of them. Trained on simulated encounters alone, the gate reads "many findings with
onsets" as rare and gives published rare cases (terms, age, sex) a P(rare) near 0. These
rows add both classes in the query style, so the missing inputs say nothing and the
phenotypes decide:

* RARE: registry phenopackets of the diseases in the gate's share (``in_gate_share``,
  a stable hash of the disease id); the other diseases stay unseen for evaluation;
* COMMON: symptom-only patients sampled from a perturbed copy of the catalogue
  (jittered frequencies, ontology-neighbour terms, extra findings).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from disease_pipeline.knowledge.catalogue import load_common_diseases
from disease_pipeline.knowledge.knowledge_shift import perturbed_catalogue, sample_symptom_patients
from disease_pipeline.rare.gate_check import in_gate_share
from disease_pipeline.records import PatientRecord, Symptom, records_to_tables

_SEXES = {"female", "male", "other"}


def _record(
    case_id: str, present: list[str], absent: list[str], age: Any, sex: Any
) -> PatientRecord:
    known_age = age is not None and not pd.isna(age) and 0 <= float(age) <= 120
    return PatientRecord(
        encounter_id=case_id,
        age=float(age) if known_age else None,
        sex=str(sex).lower() if str(sex).lower() in _SEXES else "unknown",
        symptoms=[Symptom(code=t) for t in present]
        + [Symptom(code=t, present=False) for t in absent],
    )


def _rows(feature_builder: Any, records: list[PatientRecord], category: str) -> pd.DataFrame:
    if not records:
        return pd.DataFrame()
    X = feature_builder.transform(records_to_tables(records))
    return X.assign(label_category=category)


def build_gate_query_rows(
    registry_cases: pd.DataFrame, feature_builder: Any, params: dict[str, Any]
) -> pd.DataFrame:
    """Feature rows (the builder's columns + ``label_category``) of registry cases in the
    gate's share (RARE) and catalogue-sampled symptom-only patients (COMMON), per
    ``params['gate']['query_rows']``; empty when disabled or without registry cases."""
    options = params["gate"].get("query_rows", {})
    if not options.get("enabled", False) or not len(registry_cases):
        return pd.DataFrame()
    seed = int(params["seed"])
    share = float(options["registry_share"])
    chosen = registry_cases[registry_cases["label_disease"].map(lambda d: in_gate_share(d, share))]
    rare = [
        _record(str(r.encounter_id), list(r.present_terms), list(r.excluded_terms), r.age, r.sex)
        for r in chosen.itertuples()
        if len(r.present_terms)
    ]
    catalogue = perturbed_catalogue(load_common_diseases(), seed=seed)
    per_disease = max(1, int(round(len(rare) * float(options["common_ratio"]) / len(catalogue))))
    sampled = sample_symptom_patients(catalogue, per_disease, seed=seed)
    common = [
        _record(f"query-common-{i}", list(r.present), list(r.absent), r.age, r.sex)
        for i, r in enumerate(sampled.itertuples())
    ]
    return pd.concat(
        [_rows(feature_builder, rare, "RARE"), _rows(feature_builder, common, "COMMON")],
        ignore_index=True,
    )
