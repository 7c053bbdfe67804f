"""The review queue puts uncertain predictions and those near the rare gate first, skips
what already has feedback, refusals and old rows, and keeps one disease from filling it;
the pipeline reads and writes real DuckDB warehouse tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from disease_pipeline.pipelines.active_learning import create_pipeline
from disease_pipeline.pipelines.active_learning.nodes import (
    build_review_queue,
    disagreement,
    uncertainty,
)
from disease_pipeline.serving.prediction_log import PREDICTION_LOG_COLUMNS

ROOT = Path(__file__).resolve().parents[3]
PARAMS = yaml.safe_load((ROOT / "conf/base/parameters_active_learning.yml").read_text())[
    "active_learning"
]
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def log_row(i: int, probabilities: list[float], code: str, p_rare: float, **extra) -> dict:
    row = dict.fromkeys(PREDICTION_LOG_COLUMNS)
    return row | {
        "request_id": f"r{i}",
        "logged_at": NOW - timedelta(hours=i),
        "status": "predicted",
        "model_version": "3",
        "top_codes": json.dumps([code] + [f"X{j}" for j in range(len(probabilities) - 1)]),
        "top_probabilities": json.dumps(probabilities),
        "top1_code": code,
        "p_rare": p_rare,
        **extra,
    }


CONFIDENT = [0.96, 0.02, 0.02]
UNSURE = [0.34, 0.33, 0.33]
LOG = pd.DataFrame(
    [log_row(i, CONFIDENT, "J06.9", 0.01) for i in range(20)]
    + [log_row(100 + i, UNSURE, "J18.9", 0.05) for i in range(20)]  # one disease, unsure
    + [log_row(200 + i, [0.6, 0.4], "I10", 0.5) for i in range(5)]  # at the rare threshold
    + [log_row(300, UNSURE, "K35.8", 0.5, status="refused", request_id=None)]
    + [log_row(400, UNSURE, "K35.8", 0.5, logged_at=NOW - timedelta(days=60))]  # too old
)


def test_uncertainty_parts():
    assert uncertainty([0.5, 0.5]) == pytest.approx((1.0, 1.0))
    entropy, margin = uncertainty([1.0])
    assert (entropy, margin) == (0.0, 0.0)
    assert uncertainty([0.9, 0.1])[1] == pytest.approx(0.2)


def test_queue_is_informative_diverse_and_skips_labelled_refused_and_old():
    feedback = pd.DataFrame({"request_id": ["r200"]})
    params = PARAMS | {"size": 10, "max_share_per_code": 0.4}
    queue, summary = build_review_queue(LOG, feedback, params)
    assert len(queue) == 10
    assert queue["rank"].tolist() == list(range(1, 11))
    counts = queue["top1_code"].value_counts().to_dict()
    assert counts == {"J18.9": 4, "I10": 4, "J06.9": 2}  # capped at 40 % per code
    assert "r200" not in set(queue["request_id"])  # already confirmed
    assert not set(queue["request_id"]) & {"r300", "r400", None}
    best = queue.iloc[0]
    assert best["top1_code"] in {"J18.9", "I10"}
    assert summary["already_labelled"] == 1
    assert summary["mean_score_queue"] > summary["mean_score_candidates"]


def test_no_log_is_an_empty_queue_with_the_reason():
    queue, summary = build_review_queue(None, None, PARAMS)
    assert queue.empty and summary == {"queued": 0, "reason": "no prediction log yet"}


def test_pipeline_on_the_warehouse(tmp_path):
    warehouse = str(tmp_path / "warehouse.duckdb")
    table = "disease_pipeline.datasets.warehouse.WarehouseTableDataset"
    catalog = DataCatalog.from_config(
        {
            "prm_prediction_log": {"type": table, "table": "prediction_log", "filepath": warehouse},
            "prm_feedback": {
                "type": "disease_pipeline.datasets.OptionalDataset",
                "dataset": {"type": table, "table": "feedback", "filepath": warehouse},
            },
            "prm_review_queue": {"type": table, "table": "review_queue", "filepath": warehouse},
            "prm_prediction_log_shadow": {
                "type": "disease_pipeline.datasets.OptionalDataset",
                "dataset": {"type": table, "table": "prediction_log_shadow", "filepath": warehouse},
            },
        }
    )
    catalog.save("prm_prediction_log", LOG)
    catalog["params:active_learning"] = PARAMS | {"size": 5}
    SequentialRunner().run(create_pipeline(), catalog)
    queue = catalog.load("prm_review_queue")
    assert len(queue) == 5  # three codes within the 20 % cap, then the best remaining two
    assert queue["top1_code"].iloc[:3].nunique() == 3
    assert catalog.load("reporting_review_queue_summary")["candidates"] == 45


def test_champion_challenger_disagreement_moves_a_confident_answer_up():
    confident = LOG[LOG["top1_code"] == "J06.9"].iloc[3:8]  # r3 … r7
    shadow = confident.assign(
        variant="challenger",
        top_codes=json.dumps(["J18.9", "J06.9", "X1"]),
        top_probabilities=json.dumps([0.7, 0.2, 0.1]),
        top1_code="J18.9",
    )
    parts = disagreement(confident, shadow.iloc[:3])
    # champion J06.9 0.96; challenger J18.9 0.7, J06.9 0.2, X1 0.1: TV 0.78, top-1 differs
    assert parts.iloc[:3].tolist() == pytest.approx([0.89] * 3)
    assert parts.iloc[3:].isna().all()
    same = disagreement(confident, confident.assign(variant="challenger"))
    assert same.tolist() == pytest.approx([0.0] * 5)
    # the cap leaves two places to the confident J06.9 answers: without a challenger they
    # go to the first by request id, with one to those the challenger disagrees with
    without, _ = build_review_queue(LOG, None, PARAMS | {"size": 10})
    assert set(without.loc[without["top1_code"] == "J06.9", "request_id"]) == {"r0", "r1"}
    queue, summary = build_review_queue(LOG, None, PARAMS | {"size": 10}, shadow.iloc[:3])
    assert set(queue.loc[queue["top1_code"] == "J06.9", "request_id"]) <= {"r3", "r4", "r5"}
    assert summary["with_challenger_output"] == 3
