"""Screening rows against the service's answers, the time window, refused encounters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from disease_pipeline.core.levels import SEVERITY_LEVELS
from disease_pipeline.pipelines.evaluation.parity import records_from_tables
from disease_pipeline.pipelines.screen.nodes import resolve_window, window_tables
from disease_pipeline.predictor.screening import score_tables
from disease_pipeline.records import PatientRecord
from disease_pipeline.serving.engine import PredictionEngine
from disease_pipeline.serving.inputs import RecordNormaliser

from .conftest import screen_params


@pytest.fixture(scope="module")
def window(screen_prm):
    tables, _ = window_tables(**screen_prm, params=screen_params())
    return tables


@pytest.fixture(scope="module")
def scored(screen_predictor, window):
    params = screen_params()
    return score_tables(
        screen_predictor,
        window,
        top_k=params["top_k"],
        top_n=params["top_n"],
        batch_size=params["batch_size"],
        progress=False,
    )


def test_every_encounter_of_the_window_gets_one_row(scored, window, screen_prm):
    assert len(scored) == len(window["encounters"]) == len(screen_prm["encounters"])
    assert scored["encounter_id"].is_unique and scored["error"].isna().all()
    severity = scored[[f"p_severity__{level}" for level in SEVERITY_LEVELS]].sum(axis=1)
    assert np.allclose(severity, 1.0)
    assert (scored["top1_probability"] >= scored["top2_probability"]).all()


def test_screening_rows_equal_the_service_answers(screen_predictor, window, scored):
    """40 sampled encounters sent as the service receives them (PatientRecord, the
    service's RecordNormaliser and PredictionEngine) answer as their screening rows."""
    params = screen_params()
    sample = scored.sample(40, random_state=3).reset_index(drop=True)
    records = [
        PatientRecord(**r) for r in records_from_tables(window, list(sample["encounter_id"]))
    ]
    engine = PredictionEngine(screen_predictor, {"name": "t", "version": "1"}, RecordNormaliser())
    responses, _ = engine.predict(records, top_k=params["top_k"], where="patients")
    for row, answer in zip(sample.to_dict("records"), responses, strict=True):
        for i, entry in enumerate(answer["differential"][: params["top_n"]], 1):
            assert row[f"top{i}_code"] == entry["code"], row["encounter_id"]
            assert row[f"top{i}_probability"] == pytest.approx(entry["probability"], abs=1e-9)
        assert row["p_rare"] == pytest.approx(answer["p_rare"], abs=1e-9)
        assert row["severity_level"] == answer["severity"]["level"]
        for level in SEVERITY_LEVELS:
            expected = answer["severity"]["probabilities"][level]
            assert row[f"p_severity__{level}"] == pytest.approx(expected, abs=1e-9)
        flagged = [e["code"] for e in answer["differential"] if e.get("must_not_miss")]
        assert row["must_not_miss"] == "|".join(flagged)


def test_batch_size_does_not_change_the_rows(screen_predictor, window, scored):
    again = score_tables(screen_predictor, window, top_k=5, top_n=3, batch_size=500, progress=False)
    numeric = [c for c in scored.columns if scored[c].dtype.kind == "f"]
    assert (again["top1_code"] == scored["top1_code"]).all()
    assert np.allclose(again[numeric], scored[numeric], atol=1e-12, equal_nan=True)


class RefusesOne:
    """The real predictor, except that a batch holding ``refused`` raises the
    ValueError the predictor raises on input it cannot score."""

    def __init__(self, predictor, refused: str) -> None:
        self.predictor, self.refused = predictor, refused

    def predict_tables(self, tables, **kwargs):
        if self.refused in set(tables["encounters"]["encounter_id"]):
            raise ValueError("encounters.age_years: not a plausible age")
        return self.predictor.predict_tables(tables, **kwargs)


def test_a_refused_encounter_does_not_fail_its_batch(screen_predictor, window, scored):
    bad = scored["encounter_id"].iloc[5]
    rows = score_tables(
        RefusesOne(screen_predictor, bad), window, top_k=5, top_n=3, batch_size=64,
        progress=False,
    )  # fmt: skip
    refused = rows[rows["error"].notna()]
    assert list(refused["encounter_id"]) == [bad]
    assert "age_years" in refused["error"].iloc[0] and bad in refused["error"].iloc[0]
    assert refused["top1_code"].isna().all()
    ok = rows["error"].isna()
    assert np.allclose(rows.loc[ok, "p_rare"], scored.loc[ok, "p_rare"], atol=1e-12)


def test_window_keeps_start_inclusive_end_exclusive(screen_prm):
    starts = pd.to_datetime(screen_prm["encounters"]["start"], utc=True).sort_values()
    cut_start, cut_end = starts.iloc[10], starts.iloc[50]
    params = {"window": {"start": cut_start.isoformat(), "end": cut_end.isoformat()}}
    tables, window = window_tables(**screen_prm, params=params)
    inside = (starts >= cut_start) & (starts < cut_end)
    assert len(tables["encounters"]) == int(inside.sum())
    assert set(tables["symptoms"]["encounter_id"]) <= set(tables["encounters"]["encounter_id"])
    assert window == {"start": cut_start.isoformat(), "end": cut_end.isoformat()}


def test_window_of_days_before_end_and_bad_windows_name_the_field():
    window = resolve_window({"end": "2024-03-02", "days": 1})
    assert window == {"start": "2024-03-01T00:00:00+00:00", "end": "2024-03-02T00:00:00+00:00"}
    with pytest.raises(ValueError, match=r"screen\.window\.start: 'yesterday'"):
        resolve_window({"start": "yesterday", "end": "2024-03-02"})
    with pytest.raises(ValueError, match=r"screen\.window: start .* is not before end"):
        resolve_window({"start": "2024-03-02", "end": "2024-03-01"})
    with pytest.raises(ValueError, match=r"screen\.window\.days: must be > 0"):
        resolve_window({"end": "2024-03-02", "days": 0})


def test_top_n_above_top_k_is_refused(screen_predictor, window):
    with pytest.raises(ValueError, match=r"screen\.top_n \(6\) must not exceed screen\.top_k"):
        score_tables(screen_predictor, window, top_k=5, top_n=6, batch_size=10)
