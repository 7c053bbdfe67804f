"""One-sided Resnik best-match average: definition, batch path, no penalty for rich
annotations."""

from __future__ import annotations

import numpy as np
import pytest

from disease_pipeline.rare.profiles import build_candidates, knowledge_profiles
from disease_pipeline.rare.scorer import ResnikBMA, information_content
from disease_pipeline.rare.similarity import OneSidedResnik


@pytest.fixture(scope="module")
def setup(base):
    candidates = build_candidates(base.annotations, base.catalogue)
    profiles = knowledge_profiles(base.annotations, base.catalogue, candidates, base.space, 1.0)
    ic = information_content(profiles)
    return candidates, profiles, ic, OneSidedResnik(profiles, ic, base.space)


def _brute_force(space, profiles, ic, present: list[int], row: int) -> float:
    annotated = set(profiles.propagated.tocsr()[row].indices.tolist())
    best = [
        max((ic[a] for a in space.ancestor_lists[q] if a in annotated), default=0.0)
        for q in present
    ]
    return float(np.mean(best))


def test_scores_follow_the_definition(base, setup):
    candidates, profiles, ic, resnik = setup
    rng = np.random.default_rng(3)
    present = rng.choice(np.unique(profiles.direct.indices), size=6, replace=False).tolist()
    scores = resnik.score(present)
    for row in rng.choice(len(candidates), size=25, replace=False):
        expected = _brute_force(base.space, profiles, ic, present, int(row))
        assert scores[row] == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_batch_equals_one_patient_at_a_time(setup):
    _, profiles, ic, resnik = setup
    rng = np.random.default_rng(4)
    terms = np.unique(profiles.direct.indices)
    patients = [rng.choice(terms, size=n, replace=False) for n in (1, 4, 9)]
    batch, share = resnik.score_batch(patients)
    for i, patient in enumerate(patients):
        assert np.allclose(batch[i], resnik.score(patient))
        assert np.all((share[i] >= 0) & (share[i] <= 1 + 1e-6))


def test_unlike_the_symmetric_variant_extra_annotations_do_not_cost(base, setup):
    """A patient showing some of a disease's terms: the one-sided score is the same
    whatever else the disease is annotated with; the symmetric one drops."""
    candidates, profiles, ic, one_sided = setup
    direct = profiles.direct.tocsr()
    rich = int(np.argmax(np.diff(direct.indptr)))
    terms = direct[rich].indices
    patient = terms[np.argsort(-ic[terms])][:3].tolist()
    scores = one_sided.score(patient)
    assert scores[rich] == pytest.approx(np.mean(ic[patient]), rel=1e-5)
    assert scores[rich] >= scores.max() - 1e-6  # nothing can match better
    symmetric = ResnikBMA(profiles, ic, base.space).score(patient)
    assert symmetric[rich] < scores[rich]


def test_one_patient_is_scored_against_every_candidate(setup):
    """Every candidate gets a finite score, and a warm call (term rows cached) answers
    as the cold one did. The milliseconds are measured by the train pipeline's
    ``rare_model_latency.json`` (scripts/benchmark_*), not timed here."""
    candidates, profiles, _, resnik = setup
    rng = np.random.default_rng(5)
    terms = np.unique(profiles.direct.indices)
    patients = [rng.choice(terms, size=10, replace=False) for _ in range(30)]
    cold = [resnik.score(patient) for patient in patients]  # every term's row built once
    warm = [resnik.score(patient) for patient in patients]
    assert len(candidates) > 12_000
    assert all(c.shape == (len(candidates),) and np.isfinite(c).all() for c in cold)
    assert all(np.array_equal(c, w) for c, w in zip(cold, warm, strict=True))


def test_disease_side_is_the_other_half_of_the_symmetric_average(base, setup):
    """0.5 · (one-sided + disease side) is the symmetric Resnik BMA, candidate by
    candidate, so the report's symmetric baseline can come from the vectorised halves."""
    candidates, profiles, ic, one_sided = setup
    rng = np.random.default_rng(6)
    terms = np.unique(profiles.direct.indices)
    patients = [rng.choice(terms, size=n, replace=False) for n in (1, 5)]
    symmetric = ResnikBMA(profiles, ic, base.space)
    side = one_sided.disease_side([*patients, np.zeros(0, dtype=np.int64)])
    assert side.shape == (3, len(candidates))
    assert not side[2].any()  # a patient without terms matches nothing
    for i, patient in enumerate(patients):
        combined = 0.5 * (one_sided.score(patient) + side[i])
        assert np.allclose(combined, symmetric.score(patient.tolist()), atol=1e-5)


