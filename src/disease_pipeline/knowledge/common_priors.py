"""Pre-test log-odds of the common diseases: prevalence, age, sex and season.

Each function returns an ``(n_patients, n_diseases)`` array of log factors (only
differences between diseases matter). A missing age, an unknown sex or an unknown
month contribute nothing. The age/sex/season shapes are the catalogue's (the same
ones the simulator draws from).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr

SEXES_KNOWN = ("female", "male")


def log_prevalence(catalogue: pd.DataFrame, weight: float) -> np.ndarray:
    """``weight`` · log prevalence, centred (``(n_diseases,)``)."""
    values = np.log(catalogue["prevalence_per_10k"].to_numpy(float))
    return weight * (values - values.mean())


def log_age_factor(
    catalogue: pd.DataFrame, age: np.ndarray, outside: float, tail: float = 0.0
) -> np.ndarray:
    """Log density of each age under each disease's age pattern: a truncated normal
    mixed with a uniform share ``tail`` over ``[min, max + 1]`` (real age mixes have
    heavier tails than a normal: a 70-year-old with appendicitis is unusual, not
    impossible).

    Ages outside a disease's ``[min, max + 1]`` get ``log(outside)`` relative to the
    density at the pattern's edge; NaN ages give 0.
    """
    spec = catalogue["age"].to_list()
    mean = np.array([s["mean"] for s in spec], float)
    sd = np.array([max(float(s["sd"]), 0.05) for s in spec], float)
    low = np.array([s["min"] for s in spec], float)
    high = np.array([s["max"] for s in spec], float) + 1.0
    mass = np.maximum(ndtr((high - mean) / sd) - ndtr((low - mean) / sd), 1e-9)
    age = np.asarray(age, dtype=float)[:, None]
    clipped = np.clip(age, low, high)
    z = (clipped - mean) / sd
    normal = np.exp(-0.5 * z**2) / (sd * mass * np.sqrt(2 * np.pi))
    log_density = np.log((1.0 - tail) * normal + tail / (high - low))
    inside = (age >= low) & (age <= high)
    log_density = np.where(inside, log_density, log_density + np.log(outside))
    log_density = np.where(np.isnan(age), 0.0, log_density)
    return log_density - np.where(np.isnan(age), 0.0, log_density.mean(axis=1, keepdims=True))


def log_sex_factor(catalogue: pd.DataFrame, sex: np.ndarray, floor: float) -> np.ndarray:
    """log(share / 0.5) of the patient's sex under each disease; 0 for other/unknown."""
    share = np.clip(catalogue["male_share"].to_numpy(float), floor, 1.0 - floor)
    sex = np.asarray([str(s).lower() for s in sex], dtype=object)[:, None]
    male = np.log(share / 0.5)[None, :]
    female = np.log((1.0 - share) / 0.5)[None, :]
    return np.where(sex == "male", male, np.where(sex == "female", female, 0.0))


def log_season_factor(catalogue: pd.DataFrame, month: np.ndarray, floor: float) -> np.ndarray:
    """log(1 + amplitude · cos(2π (month − peak) / 12)) per disease; NaN month → 0."""
    season = catalogue["seasonality"].to_list()
    peak = np.array([s["peak_month"] for s in season], float)
    amplitude = np.array([s["amplitude"] for s in season], float)
    month = np.asarray(month, dtype=float)[:, None]
    factor = 1.0 + amplitude * np.cos(2 * np.pi * (np.nan_to_num(month) - peak) / 12.0)
    return np.where(np.isnan(month), 0.0, np.log(np.maximum(factor, floor)))
