"""The learned combination and its temperature."""

from __future__ import annotations

import numpy as np
import pytest

from disease_pipeline.rare.hybrid import (
    CASE_FAMILIES,
    CASE_FEATURES,
    FEATURES,
    PRIOR_WEIGHTS,
    PUBLISHED_CASE_FEATURES,
    RERANK_FEATURES,
    HybridParams,
    case_columns_fixed,
    case_patients,
    fit_reranker,
    fit_temperature,
    fit_weights,
    reranked,
    shortlist,
    softmax,
    without_case_candidates,
)

PRIOR = np.array([1.0, 1.0, 0.0])


def _groups(rng, n_patients: int, true_w: np.ndarray, n_candidates: int = 40) -> list:
    groups = []
    for _ in range(n_patients):
        x = rng.normal(size=(n_candidates, len(true_w)))
        p = softmax(x @ true_w, 1.0)
        truth = rng.choice(n_candidates, p=p)
        groups.append(x[np.r_[truth, np.setdiff1d(np.arange(n_candidates), [truth])]])
    return groups


def test_weights_are_recovered_from_enough_patients():
    rng = np.random.default_rng(0)
    true_w = np.array([2.0, 0.0, -1.0])
    weights, _ = fit_weights(_groups(rng, 800, true_w), prior_strength=1.0, prior=PRIOR)
    assert weights == pytest.approx(true_w, abs=0.35)


def test_few_patients_stay_near_the_prior():
    rng = np.random.default_rng(1)
    weights, _ = fit_weights(
        _groups(rng, 3, np.array([0.0, 0.0, 5.0])), prior_strength=50.0, prior=PRIOR
    )
    assert weights == pytest.approx([1.0, 1.0, 0.0], abs=0.3)


def test_temperature_undoes_overconfidence():
    rng = np.random.default_rng(2)
    logits, truths = [], []
    for _ in range(400):
        z = rng.normal(size=30) * 2.0
        truths.append(int(rng.choice(30, p=softmax(z, 1.0))))
        logits.append(3.0 * z)  # the same ranking, three times too sharp
    assert fit_temperature(logits, truths) == pytest.approx(3.0, rel=0.25)


def test_shortlist_puts_the_truth_first_and_keeps_each_component_top():
    x = np.zeros((100, 2))
    x[7, 0] = 5.0
    x[9, 1] = 5.0
    rows = shortlist(x, truth=42, size=3)
    assert rows[0] == 42 and {7, 9} <= set(rows.tolist()) and len(set(rows)) == len(rows)


def _case_groups(
    rng, n_patients: int, truth_has_cases: bool, family: str = "unpublished_cases"
) -> list:
    """Shortlists over :data:`FEATURES`: the truth leads on ``knowledge_present``; a
    quarter of the wrong candidates (and the truth when ``truth_has_cases``) have known
    cases of ``family`` (its indicator column), with a Resnik score against them; the
    other family's columns are 0."""
    features = CASE_FAMILIES[family]
    has, resnik = FEATURES.index(features[0]), FEATURES.index(features[2])
    groups = []
    for _ in range(n_patients):
        x = rng.normal(size=(30, len(FEATURES)))
        x[:, [FEATURES.index(n) for n in CASE_FEATURES + PUBLISHED_CASE_FEATURES]] = 0.0
        x[0, FEATURES.index("knowledge_present")] += 2.0
        cases = rng.random(30) < 0.25
        cases[0] = truth_has_cases
        x[:, has] = cases
        x[:, resnik] = np.where(cases, rng.normal(3.0, 1.0, 30), 0.0)
        if truth_has_cases:
            x[0, resnik] += 2.0  # the truth's own cases match the patient best
        groups.append(x)
    return groups


def _fixed_names(fixed: np.ndarray) -> list[str]:
    return [FEATURES[j] for j in np.flatnonzero(fixed)]


def test_case_weights_stay_at_the_prior_without_validation_patients_of_known_diseases():
    # one known case per disease: every validation disease is held out whole, so the
    # case features are only ever seen on wrong candidates; fitted freely they turn
    # negative and sink every patient of a disease with a known case
    rng = np.random.default_rng(3)
    unseen_only = _case_groups(rng, 300, truth_has_cases=False)
    free, _ = fit_weights(unseen_only, prior_strength=20.0)
    assert free[FEATURES.index("unpublished_cases")] < 0  # the failure the pinning prevents
    fixed = case_columns_fixed(unseen_only, min_patients=20)
    assert _fixed_names(fixed) == [*CASE_FEATURES, *PUBLISHED_CASE_FEATURES]
    pinned, _ = fit_weights(unseen_only, prior_strength=20.0, fixed=fixed)
    for name in CASE_FEATURES + PUBLISHED_CASE_FEATURES:
        j = FEATURES.index(name)
        assert pinned[j] == pytest.approx(PRIOR_WEIGHTS[j])
    assert pinned[FEATURES.index("knowledge_present")] > 0


