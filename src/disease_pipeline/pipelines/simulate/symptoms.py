"""Recorded symptoms of every encounter: present, explicitly absent, unrelated.

A common disease's terms are sampled from their catalogue frequencies (a little more
often at high acuity) and some are not recorded (omissions); a rare case is recorded
like a case report (:mod:`rare_cases`). Every encounter adds findings outside its
diagnosis: common background symptoms, incidental findings at base rates, a tail from
the whole annotated HPO vocabulary and its comorbidities' findings (incidental ones
began at a uniform point of the patient's life: lifetime prevalence). Explicitly absent
terms are the pertinent negatives of the differential of the present findings
(:mod:`differential`). Onsets are log-normal around a per-encounter median
(:func:`onset_parameters`), recalled with heaping (:func:`heap_onsets`) or unknown.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from disease_pipeline.knowledge.hpo import Ontology
from disease_pipeline.pipelines.simulate import differential, rare_cases, sites
from disease_pipeline.pipelines.simulate.common import DAYS_PER_YEAR, stream, world_seed

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


def _common_block(
    rng: np.random.Generator, cfg: dict[str, Any], rows: np.ndarray, acuity: np.ndarray, *,
    terms: list[str], freq: np.ndarray,
) -> pd.DataFrame:  # fmt: skip
    """Recorded present terms of the common encounters ``rows`` sharing one disease."""
    sym = cfg["symptoms"]
    gain = sym["acuity_gain"]
    p = np.clip(freq[None, :] * (1.0 - gain / 2 + gain * acuity[:, None]), 0.0, 1.0)
    recorded = (rng.random(p.shape) < p) & (rng.random(p.shape) >= sym["omission_rate"])
    empty = ~recorded.any(axis=1)
    recorded[empty, int(np.argmax(freq))] = True
    r, c = np.nonzero(recorded)
    names = np.asarray(terms, dtype=object)
    return pd.DataFrame({"encounter": rows[r], "hpo_id": names[c], "origin": "disease"})


def catalogue_parents(common: pd.DataFrame, ontology: Ontology) -> dict[str, tuple[str, ...]]:
    """Catalogue term → its is_a parents that are catalogue terms too (``Productive cough``
    → ``Cough``): the less specific words a routine record uses for the same finding."""
    vocabulary = {s["hpo"] for items in common["symptoms"] for s in items}
    out = {}
    for term in sorted(vocabulary):
        parents = tuple(p for p in ontology.parents.get(term, ()) if p in vocabulary)
        if parents:
            out[term] = parents
    return out


def less_specific(
    rng: np.random.Generator, terms: np.ndarray, parents: dict[str, tuple[str, ...]], share: float
) -> np.ndarray:
    """``terms`` with ``share`` of those that have a catalogue parent recorded as that
    parent (one at random when several)."""
    out = terms.astype(object).copy()
    movable = np.flatnonzero(np.isin(out, list(parents)) & (rng.random(len(out)) < share))
    for i in movable.tolist():
        options = parents[out[i]]
        out[i] = options[int(rng.integers(len(options)))]
    return out


def true_frequencies(cfg: dict[str, Any], common: pd.DataFrame) -> list[np.ndarray]:
    """Per catalogue row, the frequencies its findings occur with in the simulated
    population: the catalogue's figure with a fixed per-(disease, term) deviation on the
    logit scale (``common.frequency_logit_sd``). The catalogue is an estimate from the
    literature, not the population's truth, so a scorer reading it is not reading the
    generator's own parameters."""
    rng = stream(world_seed(cfg), "true_frequencies")
    sd = float(cfg["common"]["frequency_logit_sd"])
    out = []
    for items in common["symptoms"]:
        freq = np.clip(np.array([s["frequency"] for s in items], float), 1e-3, 1 - 1e-3)
        out.append(expit(logit(freq) + sd * rng.normal(size=len(freq))))
    return out


def _weighted_terms(
    rng: np.random.Generator,
    pool: dict[str, float],
    mean: np.ndarray | float,
    n: int,
    origin: str,
) -> pd.DataFrame:
    """Poisson(``mean``) terms per encounter drawn from ``pool`` (term → weight)."""
    codes = np.asarray(list(pool), dtype=object)
    weights = np.asarray(list(pool.values()), dtype=float)
    k = rng.poisson(mean, size=n)
    encounter = np.repeat(np.arange(n), k)
    term = rng.choice(len(codes), size=len(encounter), p=weights / weights.sum())
    return pd.DataFrame({"encounter": encounter, "hpo_id": codes[term], "origin": origin})


