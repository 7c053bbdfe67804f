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
  (jittered frequencies, ontology-neighbour terms, extra findings); with
  ``perturbed_like_common``, from each of the common model's perturbed copies instead
  (below), so the gate sees the same pictures of the common diseases as the common model
  and does not read a common disease recorded with unusual terms as rare.

Published cases often record no age (28 % of the shared registry) or no sex; sampled
patients always have both. Left so, the gate learns that a missing age means a rare
disease: every registry case without age got P(rare) >= 0.5, and so did 5.5 % of
common patients sent without age. With ``match_missing`` the COMMON rows lose their age
and sex at the rates the RARE rows lack them (:func:`matched_missingness`), so a missing
input says nothing about the class. Published cases also list many excluded findings
(median 7, 10 % list 32 or more), sampled patients about one: the gate learned that a
long list of negatives means rare (26 % of common patients with eight recorded negatives
got P(rare) >= 0.5). With ``match_excluded`` the COMMON rows exclude as many findings
(:func:`matched_excluded`).

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

import numpy as np
import pandas as pd

from disease_pipeline.knowledge.catalogue import load_common_diseases
from disease_pipeline.knowledge.knowledge_shift import (
    catalogue_findings,
    perturbed_catalogue,
    sample_symptom_patients,
)
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


def matched_missingness(
    records: list[PatientRecord], like: list[PatientRecord], seed: int
) -> list[PatientRecord]:
    """``records`` with their age removed (``None``) and their sex made ``unknown`` at the
    rates ``like`` lacks them, each independently (seeded draws)."""
    if not like:
        return records
    no_age = float(np.mean([r.age is None for r in like]))
    no_sex = float(np.mean([r.sex == "unknown" for r in like]))
    rng = np.random.default_rng(seed)
    drop_age = rng.random(len(records)) < no_age
    drop_sex = rng.random(len(records)) < no_sex
    return [
        r.model_copy(
            update={
                "age": None if gone_age else r.age,
                "sex": "unknown" if gone_sex else r.sex,
            }
        )
        for r, gone_age, gone_sex in zip(records, drop_age, drop_sex, strict=True)
    ]


def matched_excluded(
    records: list[PatientRecord], like: list[PatientRecord], pool: list[str], seed: int
) -> list[PatientRecord]:
    """``records`` with findings of ``pool`` they do not show added as excluded, so that
    their numbers of excluded findings follow those of ``like`` (each record's number
    drawn from ``like``'s; a record already excluding as many keeps its own)."""
    if not like or not pool:
        return records
    counts = np.array([sum(not s.present for s in r.symptoms) for r in like])
    rng = np.random.default_rng(seed)
    out = []
    for record, target in zip(records, rng.choice(counts, size=len(records)), strict=True):
        listed = {s.code for s in record.symptoms}
        free = [t for t in pool if t not in listed]
        missing = min(int(target) - sum(not s.present for s in record.symptoms), len(free))
        if missing <= 0:
            out.append(record)
            continue
        added = [Symptom(code=str(t), present=False) for t in rng.choice(free, missing, False)]
        out.append(record.model_copy(update={"symptoms": [*record.symptoms, *added]}))
    return out


#: ``perturbed_catalogue`` options of a perturbation entry (the rest are sampling options)
SHIFT_KEYS = frozenset({"frequency_jitter", "replace_share", "age_shift"})


def sample_perturbed(
    catalogue: pd.DataFrame, perturbations: list[dict[str, Any]], per_disease: int, seed: int
) -> list[pd.DataFrame]:
    """Per entry of ``perturbations``: ``per_disease`` symptom-only patients of every
    disease of a perturbed copy of ``catalogue`` (``perturbed_catalogue`` and
    ``sample_symptom_patients`` options; an absent or null key keeps their default)."""
    frames = []
    for i, perturbation in enumerate(perturbations):
        given = {k: v for k, v in perturbation.items() if v is not None}
        shift = {k: v for k, v in given.items() if k in SHIFT_KEYS}
        sample = {k: v for k, v in given.items() if k not in SHIFT_KEYS}
        copy = perturbed_catalogue(catalogue, seed=seed + 2 * i, **shift)
        frames.append(sample_symptom_patients(copy, per_disease, seed=seed + 2 * i + 1, **sample))
    return frames


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
    ``params['gate']['query_rows']``; empty when disabled or without registry cases. With
    ``perturbed_like_common`` the COMMON patients come from each of the common model's
    perturbed catalogues (``params['query_rows']['perturbations']``); with
    ``match_missing`` they lack age and sex as often as the RARE rows do; with
    ``match_excluded`` they record as many excluded findings (catalogue findings they do
    not show)."""
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
    catalogue = load_common_diseases()
    per_disease = max(1, int(round(len(rare) * float(options["common_ratio"]) / len(catalogue))))
    perturbations = params.get("query_rows", {}).get("perturbations") or []
    if options.get("perturbed_like_common", False) and perturbations:
        each = -(-per_disease // len(perturbations))  # ceil: at least per_disease in all
        sampled = pd.concat(
            sample_perturbed(catalogue, perturbations, each, seed), ignore_index=True
        )
    else:
        sampled = sample_symptom_patients(
            perturbed_catalogue(catalogue, seed=seed), per_disease, seed=seed
        )
    common = [
        _record(f"query-common-{i}", list(r.present), list(r.absent), r.age, r.sex)
        for i, r in enumerate(sampled.itertuples())
    ]
    if options.get("match_missing", False):
        common = matched_missingness(common, rare, seed)
    if options.get("match_excluded", False):
        common = matched_excluded(common, rare, catalogue_findings(catalogue), seed + 1)
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
    frames = []
    for i, sampled in enumerate(
        sample_perturbed(catalogue, options["perturbations"], per_disease, seed)
    ):
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
