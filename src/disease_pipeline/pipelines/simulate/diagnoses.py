"""Site, diagnosis, comorbidities, hidden acuity and outcome of every encounter.

Common diseases are drawn per visit with probability proportional to prevalence x
age density x sex share x seasonal factor x the site's case mix (and its dated
seasonal spike) x the relative risks of the patient's comorbidities; rare cases go to
distinct patients. A share of common diagnoses is recorded as a confusable neighbour
(label noise). The hidden acuity (beta around the disease's base acuity, shifted by age
and comorbidities, plus noise) drives the findings; the severity label is rated from a
separate outcome model (:mod:`outcomes`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, ndtr

from disease_pipeline.pipelines.simulate import differential, outcomes, sites
from disease_pipeline.pipelines.simulate.common import (
    DAYS_PER_YEAR,
    SECONDS_PER_DAY,
    stream,
    uuid_strings,
)

DATABASE_SYSTEM = {"OMIM": "OMIM", "ORPHA": "ORPHA"}


def disease_weights(
    common: pd.DataFrame, age: np.ndarray, male: np.ndarray, female: np.ndarray, month: np.ndarray
) -> np.ndarray:
    """Unnormalised P(disease | age, sex, month): rows = visits, columns = catalogue rows."""
    spec = common["age"].to_list()
    mean = np.array([s["mean"] for s in spec], float)
    sd = np.array([max(s["sd"], 0.05) for s in spec], float)
    low = np.array([s["min"] for s in spec], float)
    high = np.array([s["max"] for s in spec], float)
    mass = ndtr((high - mean) / sd) - ndtr((low - mean) / sd)
    z = (age[:, None] - mean) / sd
    inside = (age[:, None] >= low) & (age[:, None] <= high + 1)
    density = np.where(inside, np.exp(-0.5 * z**2) / (sd * np.maximum(mass, 1e-9)), 0.0)
    share = common["male_share"].to_numpy(float)
    sex = np.where(male[:, None], share, np.where(female[:, None], 1.0 - share, 0.5))
    season = common["seasonality"].to_list()
    peak = np.array([s["peak_month"] for s in season], float)
    amplitude = np.array([s["amplitude"] for s in season], float)
    seasonal = 1.0 + amplitude * np.cos(2 * np.pi * (month[:, None] - peak) / 12.0)
    prevalence = common["prevalence_per_10k"].to_numpy(float)
    weights = prevalence * density * sex * np.maximum(seasonal, 0.0)
    empty = weights.sum(axis=1) <= 0
    weights[empty] = (prevalence * np.maximum(seasonal, 0.0))[empty]
    return weights


def sample_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One column index per row, drawn with probability proportional to the row's weights."""
    cumulative = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cumulative[:, -1]
    return np.minimum((cumulative < u[:, None]).sum(axis=1), weights.shape[1] - 1)


def _comorbidities(
    cfg: dict[str, Any],
    rng: np.random.Generator,
    patient: np.ndarray,
    age: np.ndarray,
    n_patients: int,
) -> pd.DataFrame:
    codes = list(cfg["comorbidities"]["codes"].items())
    frames = []
    for code, spec in codes:
        # one uniform per patient and code: a comorbidity, once present, stays with age
        u = rng.random(n_patients)[patient]
        p = spec["max_prevalence"] * expit((age - spec["midpoint_age"]) / spec["spread_years"])
        hit = np.flatnonzero(u < p)
        frames.append(pd.DataFrame({"encounter": hit, "code": code}))
    out = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["encounter", "code"])
    )
    return out.sort_values(["encounter", "code"], kind="stable").reset_index(drop=True)


def comorbidity_risk(
    cfg: dict[str, Any], comorb: pd.DataFrame, n: int, codes: np.ndarray
) -> np.ndarray:
    """Multiplier of each catalogue disease's weight per visit from the patient's
    comorbidities (``comorbidities.codes[*].risk``: ICD-10 → relative risk)."""
    out = np.ones((n, len(codes)))
    for code, group in comorb.groupby("code", sort=True):
        for target, factor in cfg["comorbidities"]["codes"][code].get("risk", {}).items():
            out[np.ix_(group["encounter"].to_numpy(int), codes == target)] *= float(factor)
    return out


def _acuity(
    cfg: dict[str, Any],
    rng: np.random.Generator,
    base: np.ndarray,
    age: np.ndarray,
    n_comorb: np.ndarray,
) -> np.ndarray:
    acu = cfg["acuity"]
    mean = (
        base
        + acu["age_slope_over_65"] * np.maximum(age - 65.0, 0.0)
        + acu["infant_bonus"] * (age < 1.0)
        + acu["comorbidity_effect"] * n_comorb
    )
    mean = np.clip(mean, 0.02, 0.95)
    kappa = acu["concentration"]
    acuity = rng.beta(mean * kappa, (1.0 - mean) * kappa) + rng.normal(
        0, acu["noise_sd"], len(mean)
    )
    return np.clip(acuity, 0.0, 1.0)


