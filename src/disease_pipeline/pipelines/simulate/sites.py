"""Care sites: who goes where, what each site sees, and how it records it.

Each patient belongs to one site (``simulate.sites``), drawn once. A site sets the
case mix (more or fewer high-tier diseases, more or fewer children), the modalities a visit gets
(symptoms only, vitals but no labs, full work-up), the share of symptoms coded in
SNOMED CT and the share of labs reported in an alternative unit. Two dated changes
make time matter: a seasonal spike of some diseases at one site, and a new lab assay
at one site from a given date. The site is latent: the exports carry no site field,
as in a merged regional export, so its effects show only as drift in the data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from disease_pipeline.pipelines.simulate.common import to_epoch_seconds

MODALITIES = ("symptoms_only", "vitals_only", "full")


def site_names(cfg: dict[str, Any]) -> list[str]:
    """Site names in parameter order."""
    return list(cfg["sites"]["specs"])


def site_table(cfg: dict[str, Any]) -> pd.DataFrame:
    """One row per site with its parameters (index = site number)."""
    specs = cfg["sites"]["specs"]
    return pd.DataFrame([{"site": name, **spec} for name, spec in specs.items()])


def assign_sites(rng: np.random.Generator, cfg: dict[str, Any], age: np.ndarray) -> np.ndarray:
    """Site number of every patient (``age``: years at the first visit): drawn from the
    sites' shares, children (under 16) weighted by each site's ``child_factor``."""
    table = site_table(cfg)
    share = table["share"].to_numpy(float)
    child = table["child_factor"].to_numpy(float)
    weights = share[None, :] * np.where(age[:, None] < 16, child[None, :], 1.0)
    cumulative = np.cumsum(weights, axis=1)
    u = rng.random(len(age)) * cumulative[:, -1]
    return np.minimum((cumulative < u[:, None]).sum(axis=1), len(share) - 1)


def case_mix(cfg: dict[str, Any], site: np.ndarray, tier: np.ndarray) -> np.ndarray:
    """Multiplier of each disease's weight per visit: ``exp(tier_slope x (tier - 3))``
    (referral centres see sicker case mixes, primary care milder ones)."""
    slope = site_table(cfg)["tier_slope"].to_numpy(float)[site]
    return np.exp(slope[:, None] * (tier[None, :] - 3.0))


def season_spike(
    cfg: dict[str, Any], site: np.ndarray, start_s: np.ndarray, codes: np.ndarray
) -> np.ndarray:
    """Multiplier of each disease's weight per visit from the dated seasonal spike."""
    spike = cfg["sites"]["season_spike"]
    out = np.ones((len(site), len(codes)))
    which = site_names(cfg).index(spike["site"])
    inside = (
        (site == which)
        & (start_s >= to_epoch_seconds(str(spike["start"])))
        & (start_s < to_epoch_seconds(str(spike["end"])))
    )
    for code, factor in spike["codes"].items():
        out[np.ix_(inside, codes == code)] = float(factor)
    return out


def modalities(
    rng: np.random.Generator, cfg: dict[str, Any], site: np.ndarray, acuity: np.ndarray,
    inpatient: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """``symptoms_only`` / ``vitals_only`` / ``full`` per encounter.

    A site's base shares hold at acuity ``sites.reference_acuity``; sicker patients are
    examined more (logit falls by ``sites.modality_acuity_slope`` per unit of acuity);
    an admitted patient always gets the full work-up.
    """
    table = site_table(cfg)
    slope = cfg["sites"]["modality_acuity_slope"]
    centred = acuity - cfg["sites"]["reference_acuity"]
    out = np.full(len(site), "full", dtype=object)
    u = rng.random(len(site))
    lower = np.zeros(len(site))
    for name in ("symptoms_only", "vitals_only"):
        base = np.clip(table[name].to_numpy(float)[site], 1e-6, 1 - 1e-6)
        p = expit(logit(base) - slope * centred)
        pick = (u >= lower) & (u < lower + p) & ~inpatient & (out == "full")
        out[pick] = name
        lower = lower + p
    return out


def site_value(cfg: dict[str, Any], site: np.ndarray, key: str) -> np.ndarray:
    """A per-site parameter (``snomed_share``, ``lab_alt_unit_share``) for each row."""
    return site_table(cfg)[key].to_numpy(float)[site]


def assay_factor(
    cfg: dict[str, Any], site: np.ndarray, when_s: np.ndarray, loinc: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Calibration factor of each lab value and whether the new assay measured it (at
    ``assay_change.site``, or at every site when it is null)."""
    change = cfg["sites"]["assay_change"]
    at_site = (  # site null: every site (a central laboratory)
        np.ones(len(site), bool)
        if change["site"] is None
        else site == site_names(cfg).index(change["site"])
    )
    new = (
        at_site
        & (when_s >= to_epoch_seconds(str(change["date"])))
        & (loinc == str(change["loinc"]))
    )
    return np.where(new, float(change["factor"]), 1.0), new