@pytest.mark.parametrize("family", sorted(CASE_FAMILIES))
def test_each_case_family_is_fitted_only_with_validation_patients_of_its_diseases(family):
    """Patients whose diseases are known from one kind of case (published, or simulated
    only) fit that family's weights; the other family, which no truth carries, keeps
    its prior weight."""
    rng = np.random.default_rng(4)
    groups = _case_groups(rng, 150, False, family) + _case_groups(rng, 150, True, family)
    other = next(f for f in CASE_FAMILIES if f != family)
    assert case_patients(groups, family) == 150 and case_patients(groups, other) == 0
    fixed = case_columns_fixed(groups, min_patients=20)
    assert _fixed_names(fixed) == list(CASE_FAMILIES[other])
    weights, _ = fit_weights(groups, prior_strength=20.0, fixed=fixed)
    assert weights[FEATURES.index(CASE_FAMILIES[family][2])] > 0
    assert weights[FEATURES.index(other)] == pytest.approx(0.0)


def test_both_case_families_are_fitted_with_patients_of_both():
    rng = np.random.default_rng(5)
    groups = [
        *_case_groups(rng, 100, True, "unpublished_cases"),
        *_case_groups(rng, 100, True, "published_cases"),
        *_case_groups(rng, 100, False),
    ]
    assert not case_columns_fixed(groups, min_patients=20).any()


def test_without_case_candidates_keeps_the_truth_and_the_candidates_without_cases():
    group = np.zeros((5, len(FEATURES)))
    group[:, 0] = np.arange(5)
    group[[1, 3], FEATURES.index("unpublished_cases")] = 1.0
    group[[0, 2], FEATURES.index("published_cases")] = 1.0
    assert without_case_candidates(group, "unpublished_cases")[:, 0].tolist() == [0, 2, 4]
    assert without_case_candidates(group, "published_cases")[:, 0].tolist() == [0, 1, 3, 4]


def _agreement_patients(rng, n_patients: int, n_candidates: int = 60) -> np.ndarray:
    """Patients × candidates × FEATURES, truth first: the true disease is strong on
    ``knowledge_present`` and has ``resnik_one_sided`` and ``exact_share`` that agree,
    an order no weighted sum of the columns can express."""
    k, a, b = (FEATURES.index(n) for n in ("knowledge_present", "resnik_one_sided", "exact_share"))
    x = rng.uniform(size=(n_patients, n_candidates, len(FEATURES)))
    score = 2 * x[:, :, k] - 4 * np.abs(x[:, :, a] - x[:, :, b])
    truth = np.argmax(score + rng.gumbel(scale=0.02, size=score.shape), axis=1)
    order = np.argsort(np.arange(n_candidates)[None, :] != truth[:, None], axis=1, kind="stable")
    return np.take_along_axis(x, order[:, :, None], axis=1)


def _top1(logits: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == 0))


def test_the_reranking_trees_learn_what_the_weighted_sum_cannot():
    """Fitted on shortlists (truth first) from the linear weights, the trees raise the
    top-1 of new patients whose truth is an interaction of two columns; they re-rank
    only each patient's ``rerank_top`` strongest candidates."""
    rng = np.random.default_rng(3)
    train = _agreement_patients(rng, 600)
    weights, _ = fit_weights(list(train), prior_strength=1.0)
    params = HybridParams(
        rerank_rounds=100, rerank_depth=3, rerank_learning_rate=0.3, rerank_top=30
    )
    booster = fit_reranker(list(train), weights, params)
    assert booster is not None and booster.num_boosted_rounds() == 100
    test = _agreement_patients(rng, 300)
    linear = test @ weights
    columns = [test[:, :, FEATURES.index(name)] for name in RERANK_FEATURES]
    moved = reranked(linear, columns, booster, params.rerank_top)
    assert _top1(linear) < 0.25
    assert _top1(moved) > _top1(linear) + 0.2
    # outside each patient's 30 strongest linear candidates nothing moves
    below = np.argsort(-linear, axis=1)[:, 30:]
    assert np.array_equal(
        np.take_along_axis(moved, below, axis=1), np.take_along_axis(linear, below, axis=1)
    )


def test_no_reranking_trees_without_rounds():
    groups = list(_agreement_patients(np.random.default_rng(4), 20))
    weights = np.ones(len(FEATURES))
    assert fit_reranker(groups, weights, HybridParams(rerank_rounds=0)) is None
    logits = np.arange(6.0).reshape(2, 3)
    assert reranked(logits, [], None, 2) is logits
    assert "encoder" not in RERANK_FEATURES and "resnik_one_sided" in RERANK_FEATURES


@pytest.mark.parametrize(
    "knob", [{"rerank_rounds": -1}, {"rerank_depth": 0}, {"rerank_top": 0},
             {"rerank_learning_rate": 0.0}, {"rerank_subsample": 0.0},
             {"rerank_colsample": 1.5}, {"rerank_min_child_weight": -1.0},
             {"rerank_l2": -0.1}],
)  # fmt: skip
def test_reranking_knobs_out_of_range_are_refused(knob):
    with pytest.raises(ValueError, match="rare_model.hybrid"):
        HybridParams(**knob)
