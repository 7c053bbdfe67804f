"""Feature columns in clinical words, and the top contributions of one prediction."""

from __future__ import annotations

import numpy as np

from disease_pipeline.knowledge.catalogue import icd10_name
from disease_pipeline.pipelines.calibration.nodes import clinical_feature_labels
from disease_pipeline.predictor.explanations import feature_labels, top_contributions

HPO = {"HP:0001945": "Fever", "HP:0002315": "Headache"}
LABS = {"crp": "C-reactive protein", "heart_rate": "Heart rate"}
DISEASES = {"I10": "Essential (primary) hypertension"}


def test_feature_families_get_clinical_words():
    names = [
        "hpo_HP_0001945",
        "hpo_not_HP_0002315",
        "labs_crp_max",
        "vitals_heart_rate_mean",
        "missing_crp",
        "comorbidity_I10",
        "symptoms_onset_days_max",
        "symptoms_respiratory_count",
        "news2",
        "some_new_feature",
    ]
    labels = feature_labels(names, HPO, LABS, DISEASES)
    assert labels == {
        "hpo_HP_0001945": "Fever",
        "hpo_not_HP_0002315": "no Headache (explicitly absent)",
        "labs_crp_max": "C-reactive protein (max)",
        "vitals_heart_rate_mean": "Heart rate (mean)",
        "missing_crp": "C-reactive protein not measured",
        "comorbidity_I10": "comorbidity: Essential (primary) hypertension",
        "symptoms_onset_days_max": "days since onset (max)",
        "symptoms_respiratory_count": "respiratory symptoms (count)",
        "news2": "NEWS2 score",
        "some_new_feature": "some new feature",
    }


def test_top_contributions_are_ranked_by_size_with_direction():
    names = ["hpo_HP_0001945", "labs_crp_max", "age_years", "news2"]
    labels = feature_labels(names, HPO, LABS)
    items = top_contributions(
        np.array([0.8, -1.2, 0.0, 0.1]), np.array([1.0, np.nan, 40.0, 3.0]), names, labels, 3
    )
    assert [i["feature"] for i in items] == ["labs_crp_max", "hpo_HP_0001945", "news2"]
    assert [i["direction"] for i in items] == ["decreases", "increases", "increases"]
    assert items[0]["text"] == "C-reactive protein (max): not recorded"
    assert items[1]["text"] == "Fever: reported"
    assert items[0]["value"] is None


def test_a_finding_not_reported_is_never_worded_as_absent():
    """``hpo_<id> = 0`` means the clinician did not report the finding: "not reported",
    never "no" (only findings sent as absent, ``hpo_not_<id>``, are absent)."""
    names = ["hpo_HP_0001945", "hpo_not_HP_0002315"]
    labels = feature_labels(names, HPO, LABS)
    items = top_contributions(np.array([-0.8, 0.5]), np.array([0.0, 1.0]), names, labels, 2)
    assert items[0]["text"] == "Fever: not reported"
    assert items[1]["text"] == "no Headache (explicitly absent): reported"
    assert not any(i["text"].endswith(": no") for i in items)


def test_comorbidities_outside_the_catalogue_are_named_from_icd10_cm():
    """A comorbidity the common-disease catalogue does not hold (hypertension, tobacco
    use) is labelled with its ICD-10-CM name, not its bare code; an unknown code stays."""
    names = ["comorbidity_I10", "comorbidity_Z72", "comorbidity_E11_9", "comorbidity_U99"]
    labels = clinical_feature_labels(names)
    assert labels["comorbidity_I10"] == "comorbidity: Essential (primary) hypertension"
    assert labels["comorbidity_Z72"] == "comorbidity: Problems related to lifestyle"
    assert labels["comorbidity_E11_9"].startswith("comorbidity: Type 2 diabetes")
    assert labels["comorbidity_U99"] == "comorbidity: U99"
    assert icd10_name("Z72.0") == "Tobacco use" and icd10_name("U99") is None
