"""The knowledge-shift check: symptom-only patients from a deliberately perturbed catalogue.

A model trained on the simulator (which draws from the catalogue) must keep its lead over
the knowledge scorer when the world differs from the catalogue. :func:`perturbed_catalogue`
jitters every symptom frequency (on the log-odds scale) and replaces a share of the terms
by an ontology neighbour (parent, child or sibling); :func:`sample_symptom_patients`
draws patients from any catalogue: present terms by frequency, extra unrelated terms,
a few findings reported absent, age and sex from the disease's pattern.
"""

from __future__ import annotations

import copy
from functools import cache

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from disease_pipeline.knowledge.hpo import PHENOTYPIC_ABNORMALITY, load_ontology


@cache
def _children() -> dict[str, tuple[str, ...]]:
    onto = load_ontology()
    out: dict[str, list[str]] = {}
    for term, parents in onto.parents.items():
        for parent in parents:
            out.setdefault(parent, []).append(term)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def ontology_neighbours(term: str) -> list[str]:
    """Parents, children and siblings of ``term`` that are specific phenotype terms."""
    onto = load_ontology()
    children = _children()
    parents = [p for p in onto.parents.get(term, ()) if p != PHENOTYPIC_ABNORMALITY]
    siblings = [s for p in parents for s in children.get(p, ()) if s != term]
    found = [*parents, *children.get(term, ()), *siblings]
    keep = [t for t in dict.fromkeys(found) if onto.is_phenotype(t)]
    return [t for t in keep if PHENOTYPIC_ABNORMALITY not in onto.parents.get(t, ())]


def catalogue_findings(catalogue: pd.DataFrame) -> list[str]:
    """Every HPO id any disease of ``catalogue`` lists (sorted)."""
    return sorted({str(s["hpo"]) for symptoms in catalogue["symptoms"] for s in symptoms or []})


def perturbed_catalogue(
    catalogue: pd.DataFrame,
    *,
    seed: int,
    frequency_jitter: float = 0.75,
    replace_share: float = 0.2,
    age_shift: float = 0.0,
) -> pd.DataFrame:
    """A copy of ``catalogue`` whose symptom frequencies are jittered (normal noise of sd
    ``frequency_jitter`` on the log-odds) and ``replace_share`` of whose symptom terms are
    replaced by a random ontology neighbour (a term without neighbours is kept).

    ``age_shift > 0`` also moves each disease's age pattern: the mean by normal noise of
    sd ``age_shift`` times the pattern's sd, the sd widened by ``1 + age_shift`` and the
    range by that many sds on each side (within 0-105 years)."""
    rng = np.random.default_rng(seed)
    onto = load_ontology()
    table = catalogue.copy()
    if age_shift > 0:
        age_rng = np.random.default_rng([seed, 1])
        shifted = []
        for spec in table["age"]:
            sd = max(float(spec["sd"]), 0.05)
            shifted.append(
                {
                    "mean": float(spec["mean"]) + float(age_rng.normal(0.0, age_shift * sd)),
                    "sd": sd * (1.0 + age_shift),
                    "min": max(0.0, float(spec["min"]) - age_shift * sd),
                    "max": min(105.0, float(spec["max"]) + age_shift * sd),
                }
            )
        table["age"] = shifted
    rows = []
    for symptoms in table["symptoms"]:
        new = []
        for s in copy.deepcopy(list(symptoms or [])):
            f = float(np.clip(s["frequency"], 0.01, 0.99))
            s["frequency"] = float(expit(logit(f) + rng.normal(0.0, frequency_jitter)))
            if rng.random() < replace_share:
                options = ontology_neighbours(str(s["hpo"]))
                if options:
                    s["hpo"] = options[int(rng.integers(len(options)))]
                    s["name"] = onto.names[s["hpo"]]
            new.append(s)
        rows.append(new)
    table["symptoms"] = rows
    return table


def sample_symptom_patients(
    catalogue: pd.DataFrame,
    n_per_disease: int,
    *,
    seed: int,
    extra_terms_mean: float = 1.0,
    absent_mean: float = 1.0,
    max_present: int = 12,
    extra_by_usage: bool = False,
) -> pd.DataFrame:
    """``n_per_disease`` symptom-only patients of every disease of ``catalogue``.

    Columns: ``label`` (ICD-10), ``present`` and ``absent`` (HPO id lists), ``age``, ``sex``.
    Each annotated term is present with its frequency (at least one is); Poisson
    ``extra_terms_mean`` unrelated terms come from the other diseases' terms (uniformly,
    or with ``extra_by_usage`` in proportion to how many diseases list them, as the
    common complaints a visit records beside its diagnosis: fatigue, headache, nausea);
    Poisson ``absent_mean`` findings the patient does not have are reported absent.
    """
    rng = np.random.default_rng(seed)
    pool = catalogue_findings(catalogue)
    usage = {t: 0 for t in pool}
    for symptoms in catalogue["symptoms"]:
        for t in {str(s["hpo"]) for s in symptoms or []}:
            usage[t] += 1
    out = []
    for row in catalogue.itertuples():
        terms = [str(s["hpo"]) for s in row.symptoms or []]
        freq = np.array([float(s["frequency"]) for s in row.symptoms or []])
        own = set(terms)
        others = [t for t in pool if t not in own]
        age_spec, share = row.age, float(row.male_share)
        for _ in range(n_per_disease):
            drawn = rng.random(len(terms)) < freq
            if not drawn.any() and terms:
                drawn[int(rng.choice(len(terms), p=freq / freq.sum()))] = True
            present = [t for t, d in zip(terms, drawn, strict=True) if d][:max_present]
            n_extra = min(int(rng.poisson(extra_terms_mean)), len(others))
            weights = np.array([usage[t] for t in others], float) if extra_by_usage else None
            if n_extra:
                p = None if weights is None else weights / weights.sum()
                present += list(rng.choice(others, size=n_extra, replace=False, p=p))
            candidates = [t for t in pool if t not in set(present)]
            n_absent = min(int(rng.poisson(absent_mean)), len(candidates))
            absent = list(rng.choice(candidates, size=n_absent, replace=False)) if n_absent else []
            age = float(
                np.clip(
                    rng.normal(age_spec["mean"], max(age_spec["sd"], 0.05)),
                    age_spec["min"],
                    age_spec["max"],
                )
            )
            out.append(
                {
                    "label": str(row.icd10),
                    "present": [str(t) for t in present],
                    "absent": [str(t) for t in absent],
                    "age": round(age, 1),
                    "sex": "male" if rng.random() < share else "female",
                }
            )
    return pd.DataFrame(out)
