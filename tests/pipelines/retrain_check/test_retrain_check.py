"""retrain_check: the trust rule of feedback labels, each trigger on both sides of its
threshold, "no monitoring yet" without a crash, and the pipeline through a real Kedro
catalog (DuckDB feedback table, JSON summary, a SQLite MLflow store under tmp_path)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner
from mlflow.tracking import MlflowClient

from disease_pipeline.pipelines.retrain_check import create_pipeline
from disease_pipeline.pipelines.retrain_check.feedback_labels import label_feedback
from disease_pipeline.pipelines.retrain_check.nodes import decide_retraining
from disease_pipeline.serving.feedback import FeedbackStore

ROOT = Path(__file__).resolve().parents[3]
PARAMS = yaml.safe_load((ROOT / "conf/base/parameters_retrain.yml").read_text())["retrain"]
RULE = PARAMS["feedback"]
NOW = "2026-06-01T00:00:00+00:00"


def row(request: str, user: str, role: str, code: str, minute: int) -> dict:
    return {
        "feedback_id": f"{request}-{user}-{minute}",
        "request_id": request,
        "received_at": datetime(2026, 5, 1, tzinfo=UTC) + timedelta(minutes=minute),
        "user_id": user,
        "role": role,
        "confirmed_code": code,
        "notes": None,
        "model_version": "3",
        "predicted_top": json.dumps([code]),
        "confirmed_rank": 1,
    }


FEEDBACK = pd.DataFrame(
    [
        row("r1", "admin1", "admin", "J18.9", 0),  # admin: trusted alone
        row("r2", "c1", "clinician", "I10", 0),  # two concordant clinicians
        row("r2", "c2", "clinician", "I10", 5),
        row("r3", "c1", "clinician", "I10", 0),  # one clinician, twice: counts once
        row("r3", "c1", "clinician", "I10", 9),
        row("r4", "c1", "clinician", "I10", 0),  # discordant
        row("r4", "c2", "clinician", "J06.9", 1),
        row("r5", "c1", "clinician", "J06.9", 0),  # corrected by the same clinician,
        row("r5", "c1", "clinician", "ORPHA:558", 3),  # then confirmed by a second one
        row("r5", "c3", "clinician", "ORPHA:558", 4),
        row("r6", "c1", "clinician", "I10", 0),  # an admin overrides a clinician
        row("r6", "admin1", "admin", "J18.9", 2),
    ]
)
COMMON = {"J18.9", "I10", "J06.9"}


def test_trust_rule_dedup_and_provenance():
    labelled, excluded = label_feedback(FEEDBACK, COMMON, RULE)
    got = labelled.set_index("request_id")
    assert sorted(got.index) == ["r1", "r2", "r5", "r6"]
    assert got.loc["r1", "trust"] == "role:admin"
    assert got.loc["r2", "trust"] == "concordant:2"
    assert json.loads(got.loc["r2", "confirmed_by"]) == ["c1", "c2"]
    assert got.loc["r5", "confirmed_code"] == "ORPHA:558"
    assert got.loc["r5", "label_category"] == "RARE"
    assert got.loc["r6", "confirmed_code"] == "J18.9"
    assert (got["model_version"] == "3").all()
    reasons = excluded.set_index("request_id")["reason"]
    assert sorted(reasons.index) == ["r3", "r4"]  # nothing silently dropped
    assert "needs 2 concordant" in reasons["r3"]
    assert "discordant" in reasons["r4"]


def test_feedback_with_an_empty_field_is_refused_naming_it():
    bad = FEEDBACK.copy()
    bad.loc[0, "confirmed_code"] = " "
    with pytest.raises(ValueError, match="feedback.confirmed_code is empty in 1 row"):
        label_feedback(bad, COMMON, RULE)


def registry(days_old: float | None) -> dict:
    if days_old is None:
        return {"registered_model_name": "m", "aliases": {"champion": None}}
    created = datetime.fromisoformat(NOW) - timedelta(days=days_old)
    state = {"version": "3", "created_at": created.isoformat(), "run_id": "x", "tags": {}}
    return {"registered_model_name": "m", "aliases": {"champion": state}}


def summary(max_psi: float, drop: float | None, n_labelled: int = 500) -> dict:
    return {
        "window_start": "2026-05-01",
        "window_end": "2026-05-31",
        "n_predictions": 1000,
        "drift": {"psi": {"age_years": max_psi, "f0": 0.01}, "max_psi": max_psi},
        "performance": {"n_labelled": n_labelled, "auroc_drop": drop},
        "health": {},
    }


def decide(summary_, labelled=None, days_old=10.0):
    labelled = labelled if labelled is not None else label_feedback(None, COMMON, RULE)[0]
    empty = label_feedback(None, COMMON, RULE)[1]
    return decide_retraining(summary_, labelled, empty, registry(days_old), PARAMS, now=NOW)[0]


def test_quiet_period_waits_with_every_value_and_threshold():
    decision = decide(summary(0.05, 0.01))
    assert decision["decision"] == "wait"
    assert set(decision["triggers"]) == {
        "psi",
        "auroc_drop",
        "new_common_labels",
        "new_rare_labels",
        "model_age_days",
    }
    assert decision["triggers"]["psi"] == pytest.approx(
        {
            "value": 0.05,
            "threshold": 0.2,
            "fired": False,
            "reason": decision["triggers"]["psi"]["reason"],
        }
    )
    assert decision["triggers"]["model_age_days"]["value"] == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("kwargs", "trigger"),
    [
        ({"summary_": summary(0.35, 0.0)}, "psi"),
        ({"summary_": summary(0.0, 0.06)}, "auroc_drop"),
        ({"summary_": summary(0.0, 0.0), "days_old": 91}, "model_age_days"),
        ({"summary_": summary(0.0, 0.0), "days_old": None}, "model_age_days"),
    ],
)
def test_each_trigger_fires_above_its_threshold(kwargs, trigger):
    decision = decide(**kwargs)
    assert decision["decision"] == "retrain"
    assert decision["fired"] == [trigger]


def test_auroc_drop_on_few_labels_is_not_judged():
    decision = decide(summary(0.0, 0.2, n_labelled=20))
    assert decision["decision"] == "wait"
    assert "not judged" in decision["triggers"]["auroc_drop"]["reason"]


def test_rare_labels_since_the_champion_count():
    base = datetime.fromisoformat(NOW) - timedelta(days=5)
    fresh = pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(60)],
            "label_category": ["RARE"] * 50 + ["COMMON"] * 10,
            "confirmed_at": [base + timedelta(hours=i) for i in range(60)],
        }
    )
    decision = decide(summary(0.0, 0.0), labelled=fresh, days_old=10)
    assert decision["fired"] == ["new_rare_labels"]
    assert decision["feedback"]["new_rare_labels"] == 50
    older = decide(summary(0.0, 0.0), labelled=fresh, days_old=1)  # champion newer than most
    assert older["decision"] == "wait"


def test_no_monitoring_summary_is_a_reason_not_a_crash():
    decision = decide(None)
    assert decision["decision"] == "wait"
    assert decision["monitoring"]["available"] is False
    assert "no monitoring summary yet" in decision["triggers"]["psi"]["reason"]
    assert decision["triggers"]["psi"]["value"] is None


@pytest.fixture
def tracking(tmp_path):
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("unit", artifact_location=(tmp_path / "art").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    yield MlflowClient()
    mlflow.set_tracking_uri(previous)


def test_pipeline_through_the_catalog(tmp_path, tracking):
    """Real datasets: feedback appended by the service's store to a DuckDB warehouse,
    the monitor's summary as JSON, a registered champion in a file MLflow store."""
    warehouse = tmp_path / "warehouse.duckdb"
    store = FeedbackStore(warehouse, "feedback")
    for record in FEEDBACK.to_dict("records"):
        store.append(record)
    (tmp_path / "summary.json").write_text(json.dumps(summary(0.31, 0.0)))
    tracking.create_registered_model("m")
    with mlflow.start_run():
        mlflow.log_text("x", "x.txt")
        run_id = mlflow.active_run().info.run_id
    version = tracking.create_model_version("m", f"runs:/{run_id}/x.txt", run_id)
    tracking.set_registered_model_alias("m", "champion", version.version)

    catalog = DataCatalog.from_config(
        {
            "reporting_monitoring_summary": {
                "type": "disease_pipeline.datasets.OptionalDataset",
                "dataset": {"type": "json.JSONDataset", "filepath": str(tmp_path / "summary.json")},
            },
            "prm_feedback": {
                "type": "disease_pipeline.datasets.OptionalDataset",
                "dataset": {
                    "type": "disease_pipeline.datasets.warehouse.WarehouseTableDataset",
                    "table": "feedback",
                    "filepath": str(warehouse),
                },
            },
            "prm_prediction_log": {  # the service has logged nothing in this test
                "type": "disease_pipeline.datasets.OptionalDataset",
                "dataset": {
                    "type": "disease_pipeline.datasets.warehouse.WarehouseTableDataset",
                    "table": "prediction_log",
                    "filepath": str(warehouse),
                },
            },
            "prm_feedback_labels": {
                "type": "disease_pipeline.datasets.warehouse.WarehouseTableDataset",
                "table": "feedback_labels",
                "filepath": str(warehouse),
            },
            "reporting_retrain_decision": {
                "type": "json.JSONDataset",
                "filepath": str(tmp_path / "decision.json"),
            },
            "registry_state": {
                "type": "disease_pipeline.datasets.registry_state.RegistryStateDataset",
                "registered_model_name": "m",
            },
        }
    )
    catalog["params:retrain"] = PARAMS
    catalog["params:retrain.now"] = None
    # no model trained yet (no feature builder): the feedback is not compared with the
    # warehouse, and the decision says so
    catalog["feat_trained_builder"] = None
    for table in ("patients", "encounters", "symptoms", "vitals", "labs", "diagnoses"):
        catalog[f"prm_{table}"] = pd.DataFrame()
    catalog["params:features.registry_sources"] = ["phenopacket"]
    catalog["params:features.chunk_size"] = 500
    SequentialRunner().run(create_pipeline(), catalog)

    decision = json.loads((tmp_path / "decision.json").read_text())
    assert decision["decision"] == "retrain"
    assert decision["fired"] == ["psi"]
    assert decision["champion_version"] == str(version.version)
    assert decision["feedback"] == {
        "trusted_labels": 4,
        "excluded_requests": 2,
        "new_common_labels": 0,  # every confirmation predates the champion
        "new_rare_labels": 0,
        "duplicates": {
            "checked": False,
            "reason": "no feedback encounters",
            "feedback_encounters": 0,
            "duplicates_dropped": 0,
            "conflicts": 0,
            "conflicts_dropped": 0,
            "exports_superseded": 0,
            "kept": 0,
        },
    }
    unmatched = catalog.load("reporting_feedback_unmatched")
    assert sorted(unmatched["request_id"]) == ["r1", "r2", "r5", "r6"]
    assert catalog.load("prm_feedback_encounters")["encounters"].empty
    stored = catalog.load("prm_feedback_labels")
    assert sorted(stored["request_id"]) == ["r1", "r2", "r5", "r6"]
