"""Vital signs and laboratory results driven by the hidden acuity.

A value is the healthy-adult normal (log-normal for skewed analytes) plus shifts at
acuity 1 from the disease (catalogue) and a non-specific stress response (parameters),
scaled by the encounter's acuity, plus chronic comorbidity shifts and, for vitals, the
physiology of small children. Values stay inside the plausible range; impossible ones
come only from injected entry errors. Each value is then expressed in one of the
LOINC table's units.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from disease_pipeline.knowledge.catalogue import normalise_unit
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
    encounters: pd.DataFrame, common: pd.DataFrame, keys: list[str], field: str
) -> np.ndarray:
    """Disease shift at acuity 1, per encounter and key (rare diseases: 0)."""
    table = np.zeros((len(common) + 1, len(keys)))
    for d, shifts in enumerate(common[field].to_list()):
        for j, key in enumerate(keys):
            table[d, j] = float((shifts or {}).get(key, 0.0))
    disease = np.where(
        encounters["category"].to_numpy() == "RARE", len(common), encounters["disease"]
    )
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
    loinc_col: np.ndarray,
    canonical: np.ndarray,
    *,
    alt_share: float,
    lower_share: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pick a unit per value and convert it: returns value (rounded), unit, decimals."""
    n = len(canonical)
    unit = np.empty(n, dtype=object)
    value = np.empty(n)
    decimals = np.empty(n, dtype=int)
    for row in rows:
        idx = np.flatnonzero(loinc_col == row["loinc"])
        options = unit_options(row)
        pick = np.zeros(len(idx), dtype=int)
        if len(options) > 1:
            alt = rng.random(len(idx)) < alt_share
            pick[alt] = rng.integers(1, len(options), size=int(alt.sum()))
        for k, (name, scale, offset) in enumerate(options):
            sel = idx[pick == k]
            spelled = name
            if name.lower() != name and normalise_unit(name.lower()) == name:
                lower = rng.random(len(sel)) < lower_share
                unit[sel[lower]] = name.lower()
                sel_upper = sel[~lower]
                unit[sel_upper] = name
            else:
                unit[sel] = spelled
            places = int(decimals_for(np.array([row["normal"]["sd"] / scale]))[0])
            # rounding must not push a value out of the plausible range
            step = 10.0**-places
            low = np.ceil((row["plausible"]["min"] - offset) / scale / step) * step
            high = np.floor((row["plausible"]["max"] - offset) / scale / step) * step
            value[sel] = np.clip(np.round((canonical[sel] - offset) / scale, places), low, high)
            decimals[sel] = places
    return value, unit, decimals


def _simulate_kind(
    cfg: dict[str, Any],
    rng: np.random.Generator,
    *,
    encounters: pd.DataFrame,
    comorbidities: pd.DataFrame,
    common: pd.DataFrame,
    rows: list[dict],
    kind: str,
) -> pd.DataFrame:
    n = len(encounters)
    acuity = encounters["acuity"].to_numpy()
    age = encounters["age_years"].to_numpy()
    if kind == "vital":
        keys, field, section = [r["short"] for r in rows], "vitals", cfg["vitals"]
    else:
        keys, field, section = [r["loinc"] for r in rows], "labs", cfg["labs"]
    disease_shift = _shift_matrix(encounters, common, keys, field)
    chronic = _comorbidity_shift(cfg, comorbidities, n, keys, field)
    generic = np.array([float(section["generic_shift"].get(k, 0.0)) for k in keys])
    frames = []
    for j, row in enumerate(rows):
        base = _normal(rng, float(row["normal"]["mean"]), float(row["normal"]["sd"]), n)
        value = base + acuity * (disease_shift[:, j] + generic[j]) + chronic[:, j]
        if kind == "vital":
            child = float(cfg["vitals"]["child_shift"].get(row["short"], 0.0))
            value += child * np.exp(-age / cfg["vitals"]["child_scale_years"])
            keep = rng.random(n) >= row["missing_rate"]
            minutes = rng.integers(0, 20, size=n)
        else:
            # sicker patients get more tests: missingness falls with acuity (mean kept)
            effect = cfg["labs"]["missing_acuity_effect"]
            rate = np.clip(row["missing_rate"], 1e-6, 1 - 1e-6)
            p_missing = expit(logit(rate) - effect * (acuity - acuity.mean()))
            keep = rng.random(n) >= p_missing
            low, high = cfg["labs"]["delay_minutes"]
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
            )
        )
    table = pd.concat(frames, ignore_index=True).sort_values(["encounter"], kind="stable")
    table = table.reset_index(drop=True)
    share = section["alt_unit_share"]
    lower = cfg["labs"]["lowercase_unit_share"] if kind == "lab" else 0.0
    table["value"], table["unit"], table["decimals"] = _express(
        rng, rows, table["loinc"].to_numpy(), table["canonical"].to_numpy(),
        alt_share=share, lower_share=lower,
    )  # fmt: skip
    return table[MEASUREMENT_COLUMNS]


def simulate_measurements(
    cfg: dict[str, Any],
    encounters: pd.DataFrame,
    comorbidities: pd.DataFrame,
    common: pd.DataFrame,
    lab_table: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Vitals (for FHIR) and labs (for the LIS), one row per measured value.

    Returns:
        Two frames with :data:`MEASUREMENT_COLUMNS`: ``value`` in ``unit`` (rounded to
        ``decimals``), ``canonical`` in the canonical unit, ``minutes`` after the start.
    """
    rng = stream(cfg["seed"], "measurements")
    records = lab_table.to_dict("records")
    out = []
    for kind in ("vital", "lab"):
        rows = [r for r in records if r["kind"] == kind]
        out.append(
            _simulate_kind(
                cfg,
                rng,
                encounters=encounters,
                comorbidities=comorbidities,
                common=common,
                rows=rows,
                kind=kind,
            )  # fmt: skip
        )
    return out[0], out[1]
