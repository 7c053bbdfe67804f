"""Labels, patient-grouped time-ordered splits and CV folds."""

import pandas as pd
import pytest

from disease_pipeline.pipelines.features.nodes import build_labels, build_registry_cases
from disease_pipeline.pipelines.features.splits import assign_cv_folds, split_encounters


@pytest.fixture(scope="module")
def labels(tables, feature_params):
    return build_labels(tables, feature_params["registry_sources"])


@pytest.fixture(scope="module")
def assignment(labels, feature_params):
    return split_encounters(labels, feature_params["split"])


def test_labels_prefix_rare_codes_and_skip_registry_cases(labels, tables):
    assert set(labels["label_disease"]) == {"J18.9", "J06.9", "K35.8", "OMIM:154700"}
    registry = tables["encounters"].loc[tables["encounters"]["source"] == "phenopacket"]
    assert not set(registry["encounter_id"]) & set(labels["encounter_id"])
    rare = labels["label_disease"].str.startswith("OMIM:")
    assert (labels.loc[rare, "label_category"] == "RARE").all()
    assert labels["label_severity"].isin(["low", "moderate", "high", "critical"]).all()


def test_registry_cases_keep_term_lists(tables, feature_params):
    cases = build_registry_cases(tables, feature_params["registry_sources"])
    assert len(cases) == 4
    assert list(cases.columns) == [
        "encounter_id",
        "label_disease",
        "present_terms",
        "excluded_terms",
        "age",
        "sex",
    ]
    assert (cases["label_disease"] == "OMIM:154700").all()
    assert cases["present_terms"].map(len).sum() > 0
    assert all(isinstance(t, list) for t in cases["excluded_terms"])


def test_no_patient_in_two_splits(assignment):
    kept = assignment[assignment["split"] != "dropped"]
    assert kept.groupby("patient_id")["split"].nunique().max() == 1
    assert set(kept["split"]) == {"train", "calibration", "test"}


def test_splits_are_ordered_in_time(assignment):
    ranges = assignment.groupby("split")["start"].agg(["min", "max"])
    assert ranges.loc["train", "max"] < ranges.loc["calibration", "min"]
    assert ranges.loc["calibration", "max"] < ranges.loc["test", "min"]
    counts = assignment["split"].value_counts()
    assert counts["train"] > counts["calibration"] and counts["train"] > counts["test"]


def test_loose_periods_keep_every_encounter(labels, feature_params):
    loose = split_encounters(labels, {**feature_params["split"], "strict_periods": False})
    assert (loose["split"] != "dropped").all()
    assert loose.groupby("patient_id")["split"].nunique().max() == 1


def test_bad_fractions_are_rejected(labels):
    with pytest.raises(ValueError, match="sum to 1"):
        split_encounters(labels, {"fractions": {"train": 0.7, "calibration": 0.2, "test": 0.2}})
    with pytest.raises(ValueError, match="fractions"):
        split_encounters(labels, {"fractions": {"train": 0.7, "test": 0.3}})


def test_cv_folds_group_patients_and_cover_train(labels, assignment):
    train = labels[
        labels["encounter_id"].isin(assignment.loc[assignment["split"] == "train", "encounter_id"])
    ]
    folds = assign_cv_folds(train.reset_index(drop=True), n_folds=3, seed=0)
    assert len(folds) == len(train) and set(folds["fold"]) == {0, 1, 2}
    merged = train.merge(folds, on="encounter_id")
    assert merged.groupby("patient_id")["fold"].nunique().max() == 1
    # stratified: every fold sees every frequent disease
    assert (pd.crosstab(merged["label_disease"], merged["fold"]) > 0).all().all()
    with pytest.raises(ValueError, match="cv_folds"):
        assign_cv_folds(train.head(2), n_folds=3, seed=0)
