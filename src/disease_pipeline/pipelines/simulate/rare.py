"""Rare diseases for the simulation: real OMIM/Orphanet entries of the HPO annotations."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.pipelines.simulate.common import stream, world_seed

RARE_COLUMNS = ["disease_id", "disease_name", "database", "n_terms", "n_cases", "base_acuity"]


def eligible_rare_diseases(
    annotations: pd.DataFrame, databases: list[str], min_terms: int
) -> pd.DataFrame:
    """Diseases of ``databases`` with at least ``min_terms`` annotated present terms, by id.

    A disease listed under several names keeps its first name in file order.
    """
    table = annotations[annotations["database"].isin(databases)]
    grouped = table.groupby("disease_id", sort=True)
    out = pd.DataFrame(
        {
            "disease_name": grouped["disease_name"].first(),
            "database": grouped["database"].first(),
            "n_terms": grouped["excluded"].agg(lambda s: int((~s).sum())),
        }
    ).reset_index()
    return out[out["n_terms"] >= min_terms].reset_index(drop=True)


def allocate_cases(
    rng: np.random.Generator, n_diseases: int, total: int, *, low: int, high: int, sigma: float
) -> np.ndarray:
    """Cases per disease: each in [low, high], summing to ``total``, heavy-tailed across diseases.

    Raises:
        ValueError: ``total`` cannot be split that way.
    """
    if not n_diseases * low <= total <= n_diseases * high:
        raise ValueError(
            f"cannot split {total} rare cases over {n_diseases} diseases with {low}-{high} each"
        )
    counts = np.full(n_diseases, low, dtype=int)
    weights = rng.lognormal(0.0, sigma, size=n_diseases)
    remaining = total - int(counts.sum())
    while remaining > 0:
        open_weight = np.where(counts < high, weights, 0.0)
        share = open_weight / open_weight.sum()
        add = np.minimum(np.floor(share * remaining).astype(int), high - counts)
        if add.sum() == 0:
            top = np.argsort(-open_weight, kind="stable")[:remaining]
            add[top[open_weight[top] > 0]] = 1
        counts += add
        remaining -= int(add.sum())
    return counts


def select_rare(
    cfg: dict[str, Any], annotations: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw the simulated rare diseases and their annotated terms.

    Returns:
        ``diseases`` (:data:`RARE_COLUMNS`) and ``terms`` (``disease_id, hpo_id, frequency,
        excluded`` with unknown frequencies set to ``symptoms.default_frequency``).

    Raises:
        ValueError: fewer eligible diseases than ``simulate.rare.n_diseases``.
    """
    rare = cfg["rare"]
    rng = stream(world_seed(cfg), "rare")
    n_wanted = int(rare["n_diseases"])
    if n_wanted == 0:
        return pd.DataFrame(columns=RARE_COLUMNS), pd.DataFrame(
            columns=["disease_id", "hpo_id", "frequency", "excluded"]
        )
    eligible = eligible_rare_diseases(
        annotations, list(rare["databases"]), int(rare["min_present_terms"])
    )
    forced = [d for d in rare["include"] if d in set(eligible["disease_id"])]
    if len(forced) < len(rare["include"]):
        missing = sorted(set(rare["include"]) - set(forced))
        raise ValueError(
            f"parameter simulate.rare.include: {', '.join(missing)} have fewer than "
            f"{rare['min_present_terms']} annotated present terms"
        )
    if len(forced) > n_wanted:
        raise ValueError("parameter simulate.rare.include lists more diseases than rare.n_diseases")
    pool = eligible[~eligible["disease_id"].isin(forced)]
    if len(pool) + len(forced) < n_wanted:
        raise ValueError(
            f"parameter simulate.rare.n_diseases: only {len(pool) + len(forced)} eligible diseases"
        )
    drawn = rng.choice(len(pool), size=n_wanted - len(forced), replace=False)
    chosen_ids = forced + pool["disease_id"].iloc[np.sort(drawn)].tolist()
    diseases = eligible.set_index("disease_id").loc[chosen_ids].reset_index()
    total = round(rare["share"] * cfg["n_encounters"])
    diseases["n_cases"] = allocate_cases(
        rng,
        n_wanted,
        total,
        low=int(rare["cases_min"]),
        high=int(rare["cases_max"]),
        sigma=rare["case_weight_sigma"],
    )
    alpha, beta = rare["base_acuity_beta"]
    diseases["base_acuity"] = rng.beta(alpha, beta, size=n_wanted)
    terms = annotations[annotations["disease_id"].isin(chosen_ids)]
    terms = terms[["disease_id", "hpo_id", "frequency", "excluded"]].copy()
    terms["frequency"] = terms["frequency"].fillna(cfg["symptoms"]["default_frequency"])
    return diseases[RARE_COLUMNS], terms.reset_index(drop=True)
