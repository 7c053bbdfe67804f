"""The monitor's champion/challenger section: shadow pairs scored on the confirmed
diagnoses (paired), A/B arms compared (unpaired), nothing when there is no challenger."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from disease_pipeline.pipelines.monitor.challenger import challenger_comparison
from disease_pipeline.serving.prediction_log import PREDICTION_LOG_COLUMNS

PARAMS = {"n_boot": 300, "seed": 0}
RNG = np.random.default_rng(3)


def row(request_id: str, top: list[str], variant: str = "champion", **extra) -> dict:
    return dict.fromkeys(PREDICTION_LOG_COLUMNS) | {
        "request_id": request_id,
        "status": "predicted",
        "variant": variant,
        "model_version": "9" if variant == "challenger" else "7",
        "top_codes": json.dumps(top),
        "top_probabilities": json.dumps([0.5, 0.3, 0.2][: len(top)]),
        "top1_code": top[0],
        "p_rare": 0.1,
        "severity": "low",
        **extra,
    }


def feedback(labels: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request_id": list(labels),
            "confirmed_code": list(labels.values()),
            "received_at": pd.Timestamp("2026-12-01", tz="UTC"),
        }
    )


def test_shadow_pairs_are_compared_on_the_same_patients():
    truth = {f"r{i}": "A" for i in range(300)}
    # the champion lists the truth third for half of them; the challenger always first
    champion = [row(r, ["A", "B", "C"] if i % 2 else ["B", "C", "A"]) for i, r in enumerate(truth)]
    challenger = [row(r, ["A", "B", "C"], "challenger") for r in truth]
    refused = row("x", ["A"]) | {"status": "refused", "request_id": None}
    window = pd.DataFrame([*champion, refused, row("unshadowed", ["A"])])
    figures = challenger_comparison(
        window, pd.DataFrame(challenger), feedback(truth | {"unshadowed": "A"}), PARAMS
    )
    assert figures["mode"] == "shadow"
    assert figures["n_pairs"] == 300
    assert figures["n_labelled"] == 300  # the labelled answer without a shadow is not a pair
    assert figures["top1_agreement"] == pytest.approx(0.5)
    assert figures["top1_champion"] == pytest.approx(0.5)
    assert figures["top1_challenger"] == 1.0
    assert figures["top1_difference"] == pytest.approx(0.5)
    assert 0.4 < figures["top1_difference.ci_low"] < 0.5 < figures["top1_difference.ci_high"]
    assert figures["top3_difference"] == 0.0  # both list it in the top 3
    assert figures["mcnemar_top1"]["only_challenger"] == 150
    assert figures["mcnemar_top1"]["pvalue"] < 1e-6
    assert figures["challenger_versions"] == ["9"]


def test_shadow_rows_outside_the_window_are_not_pairs():
    window = pd.DataFrame([row("in", ["A"])])
    shadow = pd.DataFrame([row("in", ["A"], "challenger"), row("old", ["B"], "challenger")])
    figures = challenger_comparison(window, shadow, None, PARAMS)
    assert figures["n_pairs"] == 1
    assert figures["n_labelled"] == 0
    assert "top1_difference" not in figures


def test_ab_arms_are_compared_unpaired():
    rows, truth = [], {}
    for i in range(400):
        arm = "challenger" if i % 4 == 0 else "champion"
        hit = RNG.random() < (0.8 if arm == "challenger" else 0.5)
        rows.append(row(f"r{i}", ["A", "B"] if hit else ["B", "C"], arm))
        truth[f"r{i}"] = "A"
    figures = challenger_comparison(pd.DataFrame(rows), None, feedback(truth), PARAMS)
    assert figures["mode"] == "ab"
    assert figures["n_challenger"] == 100
    assert figures["n_champion"] == 300
    assert figures["n_labelled_challenger"] == 100
    difference = figures["top1_challenger"] - figures["top1_champion"]
    assert figures["top1_difference"] == pytest.approx(difference, abs=1e-4)
    assert figures["top1_difference.ci_low"] > 0 < difference


def test_no_challenger_traffic_says_so():
    window = pd.DataFrame([row("r1", ["A"])])
    assert challenger_comparison(window, None, None, PARAMS) == {"mode": None}
    old_log = window.drop(columns=["variant"])  # a log written before the column existed
    assert challenger_comparison(old_log, pd.DataFrame(), None, PARAMS) == {"mode": None}
