"""Parameter validation: every bad knob or code fails before generation, by name."""

from __future__ import annotations

import copy

import pytest
import yaml

from disease_pipeline.pipelines.simulate.nodes import validate_parameters
from tests.conftest import PROJECT_ROOT


def _with(params: dict, path: str, value) -> dict:
    out = copy.deepcopy(params)
    node = out
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return out


def test_test_and_base_parameters_are_valid(test_params):
    base = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_simulate.yml").read_text())
    assert validate_parameters(base["simulate"]) == base["simulate"]
    assert validate_parameters(test_params)["n_encounters"] <= 1000


def test_base_parameters_meet_the_issue_sizes():
    base = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_simulate.yml").read_text())
    sim = base["simulate"]
    assert sim["n_encounters"] == 50_000
    assert sim["rare"]["n_diseases"] >= 200
    assert sim["rare"]["share"] <= 0.05
    assert (sim["rare"]["cases_min"], sim["rare"]["cases_max"]) == (3, 60)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("n_encounters", -5, "simulate.n_encounters"),
        ("rare.n_diseases", -1, "simulate.rare.n_diseases"),
        ("rare.cases_min", 2.5, "simulate.rare.cases_min"),
        ("symptoms.default_frequency", 1.2, "simulate.symptoms.default_frequency"),
        ("symptoms.omission_rate", -0.1, "simulate.symptoms.omission_rate"),
        ("rare.share", 1.5, "simulate.rare.share"),
        ("errors.rate", 2.0, "simulate.errors.rate"),
        ("patients.email_share", "many", "simulate.patients.email_share"),
        ("symptoms.background_mean", -1.0, "simulate.symptoms.background_mean"),
        ("labels.noise_share", 1.5, "simulate.labels.noise_share"),
        ("rare.min_disease_terms", -1, "simulate.rare.min_disease_terms"),
        ("common.frequency_logit_sd", -0.5, "simulate.common.frequency_logit_sd"),
        ("rare.complaint_acuity_bonus", -0.1, "simulate.rare.complaint_acuity_bonus"),
        ("symptoms.less_specific_share", 1.5, "simulate.symptoms.less_specific_share"),
        ("sites.season_spike.site", "mars", "simulate.sites.season_spike.site"),
        ("end_date", "2020-01-01", "simulate.end_date"),
        ("timezone", "Mars/Olympus", "simulate.timezone"),
        ("rare.share", 0.9, "simulate.rare.share"),  # more rare cases than n_diseases x cases_max
        ("rare.acute_share", 1.5, "simulate.rare.acute_share"),
        ("rare.acute_share", -0.1, "simulate.rare.acute_share"),
    ],
)
def test_bad_values_name_the_parameter(test_params, path, value, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        validate_parameters(_with(test_params, path, value))


def test_unknown_hpo_code_is_named(test_params):
    terms = dict(test_params["symptoms"]["background_terms"], **{"HP:9999999": 1})
    with pytest.raises(ValueError, match=r"HP:9999999"):
        validate_parameters(_with(test_params, "symptoms.background_terms", terms))


def test_non_phenotype_hpo_term_is_refused(test_params):
    terms = {"HP:0000006": 1}  # autosomal dominant inheritance: a live term, not a phenotype
    with pytest.raises(ValueError, match=r"HP:0000006"):
        validate_parameters(_with(test_params, "symptoms.background_terms", terms))


def test_unknown_icd10_codes_are_named(test_params):
    with pytest.raises(ValueError, match=r"Z99\.99"):
        validate_parameters(_with(test_params, "common.include", ["J11.1", "Z99.99"]))
    codes = dict(test_params["comorbidities"]["codes"])
    codes["E11..9"] = codes.pop("E11.9")
    with pytest.raises(ValueError, match=r"E11\.\.9"):
        validate_parameters(_with(test_params, "comorbidities.codes", codes))


def test_unknown_rare_disease_is_named(test_params):
    with pytest.raises(ValueError, match=r"OMIM:000000"):
        validate_parameters(_with(test_params, "rare.include", ["OMIM:000000"]))


def test_misspelt_key_is_refused(test_params):
    params = copy.deepcopy(test_params)
    params["errors"]["rat"] = params["errors"].pop("rate")
    with pytest.raises(ValueError, match=r"simulate\.errors: unknown key\(s\) rat"):
        validate_parameters(params)


def test_unknown_vital_or_lab_in_shifts_is_named(test_params):
    with pytest.raises(ValueError, match="pulse"):
        validate_parameters(_with(test_params, "vitals.generic_shift", {"pulse": 3}))
    with pytest.raises(ValueError, match="9999-9"):
        validate_parameters(_with(test_params, "labs.generic_shift", {"9999-9": 3}))


def test_bad_comorbidity_spec_is_named(test_params):
    codes = copy.deepcopy(test_params["comorbidities"]["codes"])
    codes["I10"]["max_prevalence"] = 1.4
    with pytest.raises(ValueError, match=r"codes\[I10\]\.max_prevalence"):
        validate_parameters(_with(test_params, "comorbidities.codes", codes))
    codes = copy.deepcopy(test_params["comorbidities"]["codes"])
    codes["E11.9"]["labs"] = {"0000-0": 1}
    with pytest.raises(ValueError, match=r"codes\[E11\.9\]\.labs.*0000-0"):
        validate_parameters(_with(test_params, "comorbidities.codes", codes))


def test_unsupported_rare_database_is_named(test_params):
    with pytest.raises(ValueError, match=r"simulate\.rare\.databases.*DECIPHER"):
        validate_parameters(_with(test_params, "rare.databases", ["OMIM", "DECIPHER"]))
