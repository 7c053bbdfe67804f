"""The common-disease knowledge scorer: partial matches, noise, negatives, priors, tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from disease_pipeline.knowledge.common_scorer import CommonKnowledgeScorer
from disease_pipeline.records import PatientRecord, Symptom, records_to_tables

CHEST_PAIN, DYSPNEA, FATIGUE = "HP:0100749", "HP:0002094", "HP:0012378"
PODAGRA, FEVER, RHINORRHEA = "HP:0001854", "HP:0001945", "HP:0031417"


@pytest.fixture(scope="module")
def scorer() -> CommonKnowledgeScorer:
    return CommonKnowledgeScorer.from_catalogue()


def _rank(scorer, present, absent=(), age=40.0, sex="unknown") -> list[str]:
    lp = scorer.log_posterior_terms([list(present)], [list(absent)], np.array([age]), [sex])
    return [scorer.classes[j] for j in np.argsort(-lp[0])]


def test_posterior_is_normalised_and_shaped(scorer):
    lp = scorer.log_posterior_terms([[FEVER], []], None, np.array([30.0, np.nan]), ["male", "x"])
    assert lp.shape == (2, len(scorer.classes))
    assert np.allclose(np.exp(lp).sum(axis=1), 1.0)


def test_chest_pain_and_dyspnoea_put_myocardial_infarction_in_top_three(scorer):
    assert "I21" in _rank(scorer, [CHEST_PAIN, DYSPNEA], age=58, sex="male")[:3]


def test_more_specific_term_matches_through_its_ancestor(scorer):
    # gout is annotated with arthralgia/arthritis, not podagra (a descendant)
    assert "M10.9" not in {
        h["hpo"]
        for h in scorer.catalogue.set_index("icd10").loc["M10.9", "symptoms"]
        if h["hpo"] == PODAGRA
    }
    assert _rank(scorer, [PODAGRA], age=55, sex="male")[0] == "M10.9"


def test_unexplained_term_does_not_sink_a_disease(scorer):
    base = _rank(scorer, [RHINORRHEA, "HP:0001742", "HP:0025095"], age=28)
    noisy = _rank(scorer, [RHINORRHEA, "HP:0001742", "HP:0025095", PODAGRA], age=28)
    assert base[0] in noisy[:5]


def test_not_reported_is_not_absent(scorer):
    present = scorer.log_posterior_terms([[FEVER]], [[]], np.array([35.0]), ["female"])
    absent = scorer.log_posterior_terms([[FEVER]], [[FATIGUE]], np.array([35.0]), ["female"])
    flu = scorer.classes.index("J11.1")
    # an explicitly absent frequent symptom lowers influenza; not reporting it does not
    assert absent[0, flu] < present[0, flu]
    again = scorer.log_posterior_terms([[FEVER]], None, np.array([35.0]), ["female"])
    assert np.allclose(again, present)


def test_sex_prior_rules_out_sex_specific_disease():
    scorer = CommonKnowledgeScorer.from_catalogue()
    male = scorer.log_prior(np.array([30.0]), np.array(["male"], dtype=object))
    female = scorer.log_prior(np.array([30.0]), np.array(["female"], dtype=object))
    share = scorer.catalogue["male_share"].to_numpy(float)
    j = int(np.argmin(share))
    assert male[0, j] < female[0, j]


def test_tables_match_terms_and_measurements_move_the_posterior(scorer):
    record = PatientRecord(
        age=58,
        sex="male",
        symptoms=[
            Symptom(code=CHEST_PAIN),
            Symptom(code=DYSPNEA),
            Symptom(code=FATIGUE, present=False),
        ],
    )
    tables = records_to_tables([record])
    tables["encounters"] = tables["encounters"].drop(columns="start")
    from_tables = scorer.log_posterior(tables)
    from_terms = scorer.log_posterior_terms(
        [[CHEST_PAIN, DYSPNEA]], [[FATIGUE]], np.array([58.0]), ["male"]
    )
    assert np.allclose(from_tables, from_terms)
    troponin = pd.DataFrame(
        {"encounter_id": ["request-0"], "loinc": ["10839-9"], "value": [12.0], "unit": ["ng/mL"]}
    )
    with_lab = scorer.log_posterior({**tables, "labs": troponin})
    mi = scorer.classes.index("I21")
    assert with_lab[0, mi] > from_tables[0, mi]
