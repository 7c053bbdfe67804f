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


def test_oracle_order_draws_only_the_cases_the_model_missed():
    # LOG's differentials are [code, X0, X1, ...]; diagnoses: right for even rows, else X9
    labels = [code if i % 2 == 0 else "X9" for i, code in enumerate(LOG["top1_code"])]
    labels[1] = "X0"  # second in the differential: a top-3 hit, a top-1 miss
    at3 = al.oracle_order(LOG, labels, 3, 500, seed=0)
    at1 = al.oracle_order(LOG, labels, 1, 500, seed=0)
    ids = LOG["request_id"].tolist()
    answered = (LOG["status"] == "predicted").tolist()
    odd = {ids[i] for i in range(len(ids)) if i % 2 and answered[i]}  # refused: never drawn
    assert set(at3) == odd - {ids[1]} and len(at3) == len(set(at3))
    assert set(at1) == odd
    assert al.oracle_order(LOG, labels, 3, 5, seed=0) == at3[:5]  # nested, seeded
    assert al.oracle_order(LOG, labels, 3, 5, seed=1) != at3[:5]


def test_iterative_order_asks_a_retrained_model_for_every_next_queue():
    calls: list[list[str]] = []
    reversed_log = LOG.copy()  # what a retrained model answers: the certainties swapped
    reversed_log["top_probabilities"] = LOG["top_probabilities"].map(
        lambda text: json.dumps(
            [0.34, 0.33, 0.33] if json.loads(text) == [0.96, 0.02, 0.02] else [0.96, 0.02, 0.02]
        )
    )

    def rescore(chosen: list[str]) -> pd.DataFrame:
        calls.append(chosen)
        return reversed_log

    params = QUEUE | {"max_share_per_code": 1.0}
    order = al.iterative_queue_order(LOG, rescore, params, 12, step=5)
    assert len(order) == len(set(order)) == 12
    assert [len(c) for c in calls] == [5, 10]  # retrained after each step, not after the last
    assert calls[0] == order[:5] and calls[1] == order[:10]
    first, _ = build_review_queue(LOG, None, params | {"size": 5})
    assert order[:5] == first["request_id"].tolist()  # the initial model's queue
    # the next queues are the retrained model's: its unsure cases, the first model's sure ones
    first_model_sure = {f"r{i}" for i in range(20)}  # J06.9 at 0.96
    assert not set(order[:5]) & first_model_sure and set(order[5:]) <= first_model_sure
    assert al.iterative_queue_order(LOG, rescore, params, 12, step=12) == al.queue_order(
        LOG, params | {"size": 12}, 12
    )
    with pytest.raises(ValueError, match="step"):
        al.iterative_queue_order(LOG, rescore, params, 12, step=0)


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
    assert summary["difference"]["minus_random"] == {
        "queue": summary["difference"]["queue_minus_random"]
    }


def test_summary_compares_every_diagnostic_arm_with_random():
    rng = np.random.default_rng(3)
    groups = [f"p{i}" for i in range(20)]
    names = [("initial", 0), ("queue", 5), ("random", 5), ("oracle", 5), ("iterative", 5)]
    arms = {name: {k: rng.integers(0, 2, size=(2, 20)) for k in (1, 3)} for name in names}
    summary = al.summarise(arms, groups, compare_budget=5, n_boot=100, seed=0)
    design = al.resample_weights(2, groups, 100, seed=0)
    versus = summary["difference"]["minus_random"]
    assert sorted(versus) == ["iterative", "oracle", "queue"]
    for arm in versus:
        for k in (1, 3):
            expected = al.paired_difference(arms[(arm, 5)][k], arms[("random", 5)][k], design)
            assert versus[arm][f"top{k}"] == expected
    assert summary["difference"]["queue_minus_random"] == versus["queue"]
    report = {
        **summary,
        "repetitions": 2,
        "initial_size": 10,
        "target_met": False,
        "setting": {"test_common": {"encounters": 20, "patients": 20}, "pool": {"encounters": 9}},
    }
    table = al.markdown(report)
    header = table.splitlines()[0]
    assert header.count("top-1") == header.count("top-3") == 4
    assert header.index("queue top-1") < header.index("random top-1") < header.index("iterative")
    assert "Oracle − random at 5 labels, top3" in table
    assert f"{versus['oracle']['top3']['mean']:+.4f}" in table
