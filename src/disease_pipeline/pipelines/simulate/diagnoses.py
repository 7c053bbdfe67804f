"""Diagnosis, comorbidities and hidden acuity of every encounter.

Common diseases are drawn per visit with probability proportional to prevalence x
age density x sex share x seasonal factor; rare cases go to distinct patients. The
hidden acuity (beta around the disease's base acuity, shifted by age and
comorbidities, plus noise) later drives vitals, labs, encounter class and the
severity label, which adds its own noise to the thresholds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, ndtr

from disease_pipeline.pipelines.simulate.common import (
    DAYS_PER_YEAR,
    SECONDS_PER_DAY,
    SEVERITY_LEVELS,
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


def _acuity(
    cfg: dict[str, Any],
    rng: np.random.Generator,
    base: np.ndarray,
    age: np.ndarray,
    n_comorb: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
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
    acuity = np.clip(acuity, 0.0, 1.0)
    noisy = acuity + rng.normal(0.0, acu["label_noise_sd"], len(acuity))
    level = np.digitize(noisy, np.asarray(acu["thresholds"], float))
    return acuity, np.asarray(SEVERITY_LEVELS, dtype=object)[level]


def _encounter_class(
    cfg: dict[str, Any], rng: np.random.Generator, acuity: np.ndarray
) -> np.ndarray:
    enc = cfg["encounters"]
    p_inpatient = expit(enc["class_slope"] * (acuity - enc["inpatient_midpoint"]))
    p_emergency = expit(enc["class_slope"] * (acuity - enc["emergency_midpoint"]))
    u1, u2 = rng.random(len(acuity)), rng.random(len(acuity))
    return np.where(u1 < p_inpatient, "IMP", np.where(u2 < p_emergency, "EMER", "AMB"))


def assign_diagnoses(
    cfg: dict[str, Any],
    patients: pd.DataFrame,
    visits: pd.DataFrame,
    common: pd.DataFrame,
    rare: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Encounters with diagnosis, acuity, severity and class, plus their comorbidities.

    Returns:
        ``encounters`` (one row per visit, in time order) and ``comorbidities``
        (``encounter, code``: ICD-10 codes in canonical spelling).
    """
    rng = stream(cfg["seed"], "diagnoses")
    n = len(visits)
    patient = visits["patient"].to_numpy()
    start_s = visits["start_s"].to_numpy()
    age = (start_s / SECONDS_PER_DAY - patients["birth_day"].to_numpy()[patient]) / DAYS_PER_YEAR
    sex = patients["sex"].to_numpy()[patient]
    month = start_s.astype("datetime64[s]").astype("datetime64[M]").astype(int) % 12 + 1

    is_rare = np.zeros(n, dtype=bool)
    disease = np.zeros(n, dtype=int)
    n_rare = int(rare["n_cases"].sum()) if len(rare) else 0
    if n_rare:
        one_visit = pd.DataFrame({"patient": patient, "key": rng.random(n)}).sort_values("key")
        one_visit = one_visit.drop_duplicates("patient")
        if len(one_visit) < n_rare:
            raise ValueError(
                f"parameter simulate.rare.share: {n_rare} rare cases need as many patients, "
                f"only {len(one_visit)} simulated"
            )
        rare_rows = np.sort(rng.choice(one_visit.index.to_numpy(), size=n_rare, replace=False))
        is_rare[rare_rows] = True
        disease[rare_rows] = rng.permutation(np.repeat(np.arange(len(rare)), rare["n_cases"]))
    common_rows = np.flatnonzero(~is_rare)
    weights = disease_weights(
        common,
        age[common_rows],
        sex[common_rows] == "male",
        sex[common_rows] == "female",
        month[common_rows],
    )
    disease[common_rows] = sample_rows(rng, weights)

    code = np.where(is_rare, "", common["icd10"].to_numpy()[np.where(is_rare, 0, disease)]).astype(
        object
    )
    name = common["name"].to_numpy()[np.where(is_rare, 0, disease)].astype(object)
    system = np.full(n, "ICD10", dtype=object)
    base = common["base_acuity"].to_numpy(float)[np.where(is_rare, 0, disease)]
    if n_rare:
        rows = np.flatnonzero(is_rare)
        ids = rare["disease_id"].to_numpy()[disease[rows]]
        system[rows] = [DATABASE_SYSTEM[i.split(":")[0]] for i in ids]
        code[rows] = [i.split(":", 1)[1] for i in ids]
        name[rows] = rare["disease_name"].to_numpy()[disease[rows]]
        base[rows] = rare["base_acuity"].to_numpy(float)[disease[rows]]

    comorb = _comorbidities(cfg, rng, patient, age, len(patients))
    comorb = comorb[comorb["code"].to_numpy() != code[comorb["encounter"].to_numpy()]]
    n_comorb = np.bincount(comorb["encounter"].to_numpy(int), minlength=n)
    acuity, severity = _acuity(cfg, rng, base, age, n_comorb)
    encounters = pd.DataFrame(
        {
            "encounter_id": uuid_strings(rng, n),
            "patient": patient,
            "start_s": start_s,
            "age_years": age,
            "sex": sex,
            "month": month,
            "category": np.where(is_rare, "RARE", "COMMON"),
            "disease": disease,
            "system": system,
            "code": code,
            "disease_name": name,
            "acuity": acuity,
            "severity": severity,
            "encounter_class": _encounter_class(cfg, rng, acuity),
            "n_comorbidities": n_comorb,
        }
    )
    return encounters, comorb.reset_index(drop=True)
