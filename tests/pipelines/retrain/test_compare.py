"""Champion vs challenger: predictors really trained on the simulated world of
``tests/pipelines/evaluation/world.py`` (one on all of the training data, one on 5 % of
it), scored through ``predict_tables`` on the same encounters.

- a better challenger is promoted, a worse one and an identical one are kept out, with
  the reason;
- McNemar's test agrees with statsmodels' exact binomial on a known table;
- the retrain pipeline's challenger part runs against a real SQLite MLflow registry:
  the better challenger ends as ``@champion`` with an audit entry, the worse one stays
  ``@challenger`` tagged with why it was kept out.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner
from mlflow.tracking import MlflowClient

from disease_pipeline.core.columns import FEEDBACK_ENCOUNTER_PREFIX
from disease_pipeline.datasets.champion_model import ChampionModelDataset
from disease_pipeline.pipelines.monitor.replay import tables_to_records
from disease_pipeline.pipelines.retrain import create_pipeline
from disease_pipeline.pipelines.retrain.compare import mcnemar_top1
from disease_pipeline.pipelines.retrain.nodes import (
    choose_evaluation_set,
    compare_with_champion,
    feedback_version,
    prepare_challenger,
    recent_labelled_traffic,
)
from disease_pipeline.serving.audit import verify_chain
from tests.pipelines.evaluation.world import make_world, model_input, train_predictor

CONF = Path(__file__).resolve().parents[3] / "conf" / "base"
RETRAIN = yaml.safe_load((CONF / "parameters_retrain.yml").read_text())["retrain"]
EVALUATION = yaml.safe_load((CONF / "parameters_evaluation.yml").read_text())["evaluation"]
PARAMS = RETRAIN | {"comparison": RETRAIN["comparison"] | {"n_boot": 200}}
APPROVED = {"approved": True, "reason": "all criteria passed"}


@pytest.fixture(scope="module")
def world():
    train_tables, train_labels = make_world(2500, 11, "2021-01-01")
    test_tables, test_labels = make_world(1200, 13, "2023-01-01")
    train = model_input(train_tables, train_labels)
    strong = train_predictor(train)
    weak = train_predictor(train.sample(frac=0.05, random_state=0))
    return {
        "train": train,
        "test": model_input(test_tables, test_labels),
        "tables": test_tables,
        "strong": strong,
        "weak": weak,
    }


def compare(world, champion, challenger, gate=APPROVED, recent=None):
    report, request, metrics = compare_with_champion(
        champion=champion,
        challenger=challenger,
        gate_verdict=gate,
        frozen=None,
        model_input_test=world["test"],
        model_input_train=world["train"],
        model_input_calibration=world["train"].iloc[:0],
        prm_evaluation_tables=world["tables"],
        evaluation_params=EVALUATION,
        params=PARAMS,
        recent=recent,
    )
    return report, request, metrics


def test_a_better_challenger_is_promoted(world):
    report, request, metrics = compare(world, world["weak"], world["strong"])
    assert request["promote"], request["reason"]
    figures = report["figures"]
    assert figures["top3.difference.ci_low"] > 0
    assert figures["top3.challenger"] > figures["top3.champion"]
    assert report["evaluation_set"]["source"] == "current_test_split"
    assert report["evaluation_set"]["n_compared"] == len(world["test"])
    assert metrics["retrain.promote"]["value"] == 1.0


def test_a_worse_challenger_is_kept_out_with_the_reason(world):
    report, request, _ = compare(world, world["strong"], world["weak"])
    assert not request["promote"]
    assert "top3 inferior" in request["reason"]
    assert "top3 not better" in request["reason"]
    assert report["mcnemar_top1"]["only_champion"] > report["mcnemar_top1"]["only_challenger"]


def test_the_same_model_is_not_promoted(world):
    report, request, _ = compare(world, world["strong"], world["strong"])
    assert not request["promote"]
    assert request["reason"] == "top3 not better (difference ci_low 0.0000 <= 0)"
    assert report["mcnemar_top1"]["pvalue"] == 1.0


def test_a_gate_rejected_challenger_is_never_promoted(world):
    gate = {"approved": False, "reason": "failed: top3.ci_low < 0.8"}
    _, request, _ = compare(world, world["weak"], world["strong"], gate)
    assert not request["promote"]
    assert "rejected by the acceptance gate: failed: top3" in request["reason"]


def test_evaluation_encounters_the_challenger_saw_are_left_out(world):
    leaked = pd.concat([world["train"], world["test"].iloc[:100]])
    report, _, _ = compare_with_champion(
        champion=world["weak"],
        challenger=world["strong"],
        gate_verdict=APPROVED,
        frozen=None,
        model_input_test=world["test"],
        model_input_train=leaked,
        model_input_calibration=world["train"].iloc[:0],
        prm_evaluation_tables=world["tables"],
        evaluation_params=EVALUATION,
        params=PARAMS,
    )
    assert report["evaluation_set"]["n_seen_by_challenger_left_out"] == 100
    assert report["evaluation_set"]["n_compared"] == len(world["test"]) - 100


def test_mcnemar_matches_the_exact_binomial():
    champion = np.array([1] * 10 + [0] * 2 + [1] * 30 + [0] * 8)
    challenger = np.array([0] * 10 + [1] * 2 + [1] * 30 + [0] * 8)
    test = mcnemar_top1(champion, challenger)
    assert (test["only_champion"], test["only_challenger"]) == (10, 2)
    # two-sided exact binomial of 2 successes in 12 trials at p = 1/2
    from scipy.stats import binomtest

    assert test["pvalue"] == pytest.approx(binomtest(2, 12, 0.5).pvalue)


def test_feedback_version_names_the_confirmed_encounters():
    assert feedback_version(None) == ("none", 0)
    diagnoses = pd.DataFrame(
        {"encounter_id": ["f-1", "f-2", "f-1"], "code": ["J18.9", "I10", "E11"]}
        | {"role": ["primary", "primary", "comorbidity"]}
    )
    feedback = {
        "encounters": pd.DataFrame({"encounter_id": ["f-1", "f-2"]}),
        "diagnoses": diagnoses,
    }
    version, count = feedback_version(feedback)
    assert count == 2 and len(version) == 64
    relabelled = diagnoses.assign(code=["J18.9", "I20", "E11"])
    assert feedback_version(feedback | {"diagnoses": relabelled})[0] != version


def test_the_challengers_data_version_covers_its_feedback():
    inputs = {
        "predictor": object(),
        "gate_verdict": APPROVED,
        "metrics": {},
        "data_version": {"data_version": "exports-v1"},
        "params": yaml.safe_load((CONF / "parameters_packaging.yml").read_text())["packaging"],
    }
    plain = prepare_challenger(**inputs, feedback=None)["tags"]
    assert plain["data_version"] == "exports-v1" and plain["feedback_encounters"] == "0"
    diagnoses = pd.DataFrame({"encounter_id": ["f-1"], "code": ["J18.9"], "role": ["primary"]})
    feedback = {"encounters": pd.DataFrame({"encounter_id": ["f-1"]}), "diagnoses": diagnoses}
    tags = prepare_challenger(**inputs, feedback=feedback)["tags"]
    assert tags["exports_data_version"] == "exports-v1"
    assert len(tags["data_version"]) == 64 and tags["data_version"] != "exports-v1"
    relabelled = feedback | {"diagnoses": diagnoses.assign(code=["I10"])}
    assert (
        prepare_challenger(**inputs, feedback=relabelled)["tags"]["data_version"]
        != tags["data_version"]
    )


# ---- the challenger part of the retrain pipeline against a real registry --------------


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    folder = tmp_path_factory.mktemp("registry")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = mlflow.create_experiment("unit", artifact_location=(folder / "art").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    key = folder / "audit_key.txt"
    key.write_text("b" * 64)
    serving = yaml.safe_load((CONF / "serving.yml").read_text())["serving"]
    config = folder / "serving.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "serving": serving
                | {
                    "audit_log": str(folder / "audit.jsonl"),
                    "audit_key_file": str(key),
                    "audit_key_env": "DISEASE_PIPELINE_TEST_NO_SUCH_VARIABLE",
                }
            }
        )
    )
    yield MlflowClient(), folder, config
    mlflow.set_tracking_uri(previous)


def run_challenger_part(world, registry, name: str, champion, challenger) -> dict:
    client, folder, config = registry
    with mlflow.start_run():
        ChampionModelDataset(registered_model_name=name).save(
            {"approved": True, "reason": "ok", "predictor": champion, "tags": {}, "top_k": 10}
        )
    registry_datasets = {
        "registry_champion": {"alias": "champion"},
        "registry_challenger_model": {"alias": "challenger"},
    }
    catalog = DataCatalog.from_config(
        {
            dataset: {
                "type": "disease_pipeline.datasets.OptionalDataset",
                "dataset": {
                    "type": "disease_pipeline.datasets.champion_model.ChampionModelDataset",
                    "registered_model_name": name,
                    **extra,
                },
            }
            for dataset, extra in registry_datasets.items()
        }
        | {
            "registry_promotion": {
                "type": "disease_pipeline.datasets.promotion.PromotionDataset",
                "registered_model_name": name,
                "serving_config": str(config),
            },
            "registry_challenger_comparison": {
                "type": "json.JSONDataset",
                "filepath": str(folder / f"{name}_comparison.json"),
            },
        }
    )
    data = {
        "model_predictor": challenger,
        "reporting_gate_verdict": APPROVED,
        "reporting_metrics": {},
        "reporting_data_version": {"data_version": "dv-test"},
        "params:packaging": {"top_k": 10, "requirements_extra": "model", "tag_metrics": []},
        "model_input_frozen_evaluation": None,
        "prm_feedback_encounters": None,
        "prm_prediction_log": None,
        "prm_feedback": None,
        "model_input_test": world["test"],
        "model_input_train": world["train"],
        "model_input_calibration": world["train"].iloc[:0],
        "prm_evaluation_tables": world["tables"],
        "params:evaluation": EVALUATION,
        "params:retrain": PARAMS,
    }
    for key, value in data.items():
        catalog[key] = value
    with mlflow.start_run():
        SequentialRunner().run(create_pipeline(), catalog)
    return json.loads((folder / f"{name}_comparison.json").read_text())


def test_retrain_promotes_a_better_challenger_and_keeps_out_a_worse_one(world, registry):
    client, folder, _ = registry
    report = run_challenger_part(world, registry, "better", world["weak"], world["strong"])
    assert report["verdict"]["promote"], report["verdict"]["reason"]
    aliases = {a: str(v) for a, v in client.get_registered_model("better").aliases.items()}
    assert aliases == {"champion": "2", "previous_champion": "1"}
    tags = client.get_model_version("better", "2").tags
    assert tags["promotion.by"] == "retrain-pipeline"
    assert (tags["data_version"], tags["feedback_version"]) == ("dv-test", "none")

    report = run_challenger_part(world, registry, "worse", world["strong"], world["weak"])
    assert not report["verdict"]["promote"]
    aliases = {a: str(v) for a, v in client.get_registered_model("worse").aliases.items()}
    assert aliases == {"champion": "1", "challenger": "2"}
    kept = client.get_model_version("worse", "2").tags["promotion.kept_out"]
    assert kept == report["verdict"]["reason"]

    check = verify_chain(folder / "audit.jsonl", key=b"b" * 64)
    assert check.ok and check.events == {"model_promotion": 1}, check


def feedback_copies(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` as they come back through the service's feedback: a new id and a new
    date, so calendar and season-dependent (knowledge prior) features differ."""
    copies = rows.copy()
    copies["encounter_id"] = FEEDBACK_ENCOUNTER_PREFIX + copies["encounter_id"].astype(str)
    for column in copies.columns:
        if column in ("month", "season_sin", "season_cos") or column.startswith("knowledge_"):
            copies[column] = copies[column].astype("float64") + 0.5
    return copies