def vocabulary_weights(annotations: pd.DataFrame, power: float) -> dict[str, float]:
    """Every annotated present term, weighted by (number of diseases annotated) ** power:
    the broad background of findings a hospital population records."""
    present = annotations[~annotations["excluded"]]
    counts = present.groupby("hpo_id")["disease_id"].nunique()
    return (counts.astype(float) ** power).to_dict()


def _background(
    rng: np.random.Generator, cfg: dict[str, Any], n: int, annotations: pd.DataFrame
) -> pd.DataFrame:
    """Findings unrelated to the diagnosis: common symptoms, incidental findings at their
    base rates and a tail from the whole annotated HPO vocabulary."""
    sym = cfg["symptoms"]
    frames = [
        _weighted_terms(rng, sym["background_terms"], sym["background_mean"], n, "background")
    ]
    for term, rate in sym["incidental_terms"].items():
        hit = np.flatnonzero(rng.random(n) < rate * sym["incidental_recorded"])
        frames.append(pd.DataFrame({"encounter": hit, "hpo_id": term, "origin": "incidental"}))
    pool = vocabulary_weights(annotations, sym["vocabulary_power"])
    shape = sym["vocabulary_shape"]
    propensity = rng.gamma(shape, sym["vocabulary_mean"] / shape, size=n)
    frames.append(_weighted_terms(rng, pool, propensity, n, "incidental"))
    return pd.concat(frames, ignore_index=True)


def _comorbidity_findings(
    rng: np.random.Generator, cfg: dict[str, Any], comorbidities: pd.DataFrame
) -> pd.DataFrame:
    """Findings a comorbidity adds (``comorbidities.codes[*].findings``: term → share)."""
    frames = []
    for code, group in comorbidities.groupby("code", sort=True):
        rows = group["encounter"].to_numpy(int)
        for term, share in cfg["comorbidities"]["codes"][code].get("findings", {}).items():
            hit = rows[rng.random(len(rows)) < share]
            frames.append(pd.DataFrame({"encounter": hit, "hpo_id": term, "origin": "comorbidity"}))
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["encounter", "hpo_id", "origin"])
    )


def heap_onsets(rng: np.random.Generator, cfg: dict[str, Any], days: np.ndarray) -> np.ndarray:
    """Recalled onsets: ``symptoms.onset_heaping.share`` of them rounded to the nearest
    preferred value (1, 3, 7, 14, 30 days ...) on a log scale."""
    heap = cfg["symptoms"]["onset_heaping"]
    preferred = np.asarray(sorted(heap["days"]), dtype=float)
    logs = np.log(np.maximum(days, 0) + 0.5)
    nearest = np.abs(logs[:, None] - np.log(preferred + 0.5)[None, :]).argmin(axis=1)
    snap = rng.random(len(days)) < heap["share"]
    return np.where(snap, preferred[nearest], days).astype(int)


