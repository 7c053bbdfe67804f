"""The evaluation pipeline, real nodes, on the simulated world of ``world.py``: warehouse
tables scored through the project's DiseasePredictor (models really trained)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure

from disease_pipeline.pipelines.evaluation import create_pipeline
from disease_pipeline.pipelines.evaluation.diagnostics import evaluate_robustness
from disease_pipeline.pipelines.evaluation.gate import apply_acceptance_gate
from disease_pipeline.pipelines.evaluation.parity import output_mismatches, records_from_tables
from tests.pipelines.common_model.synthetic import REGISTRY_COLUMNS
from tests.pipelines.evaluation.standin import run_in_memory
from tests.pipelines.evaluation.world import (
    WorldBuilder,
    WorldKnowledge,
    make_world,
    model_input,
    train_predictor,
)

CONF = Path(__file__).resolve().parents[3] / "conf" / "base" / "parameters_evaluation.yml"
WAREHOUSE = ("encounters", "symptoms", "vitals", "labs", "diagnoses")


def small_params() -> dict:
    params = yaml.safe_load(CONF.read_text())["evaluation"]
    params["subgroups"]["min_group_size"] = 40
    params["cv"]["xgboost"]["n_estimators"] = 15
    params["shap"]["sample_size"] = 60
    params["latency"] |= {"repeats": 3, "batch_size": 10}
    params["intervals"]["n_boot"] = 50
    return params


def inputs(predictor, world) -> dict:
    params = small_params()
    (train_tables, train), (cal_tables, cal), (test_tables, test) = world
    tables = {
        k: pd.concat([t[k] for t in (train_tables, cal_tables, test_tables)]) for k in WAREHOUSE
    }
    patients = tables["encounters"][["patient_id", "sex"]].drop_duplicates("patient_id")
    return {
        "model_predictor": predictor,
        "model_input_train": train,
        "model_input_calibration": cal,
        "model_input_test": test,
        "model_input_cv_folds": None,
        "feat_builder": WorldBuilder(),
        "prm_patients": patients,
        **{f"prm_{k}": tables[k] for k in WAREHOUSE},
        "prm_feedback_encounters": None,
        "reporting_rare_model_validation": {"skipped": "no registry case"},
        "feat_registry_cases": pd.DataFrame(columns=REGISTRY_COLUMNS),
        "reporting_data_version": {"data_version": "v-test-123"},
        "reporting_split_report": {"splits": {"test": {"encounters": len(test), "patients": 1}}},
        "params:evaluation": params,
        "params:evaluation.gate": params["gate"],
        "params:common_model.baseline": {"C": 1.0, "max_iter": 200},
        "params:common_model.knowledge": {},
        "params:common_model.gate.query_rows": {"enabled": False},
    }


@pytest.fixture(scope="module")
def world():
    splits = []
    for n, seed, start in ((1200, 1, "2021-01-01"), (500, 2, "2022-01-01"), (600, 3, "2023-01-01")):
        tables, labels = make_world(n, seed, start)
        splits.append((tables, model_input(tables, labels)))
    return splits


@pytest.fixture(scope="module")
def champion(world):
    return train_predictor(world[0][1])


@pytest.fixture(scope="module")
def outputs(world, champion):
    return run_in_memory(create_pipeline(), inputs(champion, world))


def test_scored_test_split_has_one_row_per_encounter_with_probabilities(outputs, world):
    scored = outputs["model_output_test_predictions"]
    assert scored["encounter_id"].tolist() == world[2][1]["encounter_id"].tolist()
    common = scored.filter(like="p_common__")
    assert common.shape[1] == 6
    assert np.allclose(common.sum(axis=1), 1)  # P(d | common)
    assert scored["p_rare"].between(0, 1).all()
    assert scored["ranked_codes"].map(len).eq(min(small_params()["scoring_top_k"], 9)).all()
    assert np.allclose(scored.filter(like="p_severity__").sum(axis=1), 1)
    assert set(scored["sex"]) == {"female", "male"}
    # the modality pattern comes from which tables have rows for the encounter
    test_tables = world[2][0]
    with_labs = set(test_tables["labs"]["encounter_id"])
    with_vitals = set(test_tables["vitals"]["encounter_id"])
    expected = [
        {(True, True): "all", (True, False): "with_vitals", (False, True): "with_labs"}.get(
            (e in with_vitals, e in with_labs), "symptoms_only"
        )
        for e in scored["encounter_id"]
    ]
    assert scored["modality"].tolist() == expected
    assert set(expected) == {"symptoms_only", "with_vitals", "with_labs", "all"}


def test_evaluation_equals_the_record_path_of_the_service(outputs, world):
    """Sampled test encounters, sent as API records through predict_records (what the
    service calls), get exactly the answers the evaluation scored."""
    scored = outputs["model_output_test_predictions"].sample(n=40, random_state=0)
    predictor = train_predictor(world[0][1])
    records = records_from_tables(world[2][0], scored["encounter_id"].tolist())
    answers = predictor.predict_records(records, top_k=small_params()["scoring_top_k"])
    assert [a["encounter_id"] for a in answers] == scored["encounter_id"].tolist()
    assert output_mismatches(scored, answers, small_params()["scoring_top_k"]) == []
    # the comparison sees a difference: another model's answers do not match
    other = train_predictor(world[1][1]).predict_records(records, top_k=10)
    assert output_mismatches(scored, other, 10)


def test_metrics_of_a_good_model(outputs):
    metrics = outputs["reporting_metrics"]
    assert metrics["common.auroc_macro"] > 0.9
    assert (
        metrics["differential.top5"] >= metrics["differential.top3"] >= metrics["differential.top1"]
    )
    # the alert threshold is chosen on the calibration split and carries over to test
    assert metrics["severity.op.sensitivity"] > 0.85
    assert 0 < metrics["severity.op.threshold"] < 1
    assert metrics["cv.folds"] == 5
    assert metrics["robustness.auroc_degradation"] > 0
    assert metrics["serving.latency_ms_p95"] > 0
    assert outputs["reporting_mlflow_metrics"]["common.auroc_macro"]["step"] == 0


def test_every_gated_figure_has_an_interval_around_it(outputs):
    metrics = outputs["reporting_metrics"]
    for criterion in small_params()["gate"]["criteria"].values():
        if criterion.get("bound") != "interval" or criterion.get("when_missing") == "report":
            continue
        key = criterion["metric"]
        low, high = metrics[f"{key}.ci_low"], metrics[f"{key}.ci_high"]
        assert low <= metrics[key] <= high, key
        assert low < high or key in ("gate.auroc", "differential.rare_top10"), key


def test_shap_ranks_informative_features_above_uninformative_ones(outputs):
    importance = outputs["reporting_shap_importance"].set_index("feature")["mean_abs_shap"]
    assert importance[["hpo_diarrhea", "hpo_headache", "crp"]].min() > importance["sex_male"]
    assert isinstance(outputs["reporting_shap_plot"], Figure)


def test_verdict_lists_every_configured_criterion_and_reports_name_data(outputs):
    verdict = outputs["reporting_gate_verdict"]
    assert [c["criterion"] for c in verdict["criteria"]] == list(small_params()["gate"]["criteria"])
    assert verdict["approved"] == (not verdict["failed"])
    # no registry validation and no knowledge baseline here: reported, not passed
    assert "unseen_vs_resnik" in verdict["not_available"]
    assert "not available" in outputs["reporting_gate_verdict_markdown"]
    card = outputs["reporting_model_card"]
    assert "v-test-123" in card and "Intended use" in card and "Limits" in card
    assert "docs/simulator.md" in card
    for name in ("confusion_matrix", "roc_curves", "pr_curves", "calibration_plot"):
        assert isinstance(outputs[f"reporting_{name}"], Figure)
    assert {"sex", "age_band"} == set(outputs["reporting_subgroup_metrics"]["attribute"])
    assert len(outputs["reporting_temporal_metrics"]) == small_params()["temporal_periods"]


def test_evaluation_report_gives_intervals_and_baselines(outputs):
    page = outputs["reporting_evaluation_markdown"]
    metrics = outputs["reporting_metrics"]
    top1 = f"{metrics['common.top1']:.3f} [{metrics['common.top1.ci_low']:.3f}, "
    assert top1 in page
    logistic = (
        f"{metrics['baseline.logistic.top1']:.3f} [{metrics['baseline.logistic.top1.ci_low']:.3f}"
    )
    assert logistic in page
    table = outputs["reporting_modality_metrics"]
    assert table["pattern"].tolist() == ["symptoms_only", "with_vitals", "with_labs", "all"]
    assert (table["modality.n"] > 0).all()
    # the champion's learned model alone, per pattern and against the champion
    assert "learned model alone" in page and "learned model top-3" in page
    assert table["modality.learned.top3"].notna().all()
    assert "compare.learned.top3_diff" in metrics


def test_the_learned_baseline_is_the_champions_calibrated_model(outputs, champion, world):
    _, test = world[2]
    frame = outputs["model_output_baseline_predictions"]
    classes = [str(c) for c in champion.common_model.classes_]
    X = test.set_index(test["encounter_id"].astype(str)).loc[frame["encounter_id"]]
    expected = champion.common_model.predict_proba(X)
    calibrator = champion.calibrators.get("common")  # this world's champion may have none
    expected = expected if calibrator is None else calibrator.transform(expected)
    got = frame[[f"learned__{c}" for c in classes]].to_numpy(float)
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_the_knowledge_baseline_is_compared_on_every_pattern(world):
    data = inputs(train_predictor(world[0][1]), world)
    pipeline = create_pipeline()
    keep = [n for n in pipeline.nodes if n.name != "build_knowledge_baseline"]
    data["model_knowledge_baseline"] = {"scorer": WorldKnowledge(), "note": "stand-in"}
    out = run_in_memory(type(pipeline)(keep).to_outputs("reporting_metrics_intervals"), data)[
        "reporting_metrics_intervals"
    ]
    widths = []
    for pattern in ("symptoms_only", "with_vitals", "with_labs", "all"):
        diff = out[f"compare.knowledge.{pattern}.top3_diff"]
        low, high = (out[f"compare.knowledge.{pattern}.top3_diff.ci_{b}"] for b in ("low", "high"))
        assert low <= diff <= high
        widths.append(high - low)
    assert max(widths) > 0
    assert out["baseline.knowledge.shared_classes"] == 6
    # the knowledge scorer's own symptoms-only top-3, recomputed from its log-posterior
    tables, test = world[2]
    scored = test[test["label_category"] == "COMMON"]
    only = ~scored["encounter_id"].isin(
        set(tables["vitals"]["encounter_id"]) | set(tables["labs"]["encounter_id"])
    )
    scorer = WorldKnowledge()
    posterior = scorer.log_posterior(tables)
    position = {e: i for i, e in enumerate(tables["encounters"]["encounter_id"])}
    rows = posterior[[position[e] for e in scored.loc[only, "encounter_id"]]]
    top3 = np.asarray(scorer.classes)[np.argsort(-rows, axis=1, kind="stable")[:, :3]]
    hits = (top3 == scored.loc[only, "label_disease"].to_numpy()[:, None]).any(axis=1)
    assert out["modality.symptoms_only.knowledge.top3"] == pytest.approx(hits.mean())


def test_a_model_trained_on_shuffled_labels_scores_at_chance_and_is_rejected(world):
    train = world[0][1].copy()
    rng = np.random.default_rng(0)
    for column in ("label_disease", "label_severity"):
        train[column] = rng.permutation(train[column].to_numpy())
    train["label_category"] = np.where(train["label_disease"].str.contains(":"), "RARE", "COMMON")
    data = inputs(train_predictor(train), world)
    out = run_in_memory(create_pipeline().to_outputs("reporting_metrics_test"), data)
    metrics = out["reporting_metrics_test"]
    assert metrics["common.auroc_macro"] < 0.65
    verdict = apply_acceptance_gate(metrics, data["params:evaluation.gate"])
    assert verdict["approved"] is False
    assert "auroc_common" in verdict["failed"]


def test_more_missing_inputs_cost_more(outputs, world):
    train, test = world[0][1], world[2][1]
    predictor = train_predictor(train)
    params = small_params()
    losses = []
    for rate in (0.05, 0.5):
        config = copy.deepcopy(params)
        config["robustness"]["missing_rate"] = rate
        losses.append(
            evaluate_robustness(
                predictor,
                test,
                world[2][0],
                outputs["model_output_test_predictions"],
                config,
            )["robustness.auroc_degradation"]
        )
    assert 0 <= losses[0] < losses[1]
    with pytest.raises(ValueError, match="missing_rate"):
        params["robustness"]["missing_rate"] = 1.5
        evaluate_robustness(predictor, test, world[2][0], pd.DataFrame(), params)
