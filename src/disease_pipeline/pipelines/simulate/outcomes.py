"""Outcomes of an encounter (admission, ICU, death, length of stay) and the severity a
rater assigns from them.

The hidden acuity drives the findings; the outcome adds what the findings cannot show
(frailty from age and comorbidities, the disease's own tier, and an outcome-only
random effect: response to treatment, time to care). The severity label is then
rated from the outcome, not thresholded from the acuity, with a rater's one-level
disagreements (``simulate.outcomes.rater_noise``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from disease_pipeline.core.levels import SEVERITY_LEVELS


def outcome_risk(
    rng: np.random.Generator,
    cfg: dict[str, Any],
    acuity: np.ndarray,
    *,
    age: np.ndarray,
    n_comorb: np.ndarray,
    tier: np.ndarray,
) -> np.ndarray:
    """Latent outcome risk (logit scale) per encounter."""
    out = cfg["outcomes"]
    return (
        out["acuity_weight"] * (acuity - 0.5)
        + out["age_weight"] * np.maximum(age - 65.0, 0.0) / 10.0
        + out["comorbidity_weight"] * n_comorb
        + out["tier_weight"] * (tier - 3.0)
        + rng.normal(0.0, out["risk_noise_sd"], len(acuity))
    )


def simulate_outcomes(
    rng: np.random.Generator, cfg: dict[str, Any], risk: np.ndarray
) -> pd.DataFrame:
    """``admitted``, ``icu``, ``died`` and ``length_of_stay_days`` (0 when not admitted)."""
    out = cfg["outcomes"]
    n = len(risk)
    admitted = rng.random(n) < expit(out["admission_intercept"] + risk)
    icu = admitted & (rng.random(n) < expit(out["icu_intercept"] + risk))
    died = rng.random(n) < expit(out["death_intercept"] + 1.2 * risk) * np.where(admitted, 1, 0.2)
    los = rng.lognormal(np.log(out["los_median_days"]) + 0.35 * risk, out["los_sigma"], n)
    los = np.where(admitted, np.maximum(np.round(los), 1), 0)
    return pd.DataFrame(
        {"admitted": admitted, "icu": icu, "died": died, "length_of_stay_days": los.astype(int)}
    )


def rate_severity(
    rng: np.random.Generator, cfg: dict[str, Any], outcomes: pd.DataFrame, emergency: np.ndarray
) -> np.ndarray:
    """Severity label from the outcome, with the rater's one-level disagreements.

    critical: died or ICU; high: admitted for ``outcomes.high_los_days`` days or more;
    moderate: admitted, or seen in the emergency department; low: the rest.
    """
    out = cfg["outcomes"]
    level = np.zeros(len(outcomes), dtype=int)
    level[emergency | outcomes["admitted"].to_numpy()] = 1
    level[outcomes["length_of_stay_days"].to_numpy() >= out["high_los_days"]] = 2
    level[(outcomes["icu"] | outcomes["died"]).to_numpy()] = 3
    flip = rng.random(len(level)) < out["rater_noise"]
    step = np.where(rng.random(len(level)) < 0.5, -1, 1)
    level = np.where(flip, np.clip(level + step, 0, 3), level)
    return np.asarray(SEVERITY_LEVELS, dtype=object)[level]


def encounter_class(
    rng: np.random.Generator, cfg: dict[str, Any], acuity: np.ndarray, admitted: np.ndarray
) -> np.ndarray:
    """IMP when admitted, else EMER with a probability rising with acuity, else AMB."""
    enc = cfg["encounters"]
    p_emergency = expit(enc["class_slope"] * (acuity - enc["emergency_midpoint"]))
    emergency = rng.random(len(acuity)) < p_emergency
    return np.where(admitted, "IMP", np.where(emergency, "EMER", "AMB"))
