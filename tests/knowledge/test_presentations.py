"""Classic symptoms-only presentations, related findings and robust age patterns."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from disease_pipeline.knowledge import catalogue as catalogue_module
from disease_pipeline.knowledge.catalogue import load_common_diseases, load_related_findings
from disease_pipeline.knowledge.common_priors import log_age_factor
from disease_pipeline.knowledge.common_scorer import CommonKnowledgeScorer, KnowledgeParams
from disease_pipeline.knowledge.presentations import load_classic_presentations

#: The knobs of conf/base/parameters_common_model.yml that these tests exercise.
PARAMS = {"related_match": 0.3, "age_tail": 0.1}
LETHARGY, FATIGUE, DYSPNEA, PEDAL_EDEMA = "HP:0001254", "HP:0012378", "HP:0002094", "HP:0010741"
ABDOMINAL_PAIN, NAUSEA, VOMITING, FEVER = "HP:0002027", "HP:0002018", "HP:0002013", "HP:0001945"


@pytest.fixture(scope="module")
def scorer() -> CommonKnowledgeScorer:
    return CommonKnowledgeScorer.from_catalogue(**PARAMS)


def _ranks(scorer, patients) -> np.ndarray:
    lp = scorer.log_posterior_terms(
        list(patients["present"]),
        list(patients["absent"]),
        patients["age"].to_numpy(float),
        patients["sex"].to_numpy(object),
    )
    index = {c: j for j, c in enumerate(scorer.classes)}
    truth = np.array([lp[i, index[c]] for i, c in enumerate(patients["label"])])
    return 1 + (lp > truth[:, None]).sum(axis=1)


def test_classic_presentations_cover_the_hard_diseases_and_are_catalogue_diseases():
    cases = load_classic_presentations()
    hard = {"J18.9", "I26", "I21", "A41.9", "K35.8", "K81.0", "N17.9", "E10.1", "C34", "J47"}
    hard |= {"J45", "J44.1", "I80.2", "I50.9", "F41.0", "M10.9", "D50.9", "D64.9"}
    assert hard <= set(cases["label"])
    assert set(cases["label"]) <= set(load_common_diseases()["icd10"])
    assert all(1 <= len(p) <= 6 for p in cases["present"])


def test_every_classic_presentation_ranks_its_disease_high(scorer):
    """A textbook picture (symptoms, age and sex only) puts its disease in the top 5, and
    in the top 3 for at least 90 % of the cases."""
    cases = load_classic_presentations()
    ranks = _ranks(scorer, cases)
    misses = {c: int(r) for c, r in zip(cases["label"], ranks, strict=True) if r > 5}
    assert not misses
    assert (ranks <= 3).mean() >= 0.9


def test_related_finding_counts_for_a_disease_annotated_with_its_partner(scorer):
    assert LETHARGY in load_related_findings()[FATIGUE]
    assert FATIGUE in load_related_findings()[LETHARGY]
    off = CommonKnowledgeScorer.from_catalogue(**{**PARAMS, "related_match": 0.0})
    heart_failure = scorer.classes.index("I50.9")
    assert off.match(LETHARGY)[heart_failure] == 0.0  # HF lists Fatigue, not Lethargy
    assert scorer.match(LETHARGY)[heart_failure] == pytest.approx(0.3 * 0.7)
    args = ([[DYSPNEA, PEDAL_EDEMA, LETHARGY]], None, np.array([78.0]), ["female"])
    assert (
        scorer.log_posterior_terms(*args)[0, heart_failure]
        > off.log_posterior_terms(*args)[0, heart_failure]
    )


def test_related_findings_refuse_a_misnamed_member(monkeypatch):
    group = [{"reason": "x", "members": [{"hpo": FATIGUE, "name": "Tiredness"}]}]
    monkeypatch.setattr(catalogue_module, "_read_yaml", lambda name: group)
    load_related_findings.cache_clear()
    try:
        with pytest.raises(ValueError, match="related_findings.yaml group 0.*Tiredness"):
            load_related_findings()
    finally:
        monkeypatch.undo()
        load_related_findings.cache_clear()


def test_age_tail_softens_an_unusual_but_possible_age():
    table = load_common_diseases()
    appendicitis = int(np.flatnonzero(table["icd10"] == "K35.8")[0])
    ages = np.array([22.0, 82.0])  # typical, unusual

    def gap(tail: float) -> float:
        factor = log_age_factor(table, ages, 0.02, tail)[:, appendicitis]
        assert np.isfinite(factor).all()
        return float(factor[0] - factor[1])

    assert gap(0.1) > 0  # the typical age still favours appendicitis
    assert gap(0.1) < gap(0.0) - 1.0  # but an 82-year-old is not all but ruled out
    with pytest.raises(ValueError, match="age_tail"):
        KnowledgeParams(age_tail=1.0)


def test_elderly_appendicitis_stays_in_the_differential(scorer):
    lp = scorer.log_posterior_terms(
        [[ABDOMINAL_PAIN, NAUSEA, VOMITING, FEVER]], None, np.array([80.0]), ["female"]
    )[0]
    order = [scorer.classes[j] for j in np.argsort(-lp)]
    assert "K35.8" in order[:10]


def test_scorer_pickled_before_new_knobs_scores_as_before(scorer):
    """A scorer pickled by an earlier version (no related findings, no age tail) loads with
    neutral defaults for the knobs it did not have."""
    old = CommonKnowledgeScorer.from_catalogue()  # dataclass defaults: both knobs off
    state = old.__getstate__()
    state.pop("_related")
    params = dict(old.params.__dict__)
    for name in ("related_match", "age_tail", "evidence_weight"):
        params.pop(name)
    blank = KnowledgeParams.__new__(KnowledgeParams)
    blank.__setstate__(params)
    state["params"] = blank
    revived = CommonKnowledgeScorer.__new__(CommonKnowledgeScorer)
    revived.__setstate__(state)
    revived = pickle.loads(pickle.dumps(revived))
    args = ([[LETHARGY, DYSPNEA]], None, np.array([70.0]), ["male"])
    assert np.allclose(revived.log_posterior_terms(*args), old.log_posterior_terms(*args))