def _coding(
    rng: np.random.Generator, hpo: np.ndarray, snomed: dict[str, str], share: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """System (``HPO``/``SNOMEDCT``) and code per row; on average ``share`` (per row: its
    site's habit) of all rows in SNOMED CT, taken from the terms that have a xref."""
    alt = np.asarray([snomed.get(h, "") for h in hpo], dtype=object)
    eligible = alt != ""
    p = np.minimum(1.0, share * len(hpo) / max(int(eligible.sum()), 1))
    use = eligible & (rng.random(len(hpo)) < p)
    return np.where(use, "SNOMEDCT", "HPO"), np.where(use, alt, hpo)


def catalogue_onsets(cfg: dict[str, Any], common: pd.DataFrame) -> np.ndarray:
    """Median and sigma (log-normal, days) of each catalogue disease's onset: its
    ``onset_days``, else the acute default ``common.onset_days_*`` (shape ``(n, 2)``)."""
    acute = (cfg["common"]["onset_days_median"], cfg["common"]["onset_days_sigma"])
    return np.array(
        [(b["median"], b["sigma"]) if isinstance(b, dict) else acute for b in common["onset_days"]],
        dtype=float,
    ).reshape(-1, 2)


def onset_parameters(
    cfg: dict[str, Any], encounters: pd.DataFrame, common: pd.DataFrame, rare: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Median and sigma (log-normal, days) of the disease onset of every encounter.

    A common encounter takes its disease's ``onset_days`` from the catalogue, else the
    acute default ``common.onset_days_*``. A rare encounter's onset is the time since the
    age of onset of its disease's HPO onset annotation (``rare.onset_days_median`` when
    the disease has none), with ``rare.onset_days_sigma`` between its symptoms.
    """
    by_disease = catalogue_onsets(cfg, common)
    is_rare = (encounters["category"] == "RARE").to_numpy()
    disease = encounters["disease"].to_numpy()
    params = np.empty((len(encounters), 2), dtype=float)
    params[~is_rare] = by_disease[disease[~is_rare]]
    rows = np.flatnonzero(is_rare)
    age = encounters["age_years"].to_numpy()[rows]
    ids = rare["disease_id"].to_numpy()[disease[rows]] if len(rows) else np.array([])
    onset_age = rare_cases.onset_age_years(stream(cfg["seed"], "onset"), ids, age)
    since = np.maximum((age - onset_age) * DAYS_PER_YEAR, 1.0)
    params[rows, 0] = np.where(np.isnan(onset_age), cfg["rare"]["onset_days_median"], since)
    params[rows, 1] = cfg["rare"]["onset_days_sigma"]
    return params[:, 0], params[:, 1]


def presenting_findings(
    cfg: dict[str, Any], encounters: pd.DataFrame, table: pd.DataFrame
) -> np.ndarray:
    """Per finding row: is it the new or worsening finding that brought a rare-disease
    patient in?

    A rare visit without an intercurrent illness (``complaint`` < 0) is prompted, with
    probability ``rare.presenting_share``, by one of its disease's findings that is new
    or got worse (a first seizure, a fracture, a decompensation); the rest are referrals
    and follow-ups on long-standing findings. One present disease finding of each such
    visit, at random, is that finding: its onset is recent
    (``rare.presenting_onset_days``), not the disease's. Drawn from a stream of its own,
    so every other draw of the simulation is unchanged.
    """
    rng = stream(cfg["seed"], "presenting")
    is_rare = (encounters["category"] == "RARE").to_numpy()
    no_illness = encounters["complaint"].to_numpy() < 0
    prompted = (
        is_rare & no_illness & (rng.random(len(encounters)) < cfg["rare"]["presenting_share"])
    )
    row_encounter = table["encounter"].to_numpy(int)
    eligible = (
        prompted[row_encounter]
        & table["present"].to_numpy(bool)
        & (table["origin"].to_numpy() == "disease")
    )
    rows = np.flatnonzero(eligible)
    out = np.zeros(len(table), dtype=bool)
    if len(rows):
        keys = pd.Series(rng.random(len(rows)), index=rows)
        out[keys.groupby(row_encounter[rows]).idxmin().to_numpy(int)] = True
    return out


def everyday_vocabulary(cfg: dict[str, Any], common: pd.DataFrame) -> frozenset[str]:
    """The terms of everyday practice: the catalogue's findings, the background and
    incidental findings and those comorbidities add. Before the diagnosis a rare
    disease's findings are recorded in these words (:func:`rare_cases.in_vocabulary`)."""
    terms, _ = differential.frequency_matrix(common)
    sym = cfg["symptoms"]
    comorbid = [t for c in cfg["comorbidities"]["codes"].values() for t in c.get("findings", {})]
    return frozenset([*terms, *sym["background_terms"], *sym["incidental_terms"], *comorbid])


def prediagnostic_terms(cfg: dict[str, Any], encounters: pd.DataFrame) -> np.ndarray:
    """Per visit: at most how many of its rare disease's findings are recorded. A visit
    before the diagnosis (``encounters.prediagnostic``) records 1 to
    ``rare.prediagnostic_max_terms`` of them, uniformly; other visits are not capped.
    Drawn from a stream of its own."""
    rng = stream(cfg["seed"], "prediagnostic_terms")
    high = int(cfg["rare"]["prediagnostic_max_terms"])
    drawn = rng.integers(1, high + 1, size=len(encounters)) if high >= 1 else 0
    unbounded = np.iinfo(np.int64).max
    return np.where(encounters["prediagnostic"].to_numpy(bool), drawn, unbounded)


def _rare_blocks(
    rng: np.random.Generator, cfg: dict[str, Any], encounters: pd.DataFrame,
    tables: dict[str, pd.DataFrame], ontology: Ontology,
) -> list[pd.DataFrame]:  # fmt: skip
    """The presenting complaint's symptoms and case-report-style terms of rare rows, as
    many findings in all as a published case (their unrelated findings are the
    background every encounter carries)."""
    is_rare = (encounters["category"] == "RARE").to_numpy()
    rows_all = np.flatnonzero(is_rare)
    if not len(rows_all):
        return []
    truth = true_frequencies(cfg, tables["common"])
    complaint = encounters["complaint"].to_numpy()
    acute = rows_all[complaint[rows_all] >= 0]
    illness = complaint[acute]
    acuity = encounters["acuity"].to_numpy()
    blocks = []
    for d in np.unique(illness).tolist():
        rows = acute[illness == d]
        items = tables["common"]["symptoms"].iloc[d]
        terms = [s["hpo"] for s in items]
        freq = truth[d]
        block = _common_block(rng, cfg, rows, acuity[rows], terms=terms, freq=freq)
        blocks.append(block.assign(origin="complaint"))
    taken = np.zeros(len(encounters), dtype=int)
    if blocks:
        np.add.at(taken, pd.concat(blocks)["encounter"].to_numpy(int), 1)
    cap = prediagnostic_terms(cfg, encounters)
    prediagnostic = encounters["prediagnostic"].to_numpy(bool)
    vocabulary = everyday_vocabulary(cfg, tables["common"])
    rare, rare_terms = tables["rare"], tables["rare_terms"]
    by_disease = {d: g for d, g in rare_terms.groupby("disease_id", sort=True)}
    disease = encounters["disease"].to_numpy()
    for d in np.unique(disease[rows_all]).tolist():
        table = by_disease.get(rare["disease_id"].iloc[d])
        if table is not None:
            rows = rows_all[disease[rows_all] == d]
            terms = rare_cases.case_terms(
                rng, cfg, rows, table, ontology, taken=taken[rows], cap=cap[rows]
            )
            early = prediagnostic[terms["encounter"].to_numpy(int)]
            terms.loc[early, "hpo_id"] = [
                rare_cases.in_vocabulary(t, ontology, vocabulary)
                for t in terms.loc[early, "hpo_id"]
            ]
            terms = terms.drop_duplicates(["encounter", "hpo_id"])
            blocks.append(terms.drop(columns="exact").assign(origin="disease"))
    return blocks


def _negatives(
    rng: np.random.Generator, cfg: dict[str, Any], encounters: pd.DataFrame,
    present: pd.DataFrame, common: pd.DataFrame,
) -> pd.DataFrame:  # fmt: skip
    """Pertinent negatives from the differential of the recorded present findings."""
    terms, matrix = differential.frequency_matrix(common)
    n = len(encounters)
    cover = differential.coverage(present, n, terms, matrix)
    is_rare = (encounters["category"] == "RARE").to_numpy()
    true_freq = matrix.T[np.where(is_rare, 0, encounters["disease"].to_numpy())]
    true_freq[is_rare] = 0.0
    count = rng.poisson(cfg["symptoms"]["excluded_mean"], size=n)
    enc, term = differential.pertinent_negatives(
        rng, cover, matrix, true_freq, count, width=int(cfg["symptoms"]["differential_width"])
    )
    names = np.asarray(terms, dtype=object)
    return pd.DataFrame({"encounter": enc, "hpo_id": names[term], "origin": "excluded"})


#: Order in which duplicate (encounter, term) rows are resolved: the first one wins.
ORIGIN_RANK = {"disease": 0, "complaint": 1, "comorbidity": 2, "incidental": 3,
               "background": 4, "excluded": 5}  # fmt: skip


def simulate_symptoms(
    cfg: dict[str, Any],
    encounters: pd.DataFrame,
    comorbidities: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    *,
    ontology: Ontology,
) -> pd.DataFrame:
    """One row per recorded symptom finding (:data:`SYMPTOM_COLUMNS`), ordered by encounter.

    ``tables`` holds the catalogue ``common``, the simulated ``rare`` diseases, their
    ``rare_terms`` and the HPO ``annotations``.
    """
    rng = stream(cfg["seed"], "symptoms")
    sym = cfg["symptoms"]
    common = tables["common"]
    acuity = encounters["acuity"].to_numpy()
    disease = encounters["disease"].to_numpy()
    is_rare = (encounters["category"] == "RARE").to_numpy()
    blocks: list[pd.DataFrame] = []
    truth = true_frequencies(cfg, common)
    for d, row in enumerate(common.itertuples(index=False)):
        rows = np.flatnonzero(~is_rare & (disease == d))
        if len(rows):
            terms = [s["hpo"] for s in row.symptoms]
            freq = truth[d]
            blocks.append(_common_block(rng, cfg, rows, acuity[rows], terms=terms, freq=freq))
    blocks += _rare_blocks(rng, cfg, encounters, tables, ontology)
    common_findings = pd.concat(blocks, ignore_index=True) if blocks else None
    if common_findings is not None and len(common_findings):
        routine = ~(is_rare[common_findings["encounter"].to_numpy(int)]
                    & (common_findings["origin"] == "disease").to_numpy())  # fmt: skip
        terms = common_findings["hpo_id"].to_numpy(object)
        terms[routine] = less_specific(
            rng, terms[routine], catalogue_parents(common, ontology), sym["less_specific_share"]
        )
        blocks = [common_findings.assign(hpo_id=terms)]
    blocks.append(_comorbidity_findings(rng, cfg, comorbidities))
    blocks.append(_background(rng, cfg, len(encounters), tables["annotations"]))
    present = pd.concat(blocks, ignore_index=True).assign(present=True)
    absent = _negatives(rng, cfg, encounters, present, common).assign(present=False)
    table = pd.concat([present, absent], ignore_index=True)
    table["rank"] = table["origin"].map(ORIGIN_RANK)
    table = table.sort_values(["encounter", "rank"], kind="stable")
    table = table.drop_duplicates(["encounter", "hpo_id"], keep="first").drop(columns="rank")
    table = table.reset_index(drop=True)

    n = len(table)
    present = table["present"].to_numpy()
    row_encounter = table["encounter"].to_numpy()
    acu = acuity[row_encounter]
    level = np.clip(np.rint(1 + 2 * acu + rng.normal(0, 0.6, n)), 1, 3).astype(int)
    table["severity"] = np.where(present & (rng.random(n) < sym["severity_share"]), level, 0)
    enc_median, enc_sigma = onset_parameters(cfg, encounters, common, tables["rare"])
    median, sigma = enc_median[row_encounter], enc_sigma[row_encounter]
    origin = table["origin"].to_numpy()
    chronic = origin == "comorbidity"
    median = np.where(chronic, sym["comorbidity_onset_days"]["median"], median)
    sigma = np.where(chronic, sym["comorbidity_onset_days"]["sigma"], sigma)
    # the intercurrent illness's findings began when that illness did
    acute = origin == "complaint"
    illness = catalogue_onsets(cfg, common)[
        np.maximum(encounters["complaint"].to_numpy()[row_encounter], 0)
    ]
    median = np.where(acute, illness[:, 0], median)
    sigma = np.where(acute, illness[:, 1], sigma)
    worse = presenting_findings(cfg, encounters, table)
    median = np.where(worse, cfg["rare"]["presenting_onset_days"]["median"], median)
    sigma = np.where(worse, cfg["rare"]["presenting_onset_days"]["sigma"], sigma)
    onset = np.floor(median * np.exp(sigma * rng.normal(size=n)))
    # an incidental finding of lifetime prevalence began at a uniform point of the life so far
    age_days = encounters["age_years"].to_numpy()[row_encounter] * DAYS_PER_YEAR
    lifelong = np.floor(rng.random(n) * np.maximum(age_days, 1.0))
    onset = np.where(origin == "incidental", lifelong, onset)
    onset = heap_onsets(rng, cfg, np.minimum(onset, 36_500))
    table["onset_days"] = np.where(present & (rng.random(n) < sym["onset_share"]), onset, -1)
    snomed = snomed_for_hpo(ontology)
    hpo = table["hpo_id"].to_numpy()
    share = sites.site_value(cfg, encounters["site"].to_numpy()[row_encounter], "snomed_share")
    table["system"], table["code"] = _coding(rng, hpo, snomed, share)
    table["reported"] = present & (rng.random(n) < sym["reported_share"])
    table["form_system"], table["form_code"] = _coding(rng, hpo, snomed, share)
    return table[SYMPTOM_COLUMNS]
