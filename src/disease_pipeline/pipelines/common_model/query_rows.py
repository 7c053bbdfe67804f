"""Query-style rows: what a clinician sends when only phenotypes, age and sex are known.

For the P(rare) gate (:func:`build_gate_query_rows`):

Simulated encounters carry onsets, severities, vitals and labs; real requests often carry
none of them. Trained on simulated encounters alone, the gate reads "many findings with
onsets" as rare and gives published rare cases (terms, age, sex) a P(rare) near 0. These
rows add both classes in the query style, so the missing inputs say nothing and the
phenotypes decide:

* RARE: registry phenopackets of the diseases in the gate's share (``in_gate_share``,
  a stable hash of the disease id); the other diseases stay unseen for evaluation;
* COMMON: symptom-only patients sampled from a perturbed copy of the catalogue
  (jittered frequencies, ontology-neighbour terms, extra findings).

For the common-disease model (:func:`build_common_query_rows`): symptom-only patients of
the catalogue's diseases drawn from several perturbed copies of it (each perturbation a
different picture of how another source could record the same disease). Trained on the
simulator's records alone, the learned model reads every patient through the simulator's
habits (its background findings, its population frequencies, its case mix) and collapses
on patients recorded elsewhere; these rows teach it what the catalogue knows, under
knowledge shift, so that its answer can be trusted beside the knowledge scorer's.
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


def build_common_query_rows(
    model_input_train: pd.DataFrame, feature_builder: Any, params: dict[str, Any]
) -> pd.DataFrame:
    """Feature rows (the builder's columns + ``label_disease``, ``label_category`` COMMON)
    of symptom-only patients sampled from perturbed copies of the catalogue, per
    ``params['query_rows']``: ``per_disease`` patients of every catalogue disease that has
    COMMON training rows, for each entry of ``perturbations`` (``perturbed_catalogue``
    and ``sample_symptom_patients`` options; seeds from ``seed``). Empty when disabled."""
    options = params.get("query_rows", {})
    if not options.get("enabled", False):
        return pd.DataFrame()
    trained = set(
        model_input_train.loc[model_input_train["label_category"] == "COMMON", "label_disease"]
    )
    catalogue = load_common_diseases()
    catalogue = catalogue[catalogue["icd10"].isin(trained)].reset_index(drop=True)
    if catalogue.empty:
        return pd.DataFrame()
    seed, per_disease = int(options["seed"]), int(options["per_disease"])
    shift_keys = {"frequency_jitter", "replace_share", "age_shift"}
    frames = []
    for i, perturbation in enumerate(options["perturbations"]):
        given = {k: v for k, v in perturbation.items() if v is not None}
        shift = {k: v for k, v in given.items() if k in shift_keys}
        sample = {k: v for k, v in given.items() if k not in shift_keys}
        copy = perturbed_catalogue(catalogue, seed=seed + 2 * i, **shift)
        sampled = sample_symptom_patients(copy, per_disease, seed=seed + 2 * i + 1, **sample)
        records = [
            _record(f"query-common-{i}-{j}", list(r.present), list(r.absent), r.age, r.sex)
            for j, r in enumerate(sampled.itertuples())
        ]
        frames.append(
            _rows(feature_builder, records, "COMMON").assign(
                label_disease=sampled["label"].to_numpy()
            )
        )
    return pd.concat(frames, ignore_index=True)
