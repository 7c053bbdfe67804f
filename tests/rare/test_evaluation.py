"""Validation protocols: ranks, metrics, and no leakage of evaluated diseases."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from disease_pipeline.pipelines.rare_model.registry import phenopacket_publications
from disease_pipeline.rare import evaluation
from disease_pipeline.rare.evaluation import rank_of, rank_tie_won, summarise, unseen_folds
from disease_pipeline.rare.report import validation_markdown
from tests.rare.conftest import SAMPLE_PHENOPACKETS


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


def test_publication_folds_test_new_publications_of_known_diseases(cases):
    """Protocol 3: a fold tests whole publications of diseases reported in two or more,
    and another publication of each tested disease stays on its training side."""
    publication = phenopacket_publications(SAMPLE_PHENOPACKETS)
    publications_of: dict[str, set[str]] = {}
    for case in cases:
        publications_of.setdefault(case.disease_id, set()).add(publication[case.case_id])
    expected = {(d, p) for d, names in publications_of.items() if len(names) >= 2 for p in names}
    assert len(expected) >= 10  # the sample has several diseases with several publications
    fits = evaluation.publication_fits(cases, publication, 3, seed=0)
    tested: list[tuple[str, str]] = []
    for fit in fits:
        held = {(c.disease_id, publication[c.case_id]) for c in fit.tests}
        assert fit.tests and not {c.case_id for c in fit.train} & {c.case_id for c in fit.tests}
        assert not any((c.disease_id, publication[c.case_id]) in held for c in fit.train)
        for disease, name in held:
            assert any(
                c.disease_id == disease and publication[c.case_id] != name for c in fit.train
            ), (disease, name)
        tested += sorted(held)
    assert sorted(tested) == sorted(expected)  # each publication tested once
    again = evaluation.publication_fits(cases, publication, 3, seed=0)
    assert [f.tests for f in again] == [f.tests for f in fits]
    # a case whose publication is unknown never tests
    unknown = {c.case_id for c in cases if c.disease_id == fits[0].tests[0].disease_id}
    partial = {k: v for k, v in publication.items() if k not in unknown}
    for fit in evaluation.publication_fits(cases, partial, 3, seed=0):
        assert not {c.case_id for c in fit.tests} & unknown
    with pytest.raises(ValueError, match="n_folds must be >= 2"):
        evaluation.publication_fits(cases, publication, 1, seed=0)


def test_phenopacket_publications_reads_the_first_pubmed_reference(tmp_path):
    sample = sorted(SAMPLE_PHENOPACKETS.rglob("*.json"))
    publication = phenopacket_publications(SAMPLE_PHENOPACKETS)
    assert len(publication) == len(sample) == 60
    assert all(value.startswith("PMID:") for value in publication.values())
    packet = json.loads(sample[0].read_text(encoding="utf-8"))
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "a.json").write_text(json.dumps(packet), encoding="utf-8")
    unreferenced = {**packet, "id": "no-reference", "metaData": {"externalReferences": []}}
    (tmp_path / "b.json").write_text(json.dumps(unreferenced), encoding="utf-8")
    (tmp_path / "c.json").write_text("{not json", encoding="utf-8")
    assert phenopacket_publications(tmp_path) == {packet["id"]: publication[packet["id"]]}


def test_validation_reports_new_publications_when_they_are_known(base, cases, test_params):
    """Given each case's publication, the validation adds protocol 3, with the same
    metrics, intervals and per-disease rows as the others, and the page shows it."""
    publication = phenopacket_publications(SAMPLE_PHENOPACKETS)
    warm, history = evaluation.pretrain_encoder(base, [], test_params)
    result = evaluation.run_validation(
        base, cases, [], test_params, n_folds=2, shots=[], warm_start=warm,
        pretraining=history, publications=publication,
    )  # fmt: skip
    block = result["protocols"]["new_publication"]
    fits = evaluation.publication_fits(cases, publication, 2, test_params.seed)
    assert block["test_cases"] == sum(len(f.tests) for f in fits) > 0
    assert block["metrics"]["hybrid"]["n"] == block["test_cases"]
    assert set(block["metrics"]) == set(evaluation.METHODS)
    low, high = block["bootstrap"]["intervals"]["hybrid"]["top10"]
    assert low <= block["metrics"]["hybrid"]["top10"] <= high
    page = validation_markdown(result)
    assert "Protocol 3 — new publications of known diseases" in page
    assert f"{block['test_publications']} publications tested" in page
    without = evaluation.run_validation(
        base, cases[:20], [], test_params, n_folds=2, shots=[], warm_start=warm
    )
    assert set(without["protocols"]) == {"unseen"}
