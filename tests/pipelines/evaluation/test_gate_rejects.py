"""The production acceptance gate (conf/base) approves a decent model and REJECTS four bad
ones, each really trained on the simulated world of ``world.py`` and scored by the real
evaluation nodes through ``predict_tables``:

- trained on shuffled labels;
- without phenotype (HPO) features;
- trained on 5 % of the training data;
- whose rare component is the knowledge scorer alone, which scores worse than the
  one-sided best-match baseline on the registry-like cases.

Only the model-quality criteria are judged here (serving costs, SHAP time, robustness,
subgroup gaps and the recording-style check are measured by other nodes of the pipeline
and tested elsewhere).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.pipeline import Pipeline

from disease_pipeline.pipelines.evaluation import create_pipeline
from disease_pipeline.pipelines.evaluation.gate import apply_acceptance_gate
from tests.pipelines.evaluation.standin import run_in_memory
from tests.pipelines.evaluation.world import (
    WorldBuilder,
    WorldKnowledge,
    make_world,
    model_input,
    registry_validation,
    train_predictor,
)

CONF = Path(__file__).resolve().parents[3] / "conf" / "base" / "parameters_evaluation.yml"
#: criteria measured on the predictions (not serving costs, robustness or subgroups; nor
#: the recording-style check, whose patients come from the real catalogue while the
#: world has diseases of its own: tests/pipelines/evaluation/test_recording_check.py)
NOT_QUALITY = {
    "latency",
    "throughput",
    "model_size",
    "explanation_time",
    "robustness",
    "subgroup_gap",
    "recording_without_age_p_rare",
    "recording_negatives_p_rare",
}
PROTOCOL = "world_registry"
REGISTRY = f"registry.{PROTOCOL}.hybrid_vs_resnik_one_sided.top1_diff"
OUTPUTS = ("reporting_metrics_test", "reporting_metrics_intervals", "reporting_modality_metrics")


def production_params() -> dict:
    params = yaml.safe_load(CONF.read_text())["evaluation"]
    # the world has three rare diseases: top-1 (top-3 would always hit)
    params["registry_protocol"] |= {"protocol": PROTOCOL, "metric": "top1"}
    criteria = params["gate"]["criteria"]
    criteria["unseen_vs_resnik"]["metric"] = REGISTRY
    # the world's knowledge stand-in already ranks 0.99 of its symptoms-only cases in the
    # top 3: no room to beat it there by an interval, so top-3 is judged non-inferior here
    criteria["knowledge_symptoms_only_top3"]["threshold"] = -0.02
    params["gate"]["criteria"] = {k: v for k, v in criteria.items() if k not in NOT_QUALITY}
    return params


@pytest.fixture(scope="module")
def world():
    splits = {}
    for name, n, seed, start in (
        ("train", 3000, 11, "2021-01-01"),
        ("calibration", 1000, 12, "2022-01-01"),
        ("test", 1500, 13, "2023-01-01"),
    ):
        tables, labels = make_world(n, seed, start)
        splits[name] = (tables, model_input(tables, labels))
    return splits


def judge(world, predictor) -> dict:
    """Evaluation nodes up to the interval figures, then the production gate."""
    params = production_params()
    test_tables, test = world["test"]
    cal_tables, cal = world["calibration"]
    tables = {k: pd.concat([test_tables[k], cal_tables[k]]) for k in test_tables}
    data = {
        "model_predictor": predictor,
        "model_input_train": world["train"][1],
        "model_input_calibration": cal,
        "model_input_test": test,
        "feat_builder": WorldBuilder(),
        "prm_evaluation_tables": tables,
        "model_knowledge_baseline": {"scorer": WorldKnowledge(), "note": "world stand-in"},
        "reporting_rare_model_validation": registry_validation(predictor, 300, 21, PROTOCOL),
        "params:evaluation": params,
        "params:common_model.baseline": {"C": 1.0, "max_iter": 300},
    }
    skip = {"assemble_evaluation_tables", "build_knowledge_baseline"}
    pipeline = create_pipeline().to_outputs(*OUTPUTS)
    pipeline = Pipeline([n for n in pipeline.nodes if n.name not in skip])
    out = run_in_memory(pipeline, data)
    metrics = out["reporting_metrics_test"] | out["reporting_metrics_intervals"]
    return apply_acceptance_gate(metrics, params["gate"]) | {"metrics": metrics}


@pytest.fixture(scope="module")
def good(world):
    return judge(world, train_predictor(world["train"][1]))


def test_a_decent_model_passes_every_quality_criterion(good):
    assert good["approved"], good["reason"]
    assert good["not_available"] == []


def test_shuffled_labels_are_rejected(world, good):
    train = world["train"][1].copy()
    rng = np.random.default_rng(0)
    for column in ("label_disease", "label_severity"):
        train[column] = rng.permutation(train[column].to_numpy())
    train["label_category"] = np.where(train["label_disease"].str.contains(":"), "RARE", "COMMON")
    verdict = judge(world, train_predictor(train))
    assert not verdict["approved"]
    assert {"top1_common", "auroc_common", "beats_logistic", "auroc_gate"} <= set(verdict["failed"])


def test_a_model_without_phenotype_features_is_rejected(world, good):
    verdict = judge(world, train_predictor(world["train"][1], drop_phenotypes=True))
    assert not verdict["approved"]
    # without phenotypes it falls below the knowledge scorer where only symptoms are known
    assert {"knowledge_symptoms_only", "beats_knowledge", "beats_logistic"} <= set(
        verdict["failed"]
    )


def test_a_model_trained_on_5_percent_of_the_data_is_rejected(world, good):
    train = world["train"][1].sample(frac=0.05, random_state=0)
    verdict = judge(world, train_predictor(train))
    assert not verdict["approved"]
    assert "beats_logistic" in verdict["failed"]
    # the margin is what rejects it: its top-1 is worse than the logistic baseline's
    metrics = verdict["metrics"]
    assert (
        metrics["compare.logistic.top1_diff.ci_high"]
        < good["metrics"]["compare.logistic.top1_diff.ci_low"]
    )


def test_a_knowledge_only_rare_component_that_scores_worse_is_rejected(world, good):
    verdict = judge(world, train_predictor(world["train"][1], rare="knowledge"))
    assert not verdict["approved"]
    assert "unseen_vs_resnik" in verdict["failed"]
    assert verdict["metrics"][f"{REGISTRY}.ci_high"] < 0 < good["metrics"][f"{REGISTRY}.ci_low"]
