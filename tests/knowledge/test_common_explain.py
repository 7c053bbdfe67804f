"""Knowledge explanations: findings that moved a candidate, tests by information gain."""

from __future__ import annotations

import numpy as np
import pytest

from disease_pipeline.knowledge.common_explain import finding_contributions, recommended_tests
from disease_pipeline.knowledge.common_scorer import CommonKnowledgeScorer

CHEST_PAIN, DYSPNEA, RHINORRHEA = "HP:0100749", "HP:0002094", "HP:0031417"
TROPONIN = "10839-9"


@pytest.fixture(scope="module")
def scorer() -> CommonKnowledgeScorer:
    return CommonKnowledgeScorer.from_catalogue()


def _posterior(scorer, present, absent=()):
    lp = scorer.log_posterior_terms([present], [list(absent)], np.array([58.0]), ["male"])
    return np.exp(lp[0])


def test_troponin_is_the_most_informative_test_for_chest_pain(scorer):
    tests = recommended_tests(scorer, _posterior(scorer, [CHEST_PAIN, DYSPNEA]), set())
    assert len(tests) == 3
    assert tests[0]["loinc"] == TROPONIN
    assert "I21" in tests[0]["separates"]
    gains = [t["expected_information_gain"] for t in tests]
    assert gains == sorted(gains, reverse=True)


def test_measured_items_are_not_recommended_and_certainty_needs_no_test(scorer):
    posterior = _posterior(scorer, [CHEST_PAIN, DYSPNEA])
    tests = recommended_tests(scorer, posterior, {TROPONIN})
    assert TROPONIN not in [t["loinc"] for t in tests]
    certain = np.zeros(len(scorer.classes))
    certain[0] = 1.0
    assert recommended_tests(scorer, certain, set()) == []


def test_findings_are_the_reported_ones_with_their_direction(scorer):
    posterior = _posterior(scorer, [CHEST_PAIN, RHINORRHEA], absent=[DYSPNEA])
    mi = scorer.classes.index("I21")
    items = finding_contributions(scorer, [CHEST_PAIN, RHINORRHEA], [DYSPNEA], mi, posterior)
    by_term = {i["hpo_id"]: i for i in items}
    assert set(by_term) <= {CHEST_PAIN, RHINORRHEA, DYSPNEA}
    assert by_term[CHEST_PAIN]["direction"] == "increases"
    assert by_term[RHINORRHEA]["direction"] == "decreases"
    assert by_term[DYSPNEA]["text"] == "Dyspnea: reported absent"
    assert by_term[DYSPNEA]["direction"] == "decreases"
