"""Vital signs and laboratory results driven by the hidden acuity.

A value is the healthy-adult normal with a per-patient random effect, plus the
disease's shift (catalogue, at acuity 1) scaled by acuity and by the patient's own
response, a non-specific stress response (parameters) and chronic comorbidity shifts;
vitals add the physiology of small children. Labs live on a log scale and their shift
is capped at a few log-SDs, so diseases sharing a mechanism overlap. Which encounters
get vitals and labs follows the encounter's modality (:mod:`sites`) and, for labs,
what the presenting findings make a clinician suspect (missing not at random). Values
stay inside the plausible range; impossible ones come only from injected entry
errors. Each value is then expressed in one of the LOINC table's units, with the
site's unit habits and its mid-period assay change.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from disease_pipeline.knowledge.catalogue import normalise_unit
from disease_pipeline.pipelines.simulate import differential, sites
from disease_pipeline.pipelines.simulate.common import decimals_for, stream

MEASUREMENT_COLUMNS = ["encounter", "loinc", "value", "unit", "decimals", "canonical", "minutes"]


def unit_options(row: dict) -> list[tuple[str, float, float]]:
    """``(unit, scale, offset)`` with canonical = value x scale + offset; canonical unit first."""
    options = [(row["canonical_unit"], 1.0, 0.0)]
    options += [(u, float(f), 0.0) for u, f in row["units"].items() if u != row["canonical_unit"]]
    options += [(u, float(a["scale"]), float(a["offset"])) for u, a in row["affine"].items()]
    return options


def _normal(rng: np.random.Generator, mean: float, sd: float, n: int) -> np.ndarray:
    if mean > 0 and sd / mean >= 0.5:  # skewed analyte: log-normal with the same mean and sd
        sigma2 = np.log1p((sd / mean) ** 2)
        return rng.lognormal(np.log(mean) - sigma2 / 2, np.sqrt(sigma2), n)
    return rng.normal(mean, sd, n)


def _shift_matrix(
    encounters: pd.DataFrame, common: pd.DataFrame, rare_shifts: list[dict], keys: list[str],
    field: str,
) -> np.ndarray:  # fmt: skip
    """Disease shift at acuity 1, per encounter and key; ``rare_shifts``: one
    ``{"vitals": {...}, "labs": {...}}`` per simulated rare disease."""
    shifts = [*common[field].to_list(), *(r[field] for r in rare_shifts)]
    table = np.zeros((len(shifts), len(keys)))
    for d, block in enumerate(shifts):
        for j, key in enumerate(keys):
            table[d, j] = float((block or {}).get(key, 0.0))
    is_rare = encounters["category"].to_numpy() == "RARE"
    disease = encounters["disease"].to_numpy() + np.where(is_rare, len(common), 0)
    return table[disease]


def _comorbidity_shift(
    cfg: dict[str, Any], comorbidities: pd.DataFrame, n: int, keys: list[str], field: str
) -> np.ndarray:
    out = np.zeros((n, len(keys)))
    specs = cfg["comorbidities"]["codes"]
    for code, group in comorbidities.groupby("code", sort=True):
        shifts = specs[code].get(field, {})
        for j, key in enumerate(keys):
            if key in shifts:
                np.add.at(out[:, j], group["encounter"].to_numpy(), float(shifts[key]))
    return out


def _express(
    rng: np.random.Generator,
    rows: list[dict],
    table: pd.DataFrame,
    *,
    alt_share: np.ndarray,
    lower_share: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pick a unit per value and convert it: returns value (rounded), unit, decimals.

    ``table`` has ``loinc``, ``canonical`` and ``forced_unit`` (a unit the site's assay
    always reports in, ``""`` = none); ``alt_share``: per row, P(an alternative unit).
    """
    loinc_col, canonical = table["loinc"].to_numpy(), table["canonical"].to_numpy()
    forced = table["forced_unit"].to_numpy()
    n = len(canonical)
    unit = np.empty(n, dtype=object)
    value = np.empty(n)
    decimals = np.empty(n, dtype=int)
    for row in rows:
        idx = np.flatnonzero(loinc_col == row["loinc"])
        options = unit_options(row)
        pick = np.zeros(len(idx), dtype=int)
        if len(options) > 1:
            alt = rng.random(len(idx)) < alt_share[idx]
            pick[alt] = rng.integers(1, len(options), size=int(alt.sum()))
        names = [name for name, _, _ in options]
        for k, name in enumerate(names):
            pick[forced[idx] == name] = k
        for k, (name, scale, offset) in enumerate(options):
            sel = idx[pick == k]
            if name.lower() != name and normalise_unit(name.lower()) == name:
                lower = rng.random(len(sel)) < lower_share
                unit[sel[lower]] = name.lower()
                unit[sel[~lower]] = name
            else:
                unit[sel] = name
            places = int(decimals_for(np.array([row["normal"]["sd"] / scale]))[0])
            # rounding must not push a value out of the plausible range
            step = 10.0**-places
            low = np.ceil((row["plausible"]["min"] - offset) / scale / step) * step
            high = np.floor((row["plausible"]["max"] - offset) / scale / step) * step
            value[sel] = np.clip(np.round((canonical[sel] - offset) / scale, places), low, high)
            decimals[sel] = places
    return value, unit, decimals