def test_disease_side_rewards_covering_the_disease_profile(setup):
    """A patient showing every directly annotated term of a disease covers its whole
    profile (the mean IC of those terms); one showing a single term covers less."""
    _, profiles, ic, one_sided = setup
    direct = profiles.direct.tocsr()
    sizes = np.diff(direct.indptr)
    row = int(np.flatnonzero(sizes == 4)[0])
    terms = direct[row].indices
    full, partial = one_sided.disease_side([terms, terms[:1]])[:, row]
    assert full == pytest.approx(float(np.mean(ic[terms])), rel=1e-5)
    assert partial < full


def test_exact_share_names_the_candidates_annotated_with_the_very_terms(base, setup):
    """The one-sided score gives a term's full IC to a candidate annotated with a more
    specific term too; ``exact_share`` credits only the exact annotation (IC-weighted),
    so among candidates that tie on the one-sided score it prefers those naming the
    patient's very terms."""
    candidates, profiles, ic, resnik = setup
    direct = profiles.direct.tocsr()
    rich = int(np.argmax(np.diff(direct.indptr)))
    terms = direct[rich].indices[:4]
    share = resnik.exact_share([terms, np.zeros(0, dtype=np.int64)])
    assert share[0, rich] == pytest.approx(1.0)
    assert np.all(share[1] == 0)
    # brute force on some candidates: IC of the exactly annotated terms over the total
    rng = np.random.default_rng(5)
    for row in rng.choice(len(candidates), size=40, replace=False):
        exact = set(direct[int(row)].indices.tolist())
        expected = sum(ic[t] for t in terms if t in exact) / sum(ic[t] for t in terms)
        assert share[0, row] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    # a parent of an annotated term explains it fully on the one-sided score, not exactly
    child = int(terms[0])
    parent = next(
        p for p in base.space.ancestor_lists[child]
        if p != child and p not in set(direct[rich].indices.tolist()) and ic[p] > 0
    )  # fmt: skip
    one_sided, _ = resnik.score_batch([np.array([parent])])
    assert one_sided[0, rich] == pytest.approx(ic[parent], rel=1e-5)
    assert resnik.exact_share([np.array([parent])])[0, rich] == 0.0


def test_considered_share_is_the_ic_share_of_excluded_terms_in_the_spectrum(base, setup):
    """``considered_share``: the IC share of the excluded terms the candidate is
    annotated with (or with a more specific term), 0 without excluded terms."""
    candidates, profiles, ic, resnik = setup
    direct = profiles.direct.tocsr()
    rich = int(np.argmax(np.diff(direct.indptr)))
    own = direct[rich].indices[:3]
    other = next(
        t for t in np.unique(profiles.direct.indices)
        if t not in set(profiles.propagated.tocsr()[rich].indices.tolist()) and ic[t] > 0
    )  # fmt: skip
    excluded = np.array([*own, other])
    share = resnik.considered_share([excluded, np.zeros(0, dtype=np.int64)])
    expected = sum(ic[t] for t in own) / sum(ic[t] for t in excluded)
    assert share[0, rich] == pytest.approx(expected, rel=1e-6)
    assert np.all(share[1] == 0)
    # an annotated descendant puts the excluded ancestor in the spectrum
    child = int(own[0])
    parent = next(p for p in base.space.ancestor_lists[child] if p != child and ic[p] > 0)
    assert resnik.considered_share([np.array([parent])])[0, rich] == pytest.approx(1.0)
    propagated = profiles.propagated.tocsr()
    rng = np.random.default_rng(6)
    for row in rng.choice(len(candidates), size=40, replace=False):
        spectrum = set(propagated[int(row)].indices.tolist())
        want = sum(ic[t] for t in excluded if t in spectrum) / sum(ic[t] for t in excluded)
        assert share[0, row] == pytest.approx(want, rel=1e-5, abs=1e-9)