def miscode(
    rng: np.random.Generator, cfg: dict[str, Any], disease: np.ndarray, common: pd.DataFrame
) -> np.ndarray:
    """Recorded catalogue row per common visit: the true one, or with probability
    ``labels.noise_share`` one of its ``labels.neighbours`` most confusable diseases."""
    _, matrix = differential.frequency_matrix(common)
    order, weight = differential.neighbours(
        matrix, common["prevalence_per_10k"].to_numpy(float), int(cfg["labels"]["neighbours"])
    )
    flip = rng.random(len(disease)) < cfg["labels"]["noise_share"]
    pick = sample_rows(rng, weight[disease[flip]])
    out = disease.copy()
    out[flip] = order[disease[flip], pick]
    return out


def _rare_rows(
    rng: np.random.Generator, patient: np.ndarray, rare: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Visits that are rare cases (one per patient) and their rare-disease row."""
    n_rare = int(rare["n_cases"].sum()) if len(rare) else 0
    if not n_rare:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    one_visit = pd.DataFrame({"patient": patient, "key": rng.random(len(patient))})
    one_visit = one_visit.sort_values("key").drop_duplicates("patient")
    if len(one_visit) < n_rare:
        raise ValueError(
            f"parameter simulate.rare.share: {n_rare} rare cases need as many patients, "
            f"only {len(one_visit)} simulated"
        )
    rows = np.sort(rng.choice(one_visit.index.to_numpy(), size=n_rare, replace=False))
    return rows, rng.permutation(np.repeat(np.arange(len(rare)), rare["n_cases"]))


def prediagnostic_visits(cfg: dict[str, Any], rare_rows: np.ndarray, n: int) -> np.ndarray:
    """Per visit: is it a rare-disease patient's visit before the diagnosis?

    ``rare.prediagnostic_share`` of the rare visits happen during the diagnostic odyssey
    (years and several physicians before a rare disease is named): an intercurrent common
    illness brings the patient in, and only one or two of the disease's findings are
    recorded. The label is the rare disease, known in hindsight; nothing in the records
    says which visits these are. Drawn from a stream of its own.
    """
    rng = stream(cfg["seed"], "prediagnostic")
    out = np.zeros(n, dtype=bool)
    out[rare_rows] = rng.random(len(rare_rows)) < cfg["rare"]["prediagnostic_share"]
    return out


def _complaints(
    cfg: dict[str, Any], rare_rows: np.ndarray, common: pd.DataFrame, visits: pd.DataFrame,
    comorb: pd.DataFrame, *, prediagnostic: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """Catalogue row of the intercurrent common illness that brought each visit in (-1:
    none). Every prediagnostic visit and ``rare.acute_share`` of the other rare visits
    have one, drawn like a common visit of the same patient (``visits``: ``age, sex,
    month, site, start_s``; season, site case mix and comorbidity risks included)."""
    rng = stream(cfg["seed"], "complaints")
    out = np.full(len(visits), -1, dtype=int)
    acute = rng.random(len(rare_rows)) < cfg["rare"]["acute_share"]
    rows = rare_rows[acute | prediagnostic[rare_rows]]
    if not len(rows):
        return out
    codes = common["icd10"].to_numpy()
    at = visits.iloc[rows]
    sex = at["sex"].to_numpy()
    weights = disease_weights(common, at["age"].to_numpy(), sex == "male", sex == "female",
                              at["month"].to_numpy())  # fmt: skip
    site = at["site"].to_numpy()
    weights *= sites.case_mix(cfg, site, common["severity_tier"].to_numpy(float))
    weights *= sites.season_spike(cfg, site, at["start_s"].to_numpy(), codes)
    weights *= comorbidity_risk(cfg, comorb, len(visits), codes)[rows]
    out[rows] = sample_rows(rng, weights)
    return out


def assign_diagnoses(
    cfg: dict[str, Any],
    patients: pd.DataFrame,
    visits: pd.DataFrame,
    common: pd.DataFrame,
    rare: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Encounters with site, diagnosis, acuity, outcome, severity and class, plus their
    comorbidities.

    Returns:
        ``encounters`` (one row per visit, in time order; ``disease`` is the true catalogue
        or rare row that drives the findings, ``code``/``disease_name`` the recorded
        diagnosis, ``true_code`` the true one) and ``comorbidities`` (``encounter, code``:
        ICD-10 codes in canonical spelling).
    """
    rng = stream(cfg["seed"], "diagnoses")
    n = len(visits)
    patient = visits["patient"].to_numpy()
    start_s = visits["start_s"].to_numpy()
    age = (start_s / SECONDS_PER_DAY - patients["birth_day"].to_numpy()[patient]) / DAYS_PER_YEAR
    sex = patients["sex"].to_numpy()[patient]
    month = start_s.astype("datetime64[s]").astype("datetime64[M]").astype(int) % 12 + 1
    first_age = pd.Series(age).groupby(patient).min().reindex(range(len(patients)))
    first_age = first_age.fillna(first_age.mean()).to_numpy()
    site = sites.assign_sites(stream(cfg["seed"], "sites"), cfg, first_age)[patient]
    comorb = _comorbidities(cfg, rng, patient, age, len(patients))

    is_rare = np.zeros(n, dtype=bool)
    disease = np.zeros(n, dtype=int)
    rare_rows, rare_disease = _rare_rows(rng, patient, rare)
    is_rare[rare_rows] = True
    disease[rare_rows] = rare_disease
    rows = np.flatnonzero(~is_rare)
    codes = common["icd10"].to_numpy()
    tier = common["severity_tier"].to_numpy(float)
    weights = disease_weights(
        common, age[rows], sex[rows] == "male", sex[rows] == "female", month[rows]
    )
    weights *= sites.case_mix(cfg, site[rows], tier)
    weights *= sites.season_spike(cfg, site[rows], start_s[rows], codes)
    weights *= comorbidity_risk(cfg, comorb, n, codes)[rows]
    disease[rows] = sample_rows(rng, weights)
    prediagnostic = prediagnostic_visits(cfg, rare_rows, n)
    complaint = _complaints(
        cfg, rare_rows, common,
        pd.DataFrame({"age": age, "sex": sex, "month": month, "site": site, "start_s": start_s}),
        comorb, prediagnostic=prediagnostic,
    )  # fmt: skip
    recorded = disease.copy()
    recorded[rows] = miscode(stream(cfg["seed"], "labels"), cfg, disease[rows], common)

    safe = np.where(is_rare, 0, recorded)
    code = np.where(is_rare, "", codes[safe]).astype(object)
    true_code = np.where(is_rare, "", codes[np.where(is_rare, 0, disease)]).astype(object)
    name = common["name"].to_numpy()[safe].astype(object)
    system = np.full(n, "ICD10", dtype=object)
    base = common["base_acuity"].to_numpy(float)[np.where(is_rare, 0, disease)]
    disease_tier = tier[np.where(is_rare, 0, disease)]
    if len(rare_rows):
        ids = rare["disease_id"].to_numpy()[rare_disease]
        system[rare_rows] = [DATABASE_SYSTEM[i.split(":")[0]] for i in ids]
        code[rare_rows] = true_code[rare_rows] = [i.split(":", 1)[1] for i in ids]
        name[rare_rows] = rare["disease_name"].to_numpy()[rare_disease]
        base[rare_rows] = rare["base_acuity"].to_numpy(float)[rare_disease]
        disease_tier[rare_rows] = 1.0 + 4.0 * base[rare_rows]
        # a visit brought in by an intercurrent illness is triaged and worked up for that
        # illness: its acuity and tier are the illness's, raised by the underlying disease
        brought = complaint >= 0
        illness = complaint[brought]
        bonus = float(cfg["rare"]["complaint_acuity_bonus"])
        base[brought] = common["base_acuity"].to_numpy(float)[illness] + bonus
        disease_tier[brought] = tier[illness]

    comorb = comorb[comorb["code"].to_numpy() != code[comorb["encounter"].to_numpy()]]
    n_comorb = np.bincount(comorb["encounter"].to_numpy(int), minlength=n)
    acuity = _acuity(cfg, rng, base, age, n_comorb)
    out_rng = stream(cfg["seed"], "outcomes")
    risk = outcomes.outcome_risk(
        out_rng, cfg, acuity, age=age, n_comorb=n_comorb, tier=disease_tier
    )
    outcome = outcomes.simulate_outcomes(out_rng, cfg, risk)
    klass = outcomes.encounter_class(out_rng, cfg, acuity, outcome["admitted"].to_numpy())
    severity = outcomes.rate_severity(out_rng, cfg, outcome, klass == "EMER")
    modality = sites.modalities(stream(cfg["seed"], "modality"), cfg, site, acuity, klass == "IMP")
    encounters = pd.DataFrame(
        {
            "encounter_id": uuid_strings(rng, n),
            "patient": patient,
            "start_s": start_s,
            "age_years": age,
            "sex": sex,
            "month": month,
            "site": site,
            "category": np.where(is_rare, "RARE", "COMMON"),
            "disease": disease,
            "system": system,
            "code": code,
            "true_code": true_code,
            "disease_name": name,
            "acuity": acuity,
            "severity": severity,
            "encounter_class": klass,
            "modality": modality,
            "n_comorbidities": n_comorb,
            "complaint": complaint,
            "prediagnostic": prediagnostic,
        }
    )
    encounters = pd.concat([encounters, outcome], axis=1)
    return encounters, comorb.reset_index(drop=True)