def _random_effect(
    rng: np.random.Generator, patient: np.ndarray, n_patients: int, icc: float
) -> np.ndarray:
    """Standard-normal noise per encounter whose share ``icc`` of variance is the patient's
    own level (repeat visits of one patient resemble each other)."""
    own = rng.normal(size=n_patients)[patient]
    return np.sqrt(icc) * own + np.sqrt(1.0 - icc) * rng.normal(size=len(patient))


def disease_scale(rng: np.random.Generator, cfg: dict[str, Any], acuity: np.ndarray) -> np.ndarray:
    """Share of the disease's shift (at acuity 1) an encounter shows: present from the
    start (``measurements.acuity_floor``), growing with acuity, and scaled by the patient's
    own response (log-normal, ``measurements.response_sd``)."""
    meas = cfg["measurements"]
    floor = meas["acuity_floor"]
    response = rng.lognormal(-(meas["response_sd"] ** 2) / 2, meas["response_sd"], len(acuity))
    return (floor + (1.0 - floor) * acuity) * response


def lab_values(
    cfg: dict[str, Any], row: dict, shifts: tuple[np.ndarray, np.ndarray, np.ndarray],
    noise: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """Canonical lab values on a log scale.

    The healthy log-normal spread is widened by ``measurements.hospital_spread`` (``noise``
    in SD units). ``shifts`` = (disease shift at acuity 1, its per-encounter scale, other
    shifts), in canonical units, become log ratios to the healthy mean; the disease's is
    capped at ``measurements.max_shift_sd`` of those log-SDs before it is scaled.
    """
    meas = cfg["measurements"]
    mean, sd = float(row["normal"]["mean"]), float(row["normal"]["sd"])
    healthy = np.sqrt(np.log1p((sd / mean) ** 2))
    sigma = healthy * meas["hospital_spread"]
    mu = np.log(mean) - (healthy**2 / 2 if sd / mean >= 0.5 else 0.0)
    disease, scale, other = shifts
    floor = meas["min_ratio"] * mean
    cap = meas["max_shift_sd"] * sigma
    effect = np.clip(np.log(np.maximum(mean + disease, floor) / mean), -cap, cap) * scale
    effect += np.log(np.maximum(mean + other, floor) / mean)
    return np.exp(mu + sigma * noise + effect)


def _simulate_kind(
    cfg: dict[str, Any],
    rng: np.random.Generator,
    *,
    tables: dict[str, pd.DataFrame],
    rows: list[dict],
    kind: str,
    suspected: np.ndarray,
) -> pd.DataFrame:
    encounters = tables["encounters"]
    n = len(encounters)
    acuity = encounters["acuity"].to_numpy()
    age = encounters["age_years"].to_numpy()
    patient = encounters["patient"].to_numpy()
    modality = encounters["modality"].to_numpy()
    if kind == "vital":
        keys, field, section = [r["short"] for r in rows], "vitals", cfg["vitals"]
        examined = modality != "symptoms_only"
    else:
        keys, field, section = [r["loinc"] for r in rows], "labs", cfg["labs"]
        examined = modality == "full"
    common = tables["common"]
    disease_shift = _shift_matrix(encounters, common, tables["rare_shifts"], keys, field)
    chronic = _comorbidity_shift(cfg, tables["comorbidities"], n, keys, field)
    generic = np.array([float(section["generic_shift"].get(k, 0.0)) for k in keys])
    icc = cfg["measurements"]["patient_icc"]
    n_patients = int(patient.max()) + 1 if n else 0
    frames = []
    for j, row in enumerate(rows):
        noise = _random_effect(rng, patient, n_patients, icc)
        scale = disease_scale(rng, cfg, acuity)
        other = acuity * generic[j] + chronic[:, j]
        mean, sd = float(row["normal"]["mean"]), float(row["normal"]["sd"])
        if kind == "vital":
            cap = cfg["measurements"]["vital_max_shift_sd"] * sd
            value = mean + sd * noise + np.clip(disease_shift[:, j], -cap, cap) * scale + other
            child = float(cfg["vitals"]["child_shift"].get(row["short"], 0.0))
            value += child * np.exp(-age / cfg["vitals"]["child_scale_years"])
            keep = examined & (rng.random(n) >= row["missing_rate"])
            minutes = rng.integers(0, 20, size=n)
        else:
            value = lab_values(cfg, row, (disease_shift[:, j], scale, other), noise)
            # ordered when the presentation suggests a disease the lab tests for, and
            # more often for sicker patients (the table's rate at average suspicion)
            labs = cfg["labs"]
            rate = np.clip(row["missing_rate"], 1e-6, 1 - 1e-6)
            centred = suspected[:, j] - suspected[:, j].mean()
            logit_order = (
                -logit(rate)
                + labs["suspicion_effect"] * centred
                + labs["missing_acuity_effect"] * (acuity - acuity.mean())
            )
            keep = examined & (rng.random(n) < expit(logit_order))
            low, high = labs["delay_minutes"]
            minutes = rng.integers(int(low), int(high) + 1, size=n)
        plausible = row["plausible"]
        value = np.clip(value, float(plausible["min"]), float(plausible["max"]))
        idx = np.flatnonzero(keep)
        frames.append(
            pd.DataFrame(
                {
                    "encounter": idx,
                    "loinc": row["loinc"],
                    "canonical": value[idx],
                    "minutes": minutes[idx],
                }
            )  # fmt: skip
        )
    table = pd.concat(frames, ignore_index=True).sort_values(["encounter"], kind="stable")
    table = table.reset_index(drop=True)
    site = encounters["site"].to_numpy()[table["encounter"].to_numpy()]
    table["forced_unit"] = ""
    if kind == "lab":
        when = encounters["start_s"].to_numpy()[table["encounter"].to_numpy()]
        factor, new = sites.assay_factor(cfg, site, when, table["loinc"].to_numpy())
        table["canonical"] = table["canonical"] * factor
        table.loc[new, "forced_unit"] = str(cfg["sites"]["assay_change"]["unit"])
        share = sites.site_value(cfg, site, "lab_alt_unit_share")
    else:
        share = np.full(len(table), section["alt_unit_share"])
    lower = cfg["labs"]["lowercase_unit_share"] if kind == "lab" else 0.0
    table["value"], table["unit"], table["decimals"] = _express(
        rng, rows, table, alt_share=share, lower_share=lower
    )
    return table[MEASUREMENT_COLUMNS]


def simulate_measurements(
    cfg: dict[str, Any],
    encounters: pd.DataFrame,
    comorbidities: pd.DataFrame,
    common: pd.DataFrame,
    lab_table: pd.DataFrame,
    *,
    symptoms: pd.DataFrame,
    rare_shifts: list[dict],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Vitals (for FHIR) and labs (for the LIS), one row per measured value.

    Symptoms-only encounters get neither, vitals-only ones no labs; a lab is ordered
    more often when the recorded present ``symptoms`` suggest a disease it tests for.
    ``rare_shifts``: per simulated rare disease, its ``vitals``/``labs`` shifts
    (:func:`rare_cases.measurement_shifts`).

    Returns:
        Two frames with :data:`MEASUREMENT_COLUMNS`: ``value`` in ``unit`` (rounded to
        ``decimals``), ``canonical`` in the canonical unit, ``minutes`` after the start.
    """
    rng = stream(cfg["seed"], "measurements")
    records = lab_table.to_dict("records")
    terms, matrix = differential.frequency_matrix(common)
    present = symptoms.loc[symptoms["present"], ["encounter", "hpo_id"]]
    cover = differential.coverage(present, len(encounters), terms, matrix)
    tables = {"encounters": encounters, "comorbidities": comorbidities, "common": common,
              "rare_shifts": rare_shifts}  # fmt: skip
    out = []
    for kind in ("vital", "lab"):
        rows = [r for r in records if r["kind"] == kind]
        keys = [r["short"] if kind == "vital" else r["loinc"] for r in rows]
        field = "vitals" if kind == "vital" else "labs"
        tests_for = np.array(
            [[float((shifts or {}).get(k, 0.0)) != 0.0 for k in keys] for shifts in common[field]]
        ).reshape(len(common), len(keys))
        suspected = differential.suspicion(cover, tests_for)
        out.append(
            _simulate_kind(cfg, rng, tables=tables, rows=rows, kind=kind, suspected=suspected)
        )
    return out[0], out[1]