def test_feedback_copies_of_evaluation_encounters_are_left_out(world):
    # the toy world names its two measurements without the vitals_/labs_ prefixes
    content = PARAMS["comparison"]["content_key"]
    content = content | {"prefixes": [*content["prefixes"], "hr", "crp"]}
    test = world["test"]
    copies = feedback_copies(test.iloc[:80])
    chosen, description = choose_evaluation_set(
        None, test, world["tables"], [world["train"], copies], content
    )
    kept = set(chosen["split"]["encounter_id"].astype(str))
    assert not kept & set(test["encounter_id"].iloc[:80].astype(str))
    assert description["n_feedback_copies_left_out"] >= 80
    assert description["n_seen_by_challenger_left_out"] == 0
    assert description["n_compared"] == len(test) - description["n_feedback_copies_left_out"]
    # the same rows without the feedback prefix are not copies (ids decide for exports),
    # and feedback with other findings leaves every evaluation encounter in
    exported = copies.assign(encounter_id=test["encounter_id"].iloc[:80].astype(str) + "-x")
    _, untouched = choose_evaluation_set(None, test, world["tables"], [exported], content)
    assert untouched["n_compared"] == len(test)
    other = feedback_copies(world["train"].iloc[:80])
    _, unrelated = choose_evaluation_set(None, test, world["tables"], [other], content)
    assert unrelated["n_feedback_copies_left_out"] == 0


