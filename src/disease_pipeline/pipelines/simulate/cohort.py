"""Patients and their visits: who comes, when, with which personal identifiers.

A patient's age and sex follow the catalogue's disease mix (a patient is drawn as
"someone who would present with disease d", so the age/sex pattern of the visits
matches the diseases' patterns); the identifiers come from a seeded ``Faker``.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import numpy as np
import pandas as pd
from faker import Faker
from scipy.special import ndtr, ndtri
from tqdm.auto import tqdm

from disease_pipeline.pipelines.simulate.common import (
    DAYS_PER_YEAR,
    SECONDS_PER_DAY,
    iso_dates,
    stream,
    to_epoch_seconds,
    uuid_strings,
)

PATIENT_COLUMNS = [
    "patient_id",
    "mrn",
    "given_name",
    "family_name",
    "sex",
    "birth_day",
    "birth_date",
    "address_line",
    "city",
    "state",
    "postal_code",
    "phone",
    "email",
    "smoker",
]


def visit_counts(rng: np.random.Generator, n_encounters: int, mean: float) -> np.ndarray:
    """Encounters per patient (shifted geometric with mean ``mean``), summing to ``n_encounters``.

    Draws patients until the visits are enough, then trims the last patient's count.
    """
    counts: list[np.ndarray] = []
    total = 0
    while total < n_encounters:
        draw = rng.geometric(1.0 / mean, size=max(16, int(n_encounters / mean * 1.1)))
        counts.append(draw)
        total += int(draw.sum())
    out = np.concatenate(counts)
    cut = int(np.searchsorted(np.cumsum(out), n_encounters))
    out = out[: cut + 1].copy()
    out[-1] -= int(out.sum()) - n_encounters
    return out[out > 0]


def truncated_normal(
    rng: np.random.Generator, mean: np.ndarray, sd: np.ndarray, low: np.ndarray, high: np.ndarray
) -> np.ndarray:
    """One draw per row from N(mean, sd) truncated to [low, high] (inverse-CDF, vectorised)."""
    a, b = ndtr((low - mean) / sd), ndtr((high - mean) / sd)
    u = a + rng.random(len(mean)) * np.maximum(b - a, 1e-12)
    return np.clip(mean + sd * ndtri(np.clip(u, 1e-12, 1 - 1e-12)), low, high)


def _visit_times(rng: np.random.Generator, cfg: dict[str, Any], n: int) -> np.ndarray:
    start = to_epoch_seconds(str(cfg["start_date"]))
    end = to_epoch_seconds(str(cfg["end_date"])) + SECONDS_PER_DAY
    n_days = (end - start) // SECONDS_PER_DAY
    hours = np.asarray(cfg["encounters"]["hour_weights"], dtype=float)
    hour = rng.choice(24, size=n, p=hours / hours.sum())
    day = rng.integers(0, n_days, size=n)
    return start + day * SECONDS_PER_DAY + hour * 3600 + rng.integers(0, 3600, size=n)


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in plain.lower() if ch.isalnum())


#: Size of the Faker pools of given names, family names, streets and cities. Drawing
#: from pools keeps Faker's name frequencies (pool members repeat as often as Faker
#: repeats them) at a fraction of the cost of one Faker call per patient.
POOL_SIZE = 4000


def _pool(make, size: int) -> np.ndarray:
    return np.asarray([make() for _ in range(size)], dtype=object)


def _identifiers(cfg: dict[str, Any], sexes: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    fake = Faker(str(cfg["faker_locale"]))
    fake.seed_instance(int(cfg["seed"]))
    n = len(sexes)
    size = max(1, min(n, POOL_SIZE))
    neutral = getattr(fake, "first_name_nonbinary", fake.first_name)
    given_pools = {
        "female": _pool(fake.first_name_female, size),
        "male": _pool(fake.first_name_male, size),
        "other": _pool(neutral, max(1, size // 8)),
        "unknown": _pool(fake.first_name, max(1, size // 8)),
    }
    given = np.empty(n, dtype=object)
    for sex, pool in given_pools.items():
        rows = np.flatnonzero(sexes == sex)
        given[rows] = pool[rng.integers(0, len(pool), size=len(rows))]
    family = _pool(fake.last_name, size)[rng.integers(0, size, size=n)]
    street = _pool(fake.street_name, size)[rng.integers(0, size, size=n)]
    city = _pool(fake.city, size)[rng.integers(0, size, size=n)]
    with_unit = rng.random(n) < 0.25
    with_email = rng.random(n) < cfg["patients"]["email_share"]
    email_number = rng.integers(1, 100, size=n)
    zip_in_state = getattr(fake, "zipcode_in_state", None)
    rows = []
    for i in tqdm(range(n), desc="simulate: patients", unit="patient", mininterval=1.0):
        state = fake.state_abbr()
        postal = zip_in_state(state) if zip_in_state else fake.postcode()
        line = f"{fake.building_number()} {street[i]}"
        if with_unit[i]:
            line += f" {fake.secondary_address()}"
        email = ""
        if with_email[i]:
            user = f"{_ascii(given[i])}.{_ascii(family[i])}{email_number[i]}"
            email = f"{user}@{fake.free_email_domain()}"
        rows.append((line, state, postal, fake.phone_number(), email))
    out = pd.DataFrame(rows, columns=["address_line", "state", "postal_code", "phone", "email"])
    return out.assign(given_name=given, family_name=family, city=city)


def simulate_population(
    cfg: dict[str, Any], common: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Patients (with identifiers) and their visit times.

    Returns:
        ``patients`` (one row per patient, :data:`PATIENT_COLUMNS`, index = patient number)
        and ``visits`` (``patient``, ``start_s`` epoch seconds UTC), sorted by time.
    """
    rng = stream(cfg["seed"], "population")
    counts = visit_counts(
        rng, int(cfg["n_encounters"]), cfg["patients"]["encounters_per_patient_mean"]
    )
    n_patients = len(counts)
    patient_of_visit = np.repeat(np.arange(n_patients), counts)
    start_s = _visit_times(rng, cfg, len(patient_of_visit))

    # age and sex at the first visit follow the catalogue's prevalence-weighted mix
    prevalence = common["prevalence_per_10k"].to_numpy(float)
    reference = rng.choice(len(common), size=n_patients, p=prevalence / prevalence.sum())
    age = common["age"].to_list()
    age_years = truncated_normal(
        rng,
        np.array([age[d]["mean"] for d in reference], float),
        np.array([max(age[d]["sd"], 0.05) for d in reference], float),
        np.array([age[d]["min"] for d in reference], float),
        np.array([age[d]["max"] for d in reference], float),
    )
    male_share = common["male_share"].to_numpy(float)[reference]
    u = rng.random(n_patients)
    p_other, p_unknown = cfg["patients"]["other_sex_share"], cfg["patients"]["unknown_sex_share"]
    sex = np.where(rng.random(n_patients) < male_share, "male", "female").astype(object)
    sex[u < p_other + p_unknown] = "unknown"
    sex[u < p_other] = "other"

    first_visit = pd.Series(start_s).groupby(patient_of_visit).min().to_numpy()
    birth_day = (first_visit // SECONDS_PER_DAY - np.floor(age_years * DAYS_PER_YEAR)).astype(int)
    mrn = rng.choice(90_000_000, size=n_patients, replace=False) + 10_000_000
    adult = age_years >= cfg["patients"]["smoker_min_age"]
    smoker = adult & (rng.random(n_patients) < cfg["patients"]["smoker_share"])

    ids = _identifiers(cfg, sex, rng)
    patients = pd.DataFrame(
        {
            "patient_id": uuid_strings(rng, n_patients),
            "mrn": mrn.astype(str),
            "given_name": ids["given_name"],
            "family_name": ids["family_name"],
            "sex": sex.astype(str),
            "birth_day": birth_day,
            "birth_date": iso_dates(birth_day),
            "address_line": ids["address_line"],
            "city": ids["city"],
            "state": ids["state"],
            "postal_code": ids["postal_code"],
            "phone": ids["phone"],
            "email": ids["email"],
            "smoker": smoker,
        }
    )
    order = np.argsort(start_s, kind="stable")
    visits = pd.DataFrame({"patient": patient_of_visit[order], "start_s": start_s[order]})
    return patients[PATIENT_COLUMNS], visits.reset_index(drop=True)
