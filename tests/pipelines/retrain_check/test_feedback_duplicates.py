"""Feedback that repeats an exported encounter: the pure rule (duplicate dropped,
conflict per ``on_conflict``, distinct kept, the rounding of the content key) and the
``retrain_check`` pipeline on a synthetic warehouse, after which a confirmed repeat of
an exported encounter is in the training data once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from disease_pipeline.pipelines.features.nodes import assemble_feature_tables, build_labels
from disease_pipeline.pipelines.features.splits import split_encounters
from disease_pipeline.pipelines.monitor.replay import tables_to_records
from disease_pipeline.pipelines.retrain.content import content_columns, content_keys
from disease_pipeline.pipelines.retrain_check import create_pipeline
from disease_pipeline.pipelines.retrain_check.feedback_duplicates import (
    apply_duplicate_policy,
    classify_feedback,
)
from disease_pipeline.predictor.features import FeatureBuilder
from tests.conftest import env_parameters
from tests.pipelines.features.synthetic import warehouse_tables

ROOT = Path(__file__).resolve().parents[3]
PARAMS = yaml.safe_load((ROOT / "conf/base/parameters_retrain.yml").read_text())["retrain"]
CONTENT = PARAMS["comparison"]["content_key"]
PRM = ("patients", "encounters", "symptoms", "vitals", "labs", "diagnoses")


def features(ids: list[str], codes: list[str], labs: list[float], **extra) -> pd.DataFrame:
    """Feature rows: one lab, one HPO flag, age, sex and a calendar column not compared."""
    n = len(ids)
    return pd.DataFrame(
        {
            "encounter_id": ids,
            "label_disease": codes,
            "labs_2160-0_mean": labs,
            "hpo_HP:0001945": [1.0] * n,
            "age_years": [61.0] * n,
            "sex_male": [1.0] * n,
            "month_sin": extra.get("month_sin", [0.5] * n),
        }
    )


EXPORTS = features(["e1", "e2", "e3"], ["J18.9", "I10", "J06.9"], [1.10, 2.20, 3.30])
FEEDBACK = features(
    ["feedback-r1", "feedback-r2", "feedback-r3", "feedback-r4"],
    ["J18.9", "J18.9", "J06.9", "J06.9"],
    # r1 = e1 (another date: month_sin differs), r2 = e2's content with another code,
    # r3 = e3 within the rounding (3.3049 -> 3.30), r4 = e3 off by 0.01 after rounding
    [1.10, 2.20, 3.3049, 3.31],
    month_sin=[-0.5, 0.5, 0.5, 0.5],
)


def feedback_tables(ids: list[str], codes: list[str]) -> dict[str, pd.DataFrame]:
    """Feedback tables as ``feedback_encounters`` builds them (one row each)."""
    return {
        "encounters": pd.DataFrame({"encounter_id": ids, "patient_id": ["s"] * len(ids)}),
        "symptoms": pd.DataFrame({"encounter_id": ids, "hpo_id": ["HP:0001945"] * len(ids)}),
        "diagnoses": pd.DataFrame({"encounter_id": ids, "code": codes, "role": "primary"}),
        "provenance": pd.DataFrame(
            {"encounter_id": ids, "request_id": [i.removeprefix("feedback-") for i in ids]}
        ),
    }


def test_duplicates_conflicts_and_distinct_encounters_on_the_rounded_key():
    decisions = classify_feedback(FEEDBACK, EXPORTS, CONTENT).set_index("encounter_id")
    assert decisions["status"].to_dict() == {
        "feedback-r1": "duplicate",  # same content, same diagnosis; dates are not compared
        "feedback-r2": "conflict",  # same content, another diagnosis
        "feedback-r3": "duplicate",  # equal once rounded to 2 decimals
        "feedback-r4": "kept",  # 3.31 vs 3.30 after rounding: another encounter
    }
    assert decisions.loc["feedback-r2", "export_codes"] == "I10"
    assert decisions.loc["feedback-r2", "export_ids"] == ["e2"]
    coarse = classify_feedback(FEEDBACK, EXPORTS, {**CONTENT, "decimals": 1})
    assert coarse.set_index("encounter_id").loc["feedback-r4", "status"] == "duplicate"


def test_without_exports_or_shared_columns_every_feedback_encounter_is_kept():
    assert (classify_feedback(FEEDBACK, EXPORTS.iloc[:0], CONTENT)["status"] == "kept").all()
    other = {**CONTENT, "prefixes": ["nothing_"]}
    assert (classify_feedback(FEEDBACK, EXPORTS, other)["status"] == "kept").all()


def test_keep_export_drops_duplicates_and_conflicts_and_lists_them_by_request_id():
    decisions = classify_feedback(FEEDBACK, EXPORTS, CONTENT)
    tables = feedback_tables(list(FEEDBACK["encounter_id"]), list(FEEDBACK["label_disease"]))
    kept, listed, counts = apply_duplicate_policy(tables, decisions, "keep_export")
    assert kept["encounters"]["encounter_id"].tolist() == ["feedback-r4"]
    assert kept["provenance"]["request_id"].tolist() == ["r4"]
    assert kept["superseded"].empty
    assert counts == {
        "feedback_encounters": 4,
        "duplicates_dropped": 2,
        "conflicts": 1,
        "conflicts_dropped": 1,
        "exports_superseded": 0,
        "kept": 1,
    }
    assert listed[["request_id", "status", "action"]].values.tolist() == [
        ["r1", "duplicate", "dropped"],
        ["r2", "conflict", "dropped"],
        ["r3", "duplicate", "dropped"],
    ]
    assert listed.loc[1, ["confirmed_code", "export_codes"]].tolist() == ["J18.9", "I10"]
    # by request id only: no encounter id, neither the feedback's nor the export's
    text = listed.to_csv()
    assert "feedback-" not in text
    assert "e2" not in text.replace("export_codes", "")


def test_keep_feedback_keeps_the_confirmed_label_and_supersedes_the_export():
    decisions = classify_feedback(FEEDBACK, EXPORTS, CONTENT)
    tables = feedback_tables(list(FEEDBACK["encounter_id"]), list(FEEDBACK["label_disease"]))
    kept, listed, counts = apply_duplicate_policy(tables, decisions, "keep_feedback")
    assert kept["encounters"]["encounter_id"].tolist() == ["feedback-r2", "feedback-r4"]
    assert kept["superseded"]["encounter_id"].tolist() == ["e2"]
    assert (counts["conflicts"], counts["conflicts_dropped"], counts["kept"]) == (1, 0, 2)
    assert listed.set_index("request_id").loc["r2", "action"] == "kept, export left out"
    with pytest.raises(ValueError, match="on_conflict: one of"):
        apply_duplicate_policy(tables, decisions, "keep_both")


# --------------------------------------------------------------- the pipeline


@pytest.fixture(scope="module")
def world() -> dict:
    """A synthetic warehouse and a FeatureBuilder fitted on its exports."""
    warehouse = warehouse_tables(n_patients=40, seed=5)
    tables = assemble_feature_tables(**{name: warehouse[name] for name in PRM})
    enc = tables["encounters"]
    ids = enc.loc[enc["source"] != "phenopacket", "encounter_id"]
    fit = {k: v[v["encounter_id"].isin(ids)] for k, v in tables.items()}
    builder = FeatureBuilder(**env_parameters("test")["features"]["builder"]).fit(fit)
    return {"warehouse": warehouse, "tables": tables, "builder": builder}


def served(tables: dict[str, pd.DataFrame], encounter_id: str) -> tuple[str, str]:
    """(the record the service would log for that exported encounter, its diagnosis)."""
    one = {k: v[v["encounter_id"] == encounter_id] for k, v in tables.items()}
    records, codes = tables_to_records(one)
    record = records[0].model_dump_json(exclude={"patient_id", "encounter_id", "note"})
    return record, codes[0]


def confirmation(request: str, code: str) -> dict:
    when = datetime(2026, 5, 1, tzinfo=UTC)
    return {
        "feedback_id": f"{request}-admin",
        "request_id": request,
        "received_at": when,
        "user_id": "admin1",
        "role": "admin",
        "confirmed_code": code,
        "notes": None,
        "model_version": "3",
        "predicted_top": json.dumps([code]),
        "confirmed_rank": 1,
    }


def run_retrain_check(
    world: dict, feedback: pd.DataFrame, log: pd.DataFrame, params: dict = PARAMS
) -> DataCatalog:
    """``retrain_check`` on in-memory datasets (no champion: the age trigger fires)."""
    catalog = DataCatalog({"feat_trained_builder": MemoryDataset(copy_mode="assign")})
    catalog["feat_trained_builder"] = world["builder"]
    for name in PRM:
        catalog[f"prm_{name}"] = world["warehouse"][name]
    catalog["prm_feedback"] = feedback
    catalog["prm_prediction_log"] = log
    catalog["reporting_monitoring_summary"] = {"drift": {"max_psi": 0.01, "psi": {}}}
    catalog["registry_state"] = {"aliases": {}}
    catalog["params:retrain"] = params
    catalog["params:retrain.now"] = "2026-06-01T00:00:00+00:00"
    catalog["params:features.registry_sources"] = ["phenopacket"]
    catalog["params:features.chunk_size"] = 500
    SequentialRunner().run(create_pipeline(), catalog)
    return catalog


def test_a_confirmed_repeat_of_an_exported_encounter_is_in_the_training_data_once(world):
    tables = world["tables"]
    labels = build_labels(tables, ["phenopacket"])
    first, second = labels["encounter_id"].iloc[0], labels["encounter_id"].iloc[1]
    repeat, code = served(tables, first)
    conflict, other_code = served(tables, second)
    wrong = next(c for c in sorted(set(labels["label_disease"])) if c != other_code)
    # a visit the warehouse has not seen: the first record, 30 years older
    fresh = json.loads(repeat) | {"age": 99.0}
    log = pd.DataFrame(
        {
            "request_id": ["rq-dup", "rq-conflict", "rq-new"],
            "logged_at": [datetime(2026, 4, 30, tzinfo=UTC)] * 3,
            "patient": ["a" * 64, "b" * 64, "c" * 64],
            "record": [repeat, conflict, json.dumps(fresh)],
        }
    )
    feedback = pd.DataFrame(
        [
            confirmation("rq-dup", code),
            confirmation("rq-conflict", wrong),
            confirmation("rq-new", code),
        ]
    )
    catalog = run_retrain_check(world, feedback, log)

    kept = catalog.load("prm_feedback_encounters")
    assert kept["encounters"]["encounter_id"].tolist() == ["feedback-rq-new"]
    listed = catalog.load("reporting_feedback_duplicates").set_index("request_id")
    assert listed["status"].to_dict() == {"rq-dup": "duplicate", "rq-conflict": "conflict"}
    assert listed.loc["rq-conflict", ["confirmed_code", "export_codes"]].tolist() == [
        wrong,
        other_code,
    ]
    decision = catalog.load("reporting_retrain_decision")
    assert decision["feedback"]["duplicates"] | {"reason": None} == {
        "checked": True,
        "on_conflict": "keep_export",
        "feedback_encounters": 3,
        "duplicates_dropped": 1,
        "conflicts": 1,
        "conflicts_dropped": 1,
        "exports_superseded": 0,
        "kept": 1,
        "reason": None,
    }
    metrics = catalog.load("reporting_retrain_check_mlflow_metrics")
    assert metrics["retrain_check.feedback.duplicates_dropped"]["value"] == 1.0
    assert metrics["retrain_check.feedback.conflicts"]["value"] == 1.0

    # the training data: the exported encounter once, the new visit added
    training = assemble_feature_tables(
        **{name: world["warehouse"][name] for name in PRM}, feedback=kept
    )
    rows = build_labels(training, ["phenopacket"])
    assert len(rows) == len(labels) + 1
    split = split_encounters(rows, env_parameters("test")["features"]["split"])
    assert split.set_index("encounter_id").loc["feedback-rq-new", "split"] == "train"
    matrix = world["builder"].transform(
        {k: v[v["encounter_id"].isin(rows["encounter_id"])] for k, v in training.items()}
    )
    columns = content_columns(matrix, matrix, CONTENT["prefixes"])
    keys = content_keys(matrix, columns, CONTENT["decimals"])
    assert int((keys == keys.loc[first]).sum()) == 1


def test_keep_feedback_replaces_the_exported_label(world):
    tables = world["tables"]
    labels = build_labels(tables, ["phenopacket"])
    second = labels["encounter_id"].iloc[1]
    conflict, other_code = served(tables, second)
    wrong = next(c for c in sorted(set(labels["label_disease"])) if c != other_code)
    log = pd.DataFrame(
        {
            "request_id": ["rq-conflict"],
            "logged_at": [datetime(2026, 4, 30, tzinfo=UTC)],
            "patient": ["b" * 64],
            "record": [conflict],
        }
    )
    params = PARAMS | {
        "feedback": PARAMS["feedback"] | {"duplicates": {"on_conflict": "keep_feedback"}}
    }
    feedback = pd.DataFrame([confirmation("rq-conflict", wrong)])
    catalog = run_retrain_check(world, feedback, log, params)
    kept = catalog.load("prm_feedback_encounters")
    assert kept["superseded"]["encounter_id"].tolist() == [second]
    training = assemble_feature_tables(
        **{name: world["warehouse"][name] for name in PRM}, feedback=kept
    )
    rows = build_labels(training, ["phenopacket"]).set_index("encounter_id")
    assert second not in rows.index
    assert rows.loc["feedback-rq-conflict", "label_disease"] == wrong
