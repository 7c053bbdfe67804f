"""Recorded symptoms of every encounter: present, explicitly absent, spurious.

Each disease's terms are sampled from their frequencies (a little more often at high
acuity), some present ones are not recorded (omissions), spurious common symptoms are
added (background noise) and a few terms are recorded as explicitly absent. Onsets
are log-normal around a per-encounter median (:func:`onset_parameters`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.knowledge.hpo import Ontology
from disease_pipeline.pipelines.simulate.common import stream

SYMPTOM_COLUMNS = [
    "encounter",
    "hpo_id",
    "present",
    "origin",
    "severity",
    "onset_days",
    "system",
    "code",
    "reported",
    "form_system",
    "form_code",
]


def snomed_for_hpo(ontology: Ontology) -> dict[str, str]:
    """HPO id → a SNOMED CT code that maps back to it (first xref in ``hp.obo`` order)."""
    out: dict[str, str] = {}
    for code, hpo in ontology.snomed_to_hpo.items():
        out.setdefault(hpo, code)
    return out


def _disease_block(
    rng: np.random.Generator,
    cfg: dict[str, Any],
    rows: np.ndarray,
    acuity: np.ndarray,
    *,
    terms: list[str],
    freq: np.ndarray,
    excluded_boost: np.ndarray,
    cap: np.ndarray | None,
) -> list[pd.DataFrame]:
    """Present and explicitly-absent terms of the encounters ``rows`` sharing one disease;
    ``cap``: per encounter, the most present terms recorded (None: no limit)."""
    sym = cfg["symptoms"]
    m, t = len(rows), len(terms)
    gain = sym["acuity_gain"]
    p = np.clip(freq[None, :] * (1.0 - gain / 2 + gain * acuity[:, None]), 0.0, 1.0)
    has = rng.random((m, t)) < p
    recorded = has & (rng.random((m, t)) >= sym["omission_rate"])
    if cap is not None:
        key = np.where(recorded, rng.random((m, t)), np.inf)
        rank = np.argsort(np.argsort(key, axis=1, kind="stable"), axis=1, kind="stable")
        recorded &= rank < cap[:, None]
    empty = ~recorded.any(axis=1)
    if empty.any():
        recorded[empty, int(np.argmax(freq))] = True
    # explicitly absent: terms the clinician asked about and the patient does not have
    k = rng.poisson(sym["excluded_mean"], size=m)
    key = np.where(has, np.inf, rng.random((m, t)) * excluded_boost[None, :])
    rank = np.argsort(np.argsort(key, axis=1, kind="stable"), axis=1, kind="stable")
    absent = (~has) & (rank < k[:, None])
    names = np.asarray(terms, dtype=object)
    out = []
    for mask, present, origin in ((recorded, True, "disease"), (absent, False, "excluded")):
        r, c = np.nonzero(mask)
        out.append(
            pd.DataFrame(
                {"encounter": rows[r], "hpo_id": names[c], "present": present, "origin": origin}
            )
        )
    return out


def _background(rng: np.random.Generator, cfg: dict[str, Any], n: int) -> pd.DataFrame:
    pool = cfg["symptoms"]["background_terms"]
    codes = np.asarray(list(pool), dtype=object)
    weights = np.asarray(list(pool.values()), dtype=float)
    k = rng.poisson(cfg["symptoms"]["background_mean"], size=n)
    encounter = np.repeat(np.arange(n), k)
    term = rng.choice(len(codes), size=len(encounter), p=weights / weights.sum())
    return pd.DataFrame(
        {"encounter": encounter, "hpo_id": codes[term], "present": True, "origin": "background"}
    )


def _coding(
    rng: np.random.Generator, hpo: np.ndarray, snomed: dict[str, str], share: float
) -> tuple[np.ndarray, np.ndarray]:
    """System (``HPO``/``SNOMEDCT``) and code per row; ``share`` of all rows in SNOMED CT."""
    alt = np.asarray([snomed.get(h, "") for h in hpo], dtype=object)
    eligible = alt != ""
    p = min(1.0, share * len(hpo) / max(int(eligible.sum()), 1))
    use = eligible & (rng.random(len(hpo)) < p)
    return np.where(use, "SNOMEDCT", "HPO"), np.where(use, alt, hpo)


def onset_parameters(
    cfg: dict[str, Any], encounters: pd.DataFrame, common: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Median and sigma (log-normal, days) of the symptom onset of every encounter.

    A common encounter takes its disease's ``onset_days`` from the catalogue, else the
    acute default ``common.onset_days_*``. A rare encounter is acute (a crisis or a
    decompensation brings the patient in: the common acute default) with probability
    ``rare.acute_share``, else chronic (``rare.onset_days_*``); one draw per encounter,
    from its own stream, so all symptoms of an encounter share it.
    """
    acute = (cfg["common"]["onset_days_median"], cfg["common"]["onset_days_sigma"])
    chronic = (cfg["rare"]["onset_days_median"], cfg["rare"]["onset_days_sigma"])
    by_disease = np.array(
        [(b["median"], b["sigma"]) if isinstance(b, dict) else acute for b in common["onset_days"]],
        dtype=float,
    ).reshape(-1, 2)
    is_rare = (encounters["category"] == "RARE").to_numpy()
    disease = encounters["disease"].to_numpy()
    rare_acute = stream(cfg["seed"], "onset").random(len(encounters)) < cfg["rare"]["acute_share"]
    params = np.empty((len(encounters), 2), dtype=float)
    params[~is_rare] = by_disease[disease[~is_rare]]
    params[is_rare] = np.where(rare_acute[is_rare, None], acute, chronic)
    return params[:, 0], params[:, 1]


