"""Support and validation cases of the rare hybrid's fit: unseen diseases held out
whole, few-shot diseases giving a share of their cases with at least one left as
support (rare/fit.py, ``split_support_validation``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from disease_pipeline.rare.cases import Case
from disease_pipeline.rare.fit import RareModelParams, split_support_validation


def _cases(sizes: dict[str, int]) -> list[Case]:
    return [
        Case(case_id=f"{d}-{i}", disease_id=d, present=["HP:0001250"])
        for d, n in sizes.items()
        for i in range(n)
    ]


@pytest.fixture
def params() -> RareModelParams:
    base = RareModelParams.from_dict({})
    return replace(base, validation_share=1.0, max_validation_cases=10_000)


def test_few_shot_diseases_give_a_share_of_their_cases_and_keep_support(params):
    cases = _cases({f"OMIM:{i}": 10 for i in range(40)})
    few_shot = replace(params, unseen_share=0.0, few_shot_holdout=0.5)
    support, first, second = split_support_validation(cases, few_shot, np.random.default_rng(0))
    held = first + second
    assert len(support) + len(held) == len(cases)
    assert {c.case_id for c in support}.isdisjoint(c.case_id for c in held)
    per_disease = {d: sum(c.disease_id == d for c in held) for d in {c.disease_id for c in cases}}
    assert set(per_disease.values()) == {5}  # half of each disease's ten cases
    assert {c.disease_id for c in support} == set(per_disease)  # every disease keeps support


def test_unseen_diseases_are_held_out_whole(params):
    cases = _cases({f"OMIM:{i}": 4 for i in range(40)})
    unseen = replace(params, unseen_share=1.0)
    support, first, second = split_support_validation(cases, unseen, np.random.default_rng(0))
    assert support == [] and len(first) + len(second) == len(cases)


def test_a_single_case_disease_is_an_unseen_one_and_one_case_is_the_least_holdout(params):
    cases = _cases({"OMIM:1": 1, **{f"OMIM:{i}": 3 for i in range(2, 30)}})
    tiny = replace(params, unseen_share=0.0, few_shot_holdout=0.01)
    support, first, second = split_support_validation(cases, tiny, np.random.default_rng(0))
    held = first + second
    assert "OMIM:1" not in {c.disease_id for c in support}
    counts = {d: sum(c.disease_id == d for c in held) for d in {c.disease_id for c in held}}
    assert counts.pop("OMIM:1") == 1 and set(counts.values()) == {1}


def test_the_holdout_share_is_a_checked_parameter():
    with pytest.raises(ValueError, match="few_shot_holdout"):
        RareModelParams.from_dict({"few_shot_holdout": 1.5})


def test_only_cases_of_the_validation_sources_are_validation_cases(params):
    registry = _cases({f"OMIM:{i}": 4 for i in range(20)})
    simulated = [
        Case(case_id=f"sim-{d}-{i}", disease_id=d, present=["HP:0001250"], source="simulated")
        for d in ["OMIM:0", "OMIM:1", *(f"ORPHA:{j}" for j in range(10))]
        for i in range(3)
    ]
    chosen = replace(params, validation_share=0.5, validation_sources=("registry",))
    support, first, second = split_support_validation(
        registry + simulated, chosen, np.random.default_rng(0)
    )
    held = first + second
    assert held and {c.source for c in held} == {"registry"}
    # a disease held out whole keeps no simulated case as support: it stays unseen
    whole = {c.disease_id for c in held} - {c.disease_id for c in support if c.source == "registry"}
    assert whole and not whole & {c.disease_id for c in support}
    # simulated-only diseases stay support, and nothing is lost
    assert {f"ORPHA:{j}" for j in range(10)} <= {c.disease_id for c in support}
    assert len(support) + len(held) == len(registry) + len(simulated)


def test_cross_fitting_parts_validate_on_disjoint_diseases(params):
    cases = _cases({f"OMIM:{i}": 4 for i in range(60)})
    three = replace(params, validation_share=0.3, validation_splits=3)
    seen: set[str] = set()
    for part in range(3):
        support, first, second = split_support_validation(
            cases, three, np.random.default_rng(0), part
        )
        diseases = {c.disease_id for c in first + second}
        assert len(diseases) == 18 and not diseases & seen
        assert len(support) + len(first) + len(second) == len(cases)
        seen |= diseases


def test_the_parts_must_fit_in_the_diseases():
    with pytest.raises(ValueError, match="validation_splits"):
        RareModelParams.from_dict({"validation_share": 0.4, "validation_splits": 3})
