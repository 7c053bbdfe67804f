"""Knowledge-shift check: the perturbed catalogue, its patients, and the baselines on them."""

from __future__ import annotations

import numpy as np
import pytest

from disease_pipeline.knowledge.catalogue import load_common_diseases
from disease_pipeline.knowledge.common_scorer import CommonKnowledgeScorer
from disease_pipeline.knowledge.hpo import load_ontology
from disease_pipeline.knowledge.knowledge_shift import (
    ontology_neighbours,
    perturbed_catalogue,
    sample_symptom_patients,
)
from disease_pipeline.knowledge.naive_bayes import naive_bayes_log_posterior


@pytest.fixture(scope="module")
def scorer() -> CommonKnowledgeScorer:
    return CommonKnowledgeScorer.from_catalogue()


def _terms(table) -> list[tuple[str, str]]:
    return [(row.icd10, s["hpo"]) for row in table.itertuples() for s in row.symptoms]


def test_neighbours_are_parents_children_or_siblings():
    onto = load_ontology()
    for term in ("HP:0002829", "HP:0100749"):
        for other in ontology_neighbours(term):
            related = other in onto.parents[term] or term in onto.parents.get(other, ())
            sibling = set(onto.parents[term]) & set(onto.parents.get(other, ()))
            assert related or sibling


def test_perturbation_replaces_about_the_share_and_jitters_frequencies():
    catalogue = load_common_diseases()
    shifted = perturbed_catalogue(catalogue, seed=3, replace_share=0.2)
    before, after = _terms(catalogue), _terms(shifted)
    changed = np.mean([a != b for a, b in zip(before, after, strict=True)])
    assert 0.1 < changed < 0.3
    f0 = [s["frequency"] for r in catalogue["symptoms"] for s in r]
    f1 = [s["frequency"] for r in shifted["symptoms"] for s in r]
    assert not np.allclose(f0, f1) and all(0 < f < 1 for f in f1)
    assert _terms(load_common_diseases()) == before  # the cached catalogue is untouched


def test_patients_are_symptom_only_with_consistent_fields():
    catalogue = load_common_diseases()
    patients = sample_symptom_patients(catalogue, 3, seed=1, extra_terms_mean=1.0)
    assert len(patients) == 3 * len(catalogue)
    assert set(patients["label"]) == set(catalogue["icd10"])
    assert all(len(p) >= 1 for p in patients["present"])
    assert all(
        not set(p) & set(a) for p, a in zip(patients["present"], patients["absent"], strict=True)
    )
    assert set(patients["sex"]) <= {"male", "female"}


def _top3(scorer, patients, log_post) -> float:
    index = {c: j for j, c in enumerate(scorer.classes)}
    truth = np.array([log_post[i, index[c]] for i, c in enumerate(patients["label"])])
    return float(((log_post > truth[:, None]).sum(axis=1) < 3).mean())


def test_ontology_aware_scorer_beats_exact_naive_bayes_when_terms_shift(scorer):
    """With most terms replaced by ontology neighbours, exact matching loses what partial
    matching keeps."""
    shifted = perturbed_catalogue(load_common_diseases(), seed=5, replace_share=0.8)
    patients = sample_symptom_patients(shifted, 10, seed=6, extra_terms_mean=2.0, max_present=5)
    args = (list(patients["present"]), list(patients["absent"]), patients["age"].to_numpy(float))
    sex = patients["sex"].to_numpy(object)
    knowledge = scorer.log_posterior_terms(*args, sex)
    naive = naive_bayes_log_posterior(scorer, *args, sex)
    assert _top3(scorer, patients, knowledge) > _top3(scorer, patients, naive)


def test_age_shift_moves_and_widens_age_patterns():
    catalogue = load_common_diseases()
    shifted = perturbed_catalogue(catalogue, seed=4, age_shift=0.75)
    before, after = catalogue["age"].to_list(), shifted["age"].to_list()
    assert all(a["sd"] == pytest.approx(b["sd"] * 1.75) for a, b in zip(after, before, strict=True))
    assert all(
        a["min"] <= b["min"] and a["max"] >= b["max"] for a, b in zip(after, before, strict=True)
    )
    assert not np.allclose([a["mean"] for a in after], [b["mean"] for b in before])
    same = perturbed_catalogue(catalogue, seed=4)
    assert same["age"].to_list() == before


def test_extra_terms_by_usage_favour_common_complaints():
    catalogue = load_common_diseases()
    usage: dict[str, int] = {}
    for symptoms in catalogue["symptoms"]:
        for t in {s["hpo"] for s in symptoms}:
            usage[t] = usage.get(t, 0) + 1
    own = {row.icd10: {s["hpo"] for s in row.symptoms} for row in catalogue.itertuples()}

    def mean_usage(by_usage: bool) -> float:
        patients = sample_symptom_patients(
            catalogue, 5, seed=2, extra_terms_mean=3.0, extra_by_usage=by_usage
        )
        extra = [
            t
            for p, c in zip(patients["present"], patients["label"], strict=True)
            for t in p
            if t not in own[c]
        ]
        return float(np.mean([usage[t] for t in extra]))

    assert mean_usage(True) > mean_usage(False) + 1.0
