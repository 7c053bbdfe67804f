"""Live performance per subgroup from the prediction log: sex, age band, modality and, when
the clients name it, the care site (``PatientRecord.site``)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from disease_pipeline.pipelines.monitor.performance import labelled_predictions, performance
from disease_pipeline.pipelines.monitor.report import alerts
from tests.pipelines.monitor.conftest import monitor_params


def window_log(sites: list[str | None], hits: list[bool]) -> pd.DataFrame:
    """Logged predictions: each ranks A09 first; the truth is A09 for a hit, else J45."""
    rows = []
    for i, (site, _) in enumerate(zip(sites, hits, strict=True)):
        rows.append(
            {
                "request_id": f"r{i}",
                "status": "predicted",
                "top_codes": json.dumps(["A09", "J06.9", "K21.9", "I10"]),
                "top_probabilities": json.dumps([0.6, 0.2, 0.1, 0.05]),
                "sex": "female" if i % 2 else "male",
                "age": 30.0 + i % 40,
                "modality": "symptoms_only",
                "site": site,
            }
        )
    return pd.DataFrame(rows)


def feedback(hits: list[bool]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(len(hits))],
            "confirmed_code": ["A09" if hit else "J45" for hit in hits],
            "received_at": pd.Timestamp("2026-06-01", tz="UTC"),
        }
    )


def test_sites_named_by_the_clients_are_subgroups_with_their_gap():
    sites = ["north"] * 60 + ["south"] * 60
    hits = [i % 10 != 0 for i in range(60)] + [i % 2 == 0 for i in range(60)]  # 0.9 vs 0.5
    labelled = labelled_predictions(window_log(sites, hits), feedback(hits))
    summary, table = performance(labelled, labelled, monitor_params(min_subgroup_n=30))
    by_site = table[table["attribute"] == "site"].set_index("group")
    assert by_site.loc["site=north", "top1"] == pytest.approx(0.9)
    assert by_site.loc["site=south", "top1"] == pytest.approx(0.5)
    assert summary["subgroup_gaps"]["site"] == pytest.approx(0.4)
    assert summary["max_subgroup_gap"] >= 0.4


def test_no_site_attribute_when_no_client_names_one_and_unknown_beside_named_ones():
    hits = [True, False] * 30
    labelled = labelled_predictions(window_log([None] * 60, hits), feedback(hits))
    _, table = performance(labelled, labelled, monitor_params(min_subgroup_n=10))
    assert "site" not in set(table["attribute"])
    older_log = window_log([None] * 60, hits).drop(columns="site")  # before the column
    labelled = labelled_predictions(older_log, feedback(hits))
    assert labelled["site"].isna().all()
    mixed = labelled_predictions(window_log(["north"] * 30 + [None] * 30, hits), feedback(hits))
    _, table = performance(mixed, mixed, monitor_params(min_subgroup_n=10))
    assert set(table.loc[table["attribute"] == "site", "group"]) == {"site=north", "site=unknown"}


def test_live_performance_is_the_champions_alone_in_an_ab_test():
    """The challenger arm's answers (variant ``challenger``) never enter the champion's
    live figures and alerts; rows logged before A/B (no variant) are the champion's."""
    hits = [True] * 30 + [False] * 30
    log = window_log([None] * 60, hits)
    log["variant"] = ["champion"] * 20 + [None] * 10 + ["challenger"] * 30
    labelled = labelled_predictions(log, feedback(hits))
    assert list(labelled["request_id"]) == [f"r{i}" for i in range(30)]
    summary, _ = performance(labelled, labelled, monitor_params(min_subgroup_n=10))
    assert summary["top1"] == pytest.approx(1.0)


def test_reference_leaves_out_the_encounters_training_masked():
    from disease_pipeline.pipelines.monitor.nodes import reference_modality

    train = pd.DataFrame(
        {
            "encounter_id": ["e1", "e2", "e3", "e4"],
            # e2 was examined in full, but training masked its vitals and labs
            "measured_vitals": [1.0, 0.0, 0.0, 1.0],
            "measured_labs": [1.0, 0.0, 0.0, 0.0],
        }
    )
    vitals = pd.DataFrame({"encounter_id": ["e1", "e2", "e4"]})
    labs = pd.DataFrame({"encounter_id": ["e1", "e2"]})
    reference = reference_modality(train, vitals, labs)
    assert reference["encounter_id"].tolist() == ["e1", "e3", "e4"]
    assert reference["modality"].tolist() == ["all", "symptoms_only", "with_vitals"]


def test_an_encounter_without_a_start_time_is_replayed_without_a_date():
    from disease_pipeline.pipelines.monitor.replay import tables_to_records

    encounters = pd.DataFrame(
        {
            "encounter_id": ["e1", "e2"],
            "patient_id": ["p1", "p2"],
            "start": [pd.Timestamp("2025-03-01 10:00"), pd.NaT],
            "age_years": [40.0, 4.0],
            "sex": ["female", "male"],
        }
    )
    symptoms = pd.DataFrame(
        {
            "encounter_id": ["e1", "e2"],
            "hpo_id": ["HP:0001945", "HP:0012735"],
            "present": [True, True],
            "severity": [None, None],
            "onset_days": [None, 2.0],
        }
    )
    records, labels = tables_to_records({"encounters": encounters, "symptoms": symptoms})
    assert records[0].encounter_date is not None and records[1].encounter_date is None
    assert json.loads(records[1].model_dump_json())["age"] == 4.0  # serialisable for HTTP
    assert labels == ["", ""]


def test_a_site_is_a_plain_code_and_a_bad_one_is_refused_by_name():
    from pydantic import ValidationError

    from disease_pipeline.records import PatientRecord

    assert PatientRecord(site="north-ED.2").site == "north-ED.2"
    for bad in ("", "Dr. Jane Smith's clinic", "x" * 65, "-lead"):
        with pytest.raises(ValidationError) as caught:
            PatientRecord(site=bad)
        assert caught.value.errors()[0]["loc"] == ("site",)


def test_performance_drops_are_judged_only_on_enough_labels():
    def summary(n_labelled: int) -> dict:
        return {
            "drift": {"top_psi": {}, "drifted_features": []},
            "performance": {"n_labelled": n_labelled, "auroc_drop": 0.12, "top3_drop": 0.0},
            "health": {"latency_ms": {"p95": None}},
        }

    params = monitor_params()
    assert params["performance_min_labelled"] == 200
    assert alerts(summary(199), params) == []
    assert alerts(summary(200), params) == ["performance: auroc_drop 0.120 >= 0.05"]
