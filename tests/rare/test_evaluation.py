"""Validation protocols: ranks, metrics, and no leakage of evaluated diseases."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from disease_pipeline.rare import evaluation
from disease_pipeline.rare.evaluation import rank_of, rank_tie_won, summarise, unseen_folds


def test_rank_counts_ties_as_mean_rank_and_missing_truth_as_inf():
    scores = np.array([3.0, 1.0, 3.0, 0.5])
    assert rank_of(scores, 1) == 3.0
    assert rank_of(scores, 0) == 1.5
    assert math.isinf(rank_of(scores, None))
    assert math.isinf(rank_of(np.array([-np.inf, 0.0]), 0))


def test_tie_won_rank_counts_only_candidates_strictly_above():
    """The diagnostic convention: a truth tied with others is ranked first among them."""
    scores = np.array([3.0, 1.0, 3.0, 0.5, 3.0])
    assert rank_tie_won(scores, 0) == 1.0
    assert rank_of(scores, 0) == 2.0  # the fair convention shares the tie
    assert rank_tie_won(scores, 1) == 4.0
    assert math.isinf(rank_tie_won(np.array([-np.inf, 0.0]), 0))
    assert math.isinf(rank_tie_won(scores, None))


def test_summary_metrics():
    summary = summarise([1.0, 2.0, 5.0, float("inf")])
    assert summary == {
        "n": 4,
        "top1": 0.25,
        "top3": 0.5,
        "top10": 0.75,
        "mrr": pytest.approx((1 + 0.5 + 0.2) / 4, abs=1e-4),
    }


def test_folds_partition_the_diseases(cases):
    folds = unseen_folds(cases, 3, seed=0)
    diseases = [d for fold in folds for d in fold]
    assert sorted(diseases) == sorted({c.disease_id for c in cases})
    sizes = [sum(c.disease_id in set(f) for c in cases) for f in folds]
    assert max(sizes) - min(sizes) <= 5  # balanced by case count


def _spy(monkeypatch):
    seen = []

    def fake_fit(base, train, common, params, warm_start=None):
        seen.append({c.disease_id for c in train})
        raise _Stop

    monkeypatch.setattr(evaluation, "fit_rare_model", fake_fit)
    return seen


class _Stop(Exception):
    pass


def test_unseen_protocol_never_trains_on_an_evaluated_disease(
    monkeypatch, base, cases, test_params
):
    seen = _spy(monkeypatch)
    folds = unseen_folds(cases, 3, test_params.seed)
    with pytest.raises(_Stop):
        evaluation.protocol_unseen(base, cases, [], test_params, n_folds=3)
    assert seen and not seen[0] & set(folds[0])


def test_few_shot_protocol_trains_on_exactly_k_cases_of_tested_diseases(
    monkeypatch, base, cases, test_params
):
    captured = {}

    def fake_fit(base, train, common, params, warm_start=None):
        captured["train"] = train
        raise _Stop

    monkeypatch.setattr(evaluation, "fit_rare_model", fake_fit)
    with pytest.raises(_Stop):
        evaluation.protocol_few_shot(base, cases, [], test_params, k=3)
    counts = {}
    for case in captured["train"]:
        counts[case.disease_id] = counts.get(case.disease_id, 0) + 1
    totals = {}
    for case in cases:
        totals[case.disease_id] = totals.get(case.disease_id, 0) + 1
    for disease, total in totals.items():
        assert counts.get(disease, 0) == min(total, 3)


def test_fits_give_the_same_ranks_in_worker_processes(base, cases, test_params):
    """The validation's fits run side by side in spawned processes with the same result
    as one after the other (each fit is seeded; the pre-trained encoder is shared)."""
    warm, _ = evaluation.pretrain_encoder(base, [], test_params)
    fits = evaluation.unseen_fits(cases, 2, test_params.seed)
    alone = evaluation.run_fits(base, fits, [], test_params, warm_start=warm, workers=1)
    spread = evaluation.run_fits(base, fits, [], test_params, warm_start=warm, workers=2)
    assert len(spread) == 2
    for one, other in zip(alone, spread, strict=True):
        assert one.report["weights"] == pytest.approx(other.report["weights"], abs=1e-6)
        for method in evaluation.METHODS:
            assert one.ranks[method] == other.ranks[method], method


def test_other_cases_join_every_fit_except_for_the_diseases_it_tests(cases, test_params):
    """The validation's fits train on the simulated rare cases as the trained model does,
    but an unseen disease stays unseen and a few-shot one keeps its k support cases."""
    others = [replace(c, case_id=f"sim-{c.case_id}", source="simulated") for c in cases]
    fits = [
        *evaluation.unseen_fits(cases, 2, test_params.seed),
        evaluation.few_shot_fit(cases, 1, test_params.seed),
    ]
    for fit in fits:
        joined = evaluation.with_other_cases(fit, others)
        tested = {c.disease_id for c in fit.tests}
        added = joined.train[len(fit.train) :]
        assert joined.train[: len(fit.train)] == fit.train and joined.tests == fit.tests
        assert added == [c for c in others if c.disease_id not in tested]
        assert added and not {c.disease_id for c in added} & tested
