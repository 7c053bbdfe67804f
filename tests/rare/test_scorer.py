"""Knowledge scorers over all candidates: right disease on top, evidence in the right
direction, vectorised speed."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from disease_pipeline.rare.profiles import build_candidates, knowledge_profiles
from disease_pipeline.rare.scorer import (
    LikelihoodRatioScorer,
    LRParams,
    ResnikBMA,
    background_frequency,
    information_content,
)


@pytest.fixture(scope="module")
def setup(base):
    candidates = build_candidates(base.annotations, base.catalogue)
    profiles = knowledge_profiles(base.annotations, base.catalogue, candidates, base.space, 1.0)
    background = background_frequency(profiles)
    lr = LikelihoodRatioScorer(profiles, background, base.space, LRParams())
    resnik = ResnikBMA(profiles, information_content(profiles), base.space)
    return candidates, profiles, background, lr, resnik


def _specific_terms(base, profiles, background, row: int, n: int) -> list[int]:
    direct = profiles.direct[row]
    terms = direct.indices[np.argsort(background[direct.indices])]
    return [int(t) for t in terms[:n]]


def test_a_disease_described_by_its_own_specific_terms_ranks_on_top(base, setup):
    candidates, profiles, background, lr, resnik = setup
    rng = np.random.default_rng(0)
    rich = np.where(np.diff(profiles.direct.indptr) >= 15)[0]
    ranks = {"lr": [], "resnik": []}
    for row in rng.choice(rich, size=20, replace=False):
        patient = _specific_terms(base, profiles, background, int(row), 6)
        for name, scorer in (("lr", lr), ("resnik", resnik)):
            scores = scorer.score(patient)
            ranks[name].append(1 + int(np.sum(scores > scores[row])))
    # 12,700 candidates: the right one is found among the first few
    assert np.median(ranks["lr"]) <= 3
    assert np.median(ranks["resnik"]) <= 10


def test_excluding_a_frequent_feature_argues_against_the_disease(base, setup):
    candidates, profiles, background, lr, _ = setup
    row = candidates.index["OMIM:154700"]  # Marfan syndrome
    direct = profiles.direct[row]
    frequent = int(direct.indices[np.argmax(direct.data)])
    others = [int(t) for t in direct.indices if t != frequent][:5]
    with_exclusion = lr.score(others, [frequent])
    without = lr.score(others)
    shift = with_exclusion - without
    assert shift[row] < 0  # the excluded feature is annotated (frequently) to this disease
    assert shift[row] < np.median(shift)


def test_a_term_annotated_not_present_gets_the_not_penalty(base, setup):
    candidates, profiles, background, lr, _ = setup
    nots = profiles.excluded.tocsr()
    row = int(np.where(np.diff(nots.indptr) > 0)[0][0])
    term = int(nots.indices[nots.indptr[row]])
    ratio = lr.present_ratio(term)
    assert ratio[row] == pytest.approx(LRParams().not_annotated)


def test_batch_scoring_equals_one_patient_at_a_time(base, setup):
    """The batch path (each distinct term's row computed once, kept in a per-process
    cache, summed by a sparse product) gives every patient's single-patient scores."""
    candidates, profiles, background, lr, _ = setup
    rng = np.random.default_rng(1)
    rows = rng.choice(np.where(np.diff(profiles.direct.indptr) >= 10)[0], size=10, replace=False)
    present = [profiles.direct[row].indices[:10].astype(np.int64) for row in rows]
    excluded = [profiles.direct[row].indices[10:12].astype(np.int64) for row in rows]
    for _ in range(2):  # the second pass reads the cached rows
        batch_present, batch_excluded = lr.score_parts_batch(present, excluded)
        assert batch_present.shape == (len(rows), len(candidates))
        for i in range(len(rows)):
            single_present, single_excluded = lr.score_parts(present[i].tolist(), excluded[i])
            assert np.allclose(batch_present[i], single_present)
            assert np.allclose(batch_excluded[i], single_excluded)
    assert lr.__dict__["_term_rows"]
    assert "_term_rows" not in pickle.loads(pickle.dumps(lr)).__dict__


def _present_ratio_walking_every_ancestor(lr: LikelihoodRatioScorer, term: int) -> np.ndarray:
    """The likelihood ratio of the module docstring, every ancestor walked."""
    p = lr.params
    best = np.full(lr.n_candidates, p.noise)
    for a in lr.space.ancestor_lists[term]:
        rows, values = lr._ratio.column(a)
        scale = 1.0 if a == term else p.ancestor_discount
        best[rows] = np.maximum(best[rows], values * scale)
    for a in lr.space.ancestor_lists[term]:
        best[lr._not.column(a)[0]] = p.not_annotated
    return best


def test_skipping_ancestors_below_the_noise_floor_changes_no_ratio(base, setup):
    """The walk skips the broad ancestors whose discounted ratio cannot beat the noise
    floor (about a third of them): the rows are those of the full walk, for terms of
    every depth."""
    candidates, profiles, background, lr, _ = setup
    rng = np.random.default_rng(2)
    annotated = np.unique(profiles.direct.indices)
    skipped = 0
    for term in rng.choice(annotated, size=300, replace=False).tolist():
        full = _present_ratio_walking_every_ancestor(lr, term)
        assert np.array_equal(lr.present_ratio(term), full)
        ancestors = [a for a in lr.space.ancestor_lists[term] if a != term]
        skipped += sum(not lr._ancestors_above_noise()[a] for a in ancestors)
    assert skipped > 300  # the shortcut is taken, not only kept correct
    assert "_above_noise" not in pickle.loads(pickle.dumps(lr)).__dict__
