"""Disease-cluster bootstrap intervals, paired differences and the per-disease breakdown."""

from __future__ import annotations

import numpy as np

from disease_pipeline.rare.validation_stats import bootstrap_metrics, failure_mode, per_disease


def _details(diseases, **facts):
    base = {"n_terms": 6, "annotated_terms": 20, "unexplained_share": 0.1, "non_omim_above": 0}
    return [
        {"disease_id": d, "disease_name": d, "top1": "OMIM:9", **base, **facts} for d in diseases
    ]


def test_a_method_better_on_every_disease_has_a_difference_interval_above_zero():
    rng = np.random.default_rng(0)
    diseases = [f"OMIM:{i // 5}" for i in range(400)]
    better = [1.0 if rng.random() < 0.7 else 20.0 for _ in diseases]
    worse = [1.0 if rng.random() < 0.4 else 20.0 for _ in diseases]
    result = bootstrap_metrics(
        {"hybrid": better, "resnik_one_sided": worse}, diseases, reference="resnik_one_sided"
    )
    low, high = result["intervals"]["hybrid"]["top1"]
    assert low < np.mean(np.asarray(better) <= 1) < high
    diff = result["differences"]["hybrid"]["top1"]
    assert diff["interval"][0] > 0 and diff["difference"] > 0.2


def test_equal_methods_have_a_difference_interval_around_zero():
    rng = np.random.default_rng(1)
    diseases = [f"OMIM:{i // 4}" for i in range(200)]
    ranks = [float(rng.integers(1, 30)) for _ in diseases]
    result = bootstrap_metrics(
        {"hybrid": ranks, "resnik_one_sided": ranks}, diseases, reference="resnik_one_sided"
    )
    assert result["differences"]["hybrid"]["top10"]["interval"] == [0.0, 0.0]


def test_cases_of_one_disease_are_resampled_together():
    """With a few big diseases, the cluster interval is wider than a case bootstrap's."""
    diseases = [f"OMIM:{i // 100}" for i in range(400)]  # 4 diseases of 100 cases
    ranks = [1.0 if d in ("OMIM:0", "OMIM:1") else 50.0 for d in diseases]
    low, high = bootstrap_metrics({"hybrid": ranks}, diseases, reference="hybrid")["intervals"][
        "hybrid"
    ]["top1"]
    assert high - low > 0.3  # a case bootstrap would give about ±0.05


def test_worst_diseases_come_first_with_a_failure_mode():
    details = _details(["OMIM:1"] * 3 + ["OMIM:2"] * 2)
    details[3]["annotated_terms"] = details[4]["annotated_terms"] = 0
    ranks = {"hybrid": [1.0, 2.0, 1.0, 500.0, 800.0], "resnik_one_sided": [1, 5, 9, 900, 900]}
    table = per_disease(ranks, details, reference="resnik_one_sided", worst=1)
    assert [r["disease_id"] for r in table["worst"]] == ["OMIM:2"]
    assert "no HPO annotation" in table["worst"][0]["failure_mode"]
    assert table["diseases"][1]["hybrid_top1"] == round(2 / 3, 3)


def test_failure_modes_name_the_telling_cause():
    assert "few patient terms" in failure_mode(_details(["a"], n_terms=1))
    assert "OMIM/ORPHA" in failure_mode(_details(["a"], non_omim_above=5, hybrid_rank=12.0))
    # ORPHA entries above a truth ranked 300th are not why it fails
    assert "OMIM/ORPHA" not in failure_mode(_details(["a"], non_omim_above=5, hybrid_rank=300.0))
    assert "noise terms" in failure_mode(_details(["a"], unexplained_share=0.8))
    assert "sparse annotation" in failure_mode(_details(["a"], annotated_terms=3))