# ---- recent labelled traffic ----------------------------------------------------------

NOW = pd.Timestamp("2026-06-01", tz="UTC")


def served(world, count: int, labels: list[str] | None = None) -> pd.DataFrame:
    """``count`` test encounters as the service logged them (checked records) with their
    confirmed diagnoses (``labels`` instead of the recorded ones when given)."""
    records, _ = tables_to_records(world["tables"])
    truth = world["test"].set_index(world["test"]["encounter_id"].astype(str))["label_disease"]
    recorded = [str(truth.get(r.encounter_id, "")) for r in records]
    keep = [i for i, label in enumerate(recorded) if label][:count]
    return pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in keep],
            "logged_at": [NOW - pd.Timedelta(hours=1 + i) for i in keep],
            "record": [records[i].model_dump_json() for i in keep],
            "label_disease": labels or [recorded[i] for i in keep],
        }
    )


def test_recent_traffic_is_the_window_confirmed_and_not_trained_on():
    log = pd.DataFrame(
        {
            "request_id": ["a", "b", "c", "d", "e"],
            "logged_at": [NOW - pd.Timedelta(days=d) for d in (1, 2, 3, 200, 1)],
            "status": ["predicted", "predicted", "predicted", "predicted", "refused"],
            "record": ["{}"] * 5,
        }
    )
    feedback = pd.DataFrame(
        {
            "request_id": ["a", "a", "b", "c", "d", "e"],
            "confirmed_code": ["J06.9", "J18.9", "A09", "I10", "I10", "I10"],
            "received_at": [NOW - pd.Timedelta(hours=h) for h in (5, 1, 2, 2, 2, 2)],
        }
    )
    trained = {"encounters": pd.DataFrame({"encounter_id": ["feedback-c"]})}
    params = PARAMS | {"now": NOW.isoformat()}
    recent = recent_labelled_traffic(log, feedback, trained, params)
    assert recent["request_id"].tolist() == ["b", "a"]  # d: too old, e: refused, c: learnt
    assert recent["label_disease"].tolist() == ["A09", "J18.9"]  # a: the latest confirmation
    assert recent_labelled_traffic(None, feedback, None, params).empty


