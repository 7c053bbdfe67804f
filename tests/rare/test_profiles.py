"""Candidates and profiles: knowledge, known cases, and their blend."""

from __future__ import annotations

import numpy as np
import pytest

from disease_pipeline.rare.cases import Case
from disease_pipeline.rare.profiles import (
    build_candidates,
    case_profiles,
    knowledge_profiles,
    merge_profiles,
)

NEW_DISEASE = "OMIM:999999"  # known only from cases


@pytest.fixture(scope="module")
def two_cases(base):
    terms = ["HP:0007359", "HP:0001263"]  # focal seizure, global developmental delay
    return [
        Case("a", NEW_DISEASE, terms, disease_name="New syndrome"),
        Case("b", NEW_DISEASE, terms[:1], disease_name="New syndrome"),
    ]


def test_candidates_cover_annotations_catalogue_and_case_only_diseases(base, two_cases):
    candidates = build_candidates(base.annotations, base.catalogue, two_cases)
    table = candidates.table
    assert len(table) == base.annotations["disease_id"].nunique() + len(base.catalogue) + 1
    assert table["disease_id"].is_unique
    new = table.iloc[candidates.index[NEW_DISEASE]]
    assert (new["name"], new["category"], new["database"]) == ("New syndrome", "RARE", "OMIM")
    assert set(table.loc[table["database"] == "ICD10", "category"]) == {"COMMON"}


def test_knowledge_profile_propagates_the_highest_frequency(base):
    candidates = build_candidates(base.annotations, None)
    profiles = knowledge_profiles(base.annotations, None, candidates, base.space, 0.5)
    row = candidates.index["OMIM:154700"]
    annotations = base.annotations[
        (base.annotations["disease_id"] == "OMIM:154700") & ~base.annotations["excluded"]
    ]
    prop = profiles.propagated.tocsr()[row].toarray().ravel()
    root = base.space.index["HP:0000118"]
    expected_root = annotations["frequency"].fillna(0.5).max()
    assert prop[root] == pytest.approx(expected_root)
    for term, freq in zip(annotations["hpo_id"], annotations["frequency"].fillna(0.5), strict=True):
        if term in base.space.index:
            assert prop[base.space.index[term]] >= freq - 1e-6


def test_case_profile_shares_and_the_blend_with_annotations(base, two_cases):
    candidates = build_candidates(base.annotations, None, two_cases)
    knowledge = knowledge_profiles(base.annotations, None, candidates, base.space, 1.0)
    observed = case_profiles(two_cases, candidates, base.space)
    row = candidates.index[NEW_DISEASE]
    shares = observed.propagated.tocsr()[row].toarray().ravel()
    assert shares[base.space.index["HP:0007359"]] == pytest.approx(1.0)
    assert shares[base.space.index["HP:0001263"]] == pytest.approx(0.5)
    assert observed.n_cases[row] == 2
    merged = merge_profiles(knowledge, observed, pseudocount=3.0)
    # a case-only disease keeps the observed shares
    assert np.allclose(merged.propagated.tocsr()[row].toarray(), shares)
    # an annotated disease without cases keeps its annotations
    other = candidates.index["OMIM:154700"]
    assert (merged.propagated.tocsr()[other] != knowledge.propagated.tocsr()[other]).nnz == 0
    with pytest.raises(ValueError, match="annotation_pseudocount"):
        merge_profiles(knowledge, observed, pseudocount=0)
