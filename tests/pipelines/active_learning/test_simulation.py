"""The active-learning simulation's machinery: the queue's labelling order is the real
review queue's, random draws are uniform and nested, log rows are what the queue scores,
and intervals resample repetitions and test patients, the same ones for both arms."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from disease_pipeline.pipelines.active_learning import simulation as al
from disease_pipeline.pipelines.active_learning.nodes import build_review_queue, score_predictions
from tests.pipelines.active_learning.test_review_queue import LOG, PARAMS

QUEUE = PARAMS | {"size": 10, "window_days": None}


def test_queue_order_is_queue_after_queue_of_the_real_review_queue():
    order = al.queue_order(LOG, QUEUE, 25)
    assert len(order) == len(set(order)) == 25
    first, _ = build_review_queue(LOG, None, QUEUE)
    assert order[:10] == first["request_id"].tolist()  # the top of the real queue score
    second, _ = build_review_queue(LOG, pd.DataFrame({"request_id": order[:10]}), QUEUE)
    assert order[10:20] == second["request_id"].tolist()
    third, _ = build_review_queue(LOG, pd.DataFrame({"request_id": order[:20]}), QUEUE)
    assert order[20:] == third["request_id"].tolist()[:5]
    assert "r300" not in order  # refused: never queued
    # a smaller budget is a prefix; a budget beyond the answered log stops at it
    assert al.queue_order(LOG, QUEUE, 7) == order[:7]
    assert len(al.queue_order(LOG, QUEUE, 500)) == int((LOG["status"] == "predicted").sum())


def test_random_order_is_seeded_nested_and_without_repeats():
    ids = [f"e{i}" for i in range(100)]
    draw = al.random_order(ids, 40, seed=3)
    assert len(set(draw)) == 40 and set(draw) <= set(ids)
    assert al.random_order(ids, 10, seed=3) == draw[:10]
    assert al.random_order(ids, 40, seed=4) != draw
    assert sorted(al.random_order(ids, 500, seed=3)) == sorted(ids)


def test_log_rows_hold_what_the_queue_scores():
    outputs = [
        {
            "differential": [
                {"code": "J18.9", "category": "COMMON", "probability": 0.4},
                {"code": "J20.9", "category": "COMMON", "probability": 0.3999999},
                {"code": "RARE", "category": "RARE", "probability": 0.2},
            ],
            "p_rare": 0.2,
        },
        {"differential": [{"code": "I10", "category": "COMMON", "probability": 0.99}], "p_rare": 0},
    ]
    at = datetime(2024, 3, 1, tzinfo=UTC)
    log = al.log_rows(outputs, ["a", "b"], at)
    assert log["top1_code"].tolist() == ["J18.9", "I10"]
    assert json.loads(log["top_probabilities"][0]) == [0.4, 0.4, 0.2]  # the log's rounding
    assert json.loads(log["top_codes"][0]) == ["J18.9", "J20.9", "RARE"]
    assert (log["status"] == "predicted").all() and (log["logged_at"] == at).all()
    scored = score_predictions(log, QUEUE)
    assert scored["margin"][0] == pytest.approx(1.0) and scored["margin"][1] == pytest.approx(0.0)
    assert al.queue_order(log, QUEUE | {"size": 1}, 1) == ["a"]


def resampled(values: np.ndarray, design) -> np.ndarray:
    """The resampled means written out: rows and columns repeated as drawn."""
    rep_w, group_w, group_of = design
    out = []
    for b in range(rep_w.shape[0]):
        total = count = 0.0
        for r, times_r in enumerate(rep_w[b]):
            for i, g in enumerate(group_of):
                total += times_r * group_w[b, g] * values[r, i]
                count += times_r * group_w[b, g]
        out.append(total / count)
    return np.asarray(out)


def test_intervals_resample_repetitions_and_test_patients():
    rng = np.random.default_rng(0)
    groups = ["p1", "p1", "p2", "p3", "p3", "p3", "p4"]  # encounters of four patients
    values = rng.integers(0, 2, size=(3, len(groups))).astype(float)
    design = al.resample_weights(3, groups, 50, seed=1)
    rep_w, group_w, group_of = design
    assert (rep_w.sum(axis=1) == 3).all() and (group_w.sum(axis=1) == 4).all()
    assert group_of.tolist() == [0, 0, 1, 2, 2, 2, 3]  # a patient's encounters go together
    np.testing.assert_allclose(al._resampled_means(values, design), resampled(values, design))
    figure = al.mean_figure(values, design)
    assert figure["mean"] == pytest.approx(values.mean())
    low, high = np.percentile(resampled(values, design), [2.5, 97.5])
    assert (figure["ci_low"], figure["ci_high"]) == pytest.approx((low, high))


def test_the_difference_is_paired():
    rng = np.random.default_rng(1)
    groups = [f"p{i // 2}" for i in range(60)]
    a = rng.integers(0, 2, size=(4, 60)).astype(float)
    design = al.resample_weights(4, groups, 200, seed=2)
    same = al.paired_difference(a, a.copy(), design)
    assert same == {"mean": 0.0, "ci_low": 0.0, "ci_high": 0.0}  # unpaired draws would spread
    b = a.copy()
    b[:, :10] = 1 - b[:, :10]  # the arms differ on ten encounters only
    difference = al.paired_difference(a, b, design)
    assert difference["mean"] == pytest.approx((a - b).mean())
    assert difference == al.mean_figure(a - b, design)
    with pytest.raises(ValueError, match="same shape"):
        al.paired_difference(a, b[:, :5], design)


def test_summary_reads_every_figure_from_the_hits():
    rng = np.random.default_rng(2)
    groups = [f"p{i}" for i in range(30)]
    arms = {
        (strategy, budget): {k: rng.integers(0, 2, size=(3, 30)) for k in (1, 3)}
        for strategy, budget in [("initial", 0), ("queue", 5), ("random", 5)]
    }
    summary = al.summarise(arms, groups, compare_budget=5, n_boot=100, seed=0)
    assert [(p["strategy"], p["budget"]) for p in summary["curve"]] == [
        ("initial", 0),
        ("queue", 5),
        ("random", 5),
    ]
    design = al.resample_weights(3, groups, 100, seed=0)
    for point in summary["curve"]:
        for k in (1, 3):
            values = arms[(point["strategy"], point["budget"])][k]
            assert point[f"top{k}"] == al.mean_figure(values, design)
    top3 = summary["difference"]["queue_minus_random"]["top3"]
    assert top3 == al.paired_difference(arms[("queue", 5)][3], arms[("random", 5)][3], design)
    report = {
        **summary,
        "repetitions": 3,
        "initial_size": 10,
        "target_met": top3["ci_low"] > 0,
        "setting": {"test_common": {"encounters": 30, "patients": 30}, "pool": {"encounters": 9}},
    }
    table = al.markdown(report)
    rows = [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| ")]
    assert rows == ["| labels", "| 0", "| 5"]
    assert f"{top3['mean']:+.4f}" in table