def test_recent_traffic_agrees_with_the_frozen_set_for_a_better_challenger(world):
    report, request, metrics = compare(
        world, world["weak"], world["strong"], recent=served(world, 400)
    )
    assert request["promote"], request["reason"]
    recent = report["recent_traffic"]
    assert recent["gating"] and recent["n"] == 400
    assert recent["figures"]["top3.difference"] > 0
    assert "non-inferior on 400 recent labelled predictions" in request["reason"]
    assert "retrain.recent.top1.difference" in metrics


def test_a_challenger_worse_on_recent_traffic_is_kept_out(world):
    """Recent confirmations that agree with the champion's top-1 (a population where the
    older model is right): better on the frozen set, the challenger is still kept out."""
    traffic = served(world, 400)
    traffic = traffic.assign(label_disease=score_top1(world["weak"], traffic))
    report, request, _ = compare(world, world["weak"], world["strong"], recent=traffic)
    assert report["figures"]["top3.difference.ci_low"] > 0  # the frozen set alone would promote
    assert not request["promote"]
    assert "recent traffic: top1 inferior" in request["reason"]


def test_too_little_recent_traffic_is_reported_not_gating(world):
    traffic = served(world, 400)
    traffic = traffic.assign(label_disease=score_top1(world["weak"], traffic)).head(50)
    report, request, _ = compare(world, world["weak"], world["strong"], recent=traffic)
    assert request["promote"]
    assert not report["recent_traffic"]["gating"] and report["recent_traffic"]["failed"]
    assert "recent traffic: 50 labelled predictions, too few to decide" in request["reason"]


def score_top1(predictor, traffic: pd.DataFrame) -> list[str]:
    from disease_pipeline.pipelines.retrain.compare import score_records

    return [codes[0] for codes in score_records(predictor, traffic, 10)["ranked_codes"]]
