"""Bedside scores from vital signs: NEWS2 (Royal College of Physicians, 2017) and qSOFA (Sepsis-3).

Values are in the canonical units of the LOINC table (breaths/min, %, mm[Hg], beats/min,
Cel). Consciousness (ACVPU), supplemental oxygen and mentation are not recorded: they
score 0, as for an alert patient breathing room air. Several readings of one vital in an
encounter score the worst one.
"""

from __future__ import annotations

import numpy as np

#: Vital signs that enter NEWS2 (and qSOFA: resp_rate, systolic_bp).
NEWS2_VITALS = ("resp_rate", "spo2", "systolic_bp", "heart_rate", "temperature")

#: NEWS2 bands per vital: inclusive upper bounds and the points of each band
#: (one more band than bounds; the last band is open above). SpO2 uses scale 1.
NEWS2_BANDS: dict[str, tuple[tuple[float, ...], tuple[int, ...]]] = {
    "resp_rate": ((8, 11, 20, 24), (3, 1, 0, 2, 3)),
    "spo2": ((91, 93, 95), (3, 2, 1, 0)),
    "systolic_bp": ((90, 100, 110, 219), (3, 2, 1, 0, 3)),
    "heart_rate": ((40, 50, 90, 110, 130), (3, 1, 0, 1, 2, 3)),
    "temperature": ((35.0, 36.0, 38.0, 39.0), (3, 1, 0, 1, 2)),
}

QSOFA_RESP_RATE = 22.0
QSOFA_SYSTOLIC_BP = 100.0

SCORE_COLUMNS = ("news2", "news2_red_flag", "news2_observed", "qsofa")


def news2_points(vital: str, values: np.ndarray) -> np.ndarray:
    """NEWS2 points of each reading of ``vital`` (NaN where the value is NaN)."""
    if vital not in NEWS2_BANDS:
        raise ValueError(f"NEWS2 vital {vital!r} is unknown (expected one of {NEWS2_VITALS})")
    bounds, points = NEWS2_BANDS[vital]
    values = np.asarray(values, dtype=float)
    scored = np.asarray(points, dtype=float)[np.searchsorted(bounds, values, side="left")]
    return np.where(np.isnan(values), np.nan, scored)


def _group_extreme(codes: np.ndarray, values: np.ndarray, n: int, use_max: bool) -> np.ndarray:
    """Per-group max (or min) of ``values`` ignoring NaN; NaN for empty groups."""
    valid = ~np.isnan(values)
    out = np.full(n, -np.inf if use_max else np.inf)
    (np.maximum if use_max else np.minimum).at(out, codes[valid], values[valid])
    out[np.isinf(out)] = np.nan
    return out


def clinical_scores(
    codes: np.ndarray, loinc: np.ndarray, value: np.ndarray, n: int, vital_loinc: dict[str, list]
) -> dict[str, np.ndarray]:
    """NEWS2 and qSOFA per encounter from long-format vital readings.

    Args:
        codes: encounter position (0..n-1) of each reading.
        loinc: LOINC code of each reading.
        value: value of each reading in canonical units.
        n: number of encounters.
        vital_loinc: NEWS2 vital name → LOINC codes that measure it.

    Returns:
        ``news2`` (sum of observed components, NaN when none is observed),
        ``news2_red_flag`` (1 when any component scores 3), ``news2_observed``
        (components observed, 0–5) and ``qsofa`` (NaN when neither respiratory rate nor
        systolic pressure is observed).
    """
    worst: dict[str, np.ndarray] = {}
    extreme: dict[tuple[str, bool], np.ndarray] = {}
    for vital in NEWS2_VITALS:
        mask = np.isin(loinc, vital_loinc[vital])
        worst[vital] = _group_extreme(codes[mask], news2_points(vital, value[mask]), n, True)
        if vital in ("resp_rate", "systolic_bp"):
            use_max = vital == "resp_rate"
            extreme[vital, use_max] = _group_extreme(codes[mask], value[mask], n, use_max)
    stacked = np.vstack([worst[v] for v in NEWS2_VITALS])
    observed = (~np.isnan(stacked)).sum(axis=0).astype(float)
    news2 = np.where(observed > 0, np.nansum(stacked, axis=0), np.nan)
    red_flag = np.where(observed > 0, (np.nan_to_num(stacked) >= 3).any(axis=0), np.nan)
    max_rr = extreme["resp_rate", True]
    min_sbp = extreme["systolic_bp", False]
    qsofa_parts = np.vstack(
        [
            np.where(np.isnan(max_rr), np.nan, max_rr >= QSOFA_RESP_RATE),
            np.where(np.isnan(min_sbp), np.nan, min_sbp <= QSOFA_SYSTOLIC_BP),
        ]
    )
    qsofa_observed = (~np.isnan(qsofa_parts)).any(axis=0)
    qsofa = np.where(qsofa_observed, np.nansum(qsofa_parts, axis=0), np.nan)
    return {
        "news2": news2,
        "news2_red_flag": red_flag.astype(float),
        "news2_observed": observed,
        "qsofa": qsofa,
    }