def simulate_symptoms(
    cfg: dict[str, Any],
    encounters: pd.DataFrame,
    common: pd.DataFrame,
    rare: pd.DataFrame,
    rare_terms: pd.DataFrame,
    *,
    ontology: Ontology,
) -> pd.DataFrame:
    """One row per recorded symptom finding (:data:`SYMPTOM_COLUMNS`), ordered by encounter."""
    rng = stream(cfg["seed"], "symptoms")
    sym = cfg["symptoms"]
    acuity = encounters["acuity"].to_numpy()
    disease = encounters["disease"].to_numpy()
    is_rare = (encounters["category"] == "RARE").to_numpy()
    blocks: list[pd.DataFrame] = []
    for d, row in enumerate(common.itertuples(index=False)):
        rows = np.flatnonzero(~is_rare & (disease == d))
        if len(rows):
            terms = [s["hpo"] for s in row.symptoms]
            freq = np.array([s["frequency"] for s in row.symptoms], float)
            blocks += _disease_block(
                rng, cfg, rows, acuity[rows], terms=terms, freq=freq,
                excluded_boost=np.ones(len(terms)), cap=None,
            )  # fmt: skip
    rare_ids = encounters.loc[is_rare, ["disease"]].assign(row=np.flatnonzero(is_rare))
    # present terms a clinician records at a rare-disease encounter: Poisson around
    # rare.present_symptoms_mean, at least 1, at most rare.max_present_symptoms
    caps = np.clip(
        stream(cfg["seed"], "recorded_terms").poisson(
            cfg["rare"]["present_symptoms_mean"], size=len(encounters)
        ),
        1,
        int(cfg["rare"]["max_present_symptoms"]),
    )
    by_disease = {d: g for d, g in rare_terms.groupby("disease_id", sort=True)}
    for d, group in rare_ids.groupby("disease", sort=True):
        table = by_disease.get(rare["disease_id"].iloc[d])
        if table is None:
            continue
        table = table.drop_duplicates("hpo_id", keep="first")
        present = ~table["excluded"].to_numpy()
        freq = np.where(present, table["frequency"].to_numpy(float), 0.0)
        boost = np.where(present, 1.0, 0.3)  # annotated NOT terms are asked about first
        rows = group["row"].to_numpy()
        blocks += _disease_block(
            rng, cfg, rows, acuity[rows], terms=table["hpo_id"].tolist(), freq=freq,
            excluded_boost=boost, cap=caps[rows],
        )  # fmt: skip
    blocks.append(_background(rng, cfg, len(encounters)))
    table = pd.concat(blocks, ignore_index=True)
    order = {"disease": 0, "excluded": 1, "background": 2}
    table["rank"] = table["origin"].map(order)
    table = table.sort_values(["encounter", "rank"], kind="stable")
    table = table.drop_duplicates(["encounter", "hpo_id"], keep="first").drop(columns="rank")
    table = table.reset_index(drop=True)

    n = len(table)
    present = table["present"].to_numpy()
    acu = acuity[table["encounter"].to_numpy()]
    level = np.clip(np.rint(1 + 2 * acu + rng.normal(0, 0.6, n)), 1, 3).astype(int)
    table["severity"] = np.where(present & (rng.random(n) < sym["severity_share"]), level, 0)
    enc_median, enc_sigma = onset_parameters(cfg, encounters, common)
    row_encounter = table["encounter"].to_numpy()
    median, sigma = enc_median[row_encounter], enc_sigma[row_encounter]
    onset = np.floor(median * np.exp(sigma * rng.normal(size=n))).astype(int)
    table["onset_days"] = np.where(present & (rng.random(n) < sym["onset_share"]), onset, -1)
    snomed = snomed_for_hpo(ontology)
    hpo = table["hpo_id"].to_numpy()
    table["system"], table["code"] = _coding(rng, hpo, snomed, sym["snomed_share"])
    table["reported"] = present & (rng.random(n) < sym["reported_share"])
    table["form_system"], table["form_code"] = _coding(rng, hpo, snomed, sym["snomed_share"])
    return table[SYMPTOM_COLUMNS]
