"""The curated common-disease catalogue and the LOINC table."""

import copy

import pytest

from disease_pipeline.knowledge.catalogue import (
    ICD10_PATTERN,
    RARE_PREVALENCE_PER_10K,
    UnitConversionError,
    common_diseases_table,
    from_canonical,
    load_common_diseases,
    load_lab_table,
    normalise_icd10,
    to_canonical,
)
from disease_pipeline.knowledge.hpo import load_ontology

VITALS = {"heart_rate", "resp_rate", "temperature", "spo2", "systolic_bp", "diastolic_bp"}


def test_catalogue_has_at_least_40_common_conditions_with_sources():
    diseases = load_common_diseases()
    assert len(diseases) >= 40
    assert diseases["icd10"].is_unique
    assert (diseases["prevalence_per_10k"] >= RARE_PREVALENCE_PER_10K).all()
    assert set(diseases["category"]) == {"COMMON"}
    assert diseases["source"].str.len().gt(3).all()
    for required in ("E11.9", "I10", "J18.9", "N39.0", "A09", "J45"):
        assert required in set(diseases["icd10"]), required


def test_icd10_codes_are_well_formed():
    for code in load_common_diseases()["icd10"]:
        assert ICD10_PATTERN.match(code), code


def test_every_symptom_is_a_live_hpo_phenotype_with_a_probability():
    onto = load_ontology()
    for row in load_common_diseases().itertuples():
        assert len(row.symptoms) >= 5, row.icd10
        for symptom in row.symptoms:
            assert symptom["hpo"] in onto, (row.icd10, symptom["hpo"])
            assert onto.is_phenotype(symptom["hpo"]), (row.icd10, symptom["hpo"])
            assert onto.names[symptom["hpo"]] == symptom["name"]
            assert 0 < symptom["frequency"] <= 1


def test_patterns_and_shifts_are_plausible():
    labs = set(load_lab_table()["loinc"])
    for row in load_common_diseases().itertuples():
        assert 0 <= row.male_share <= 1 and 0 <= row.base_acuity <= 1
        assert 1 <= row.seasonality["peak_month"] <= 12
        assert 0 <= row.seasonality["amplitude"] <= 1
        assert row.age["min"] <= row.age["mean"] <= row.age["max"]
        assert 1 <= row.severity_tier <= 5
        assert set(row.vitals or {}) <= VITALS, row.icd10
        assert set(row.labs or {}) <= labs, row.icd10


def test_chronic_diseases_have_long_onsets_and_acute_ones_use_the_default():
    onset = load_common_diseases().set_index("icd10")["onset_days"]
    for code, block in onset.items():
        assert block is None or (block["median"] > 0 and block["sigma"] >= 0), code
    chronic = ["I10", "E11.9", "E03.9", "I50.9", "K21", "M17.9", "J47", "J32", "D50.9", "I20.9"]
    for code in chronic:
        assert onset[code] is not None and onset[code]["median"] >= 90, code
    for code in ("J06.9", "J11.1", "I21", "I63.9", "K35.8", "A41.9", "M10.9", "T78.0"):
        assert onset[code] is None, code  # acute: the simulator's default
    assert onset.notna().sum() >= 25  # many chronic/subacute conditions, not a token few


def _records_with_onset(code: str, block) -> list[dict]:
    records = copy.deepcopy(load_common_diseases().drop(columns="category").to_dict("records"))
    for record in records:
        if record["icd10"] == code:
            record["onset_days"] = block
    return records


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ({"median": 0, "sigma": 1.0}, "onset_days.median"),
        ({"median": -30, "sigma": 1.0}, "onset_days.median"),
        ({"median": "a year", "sigma": 1.0}, "onset_days.median"),
        ({"median": float("nan"), "sigma": 1.0}, "onset_days.median"),
        ({"median": 365, "sigma": -0.5}, "onset_days.sigma"),
        ({"median": 365, "sigma": True}, "onset_days.sigma"),
        ({"median": 365}, "onset_days: .*missing.*sigma"),
        ({"median": 365, "sigma": 1.0, "mean": 2}, "onset_days: .*unknown.*mean"),
        (365, "onset_days must be a mapping"),
    ],
)
def test_bad_onset_values_are_refused_naming_the_disease_and_field(block, field):
    with pytest.raises(ValueError, match=rf"common disease E03\.9: {field}"):
        common_diseases_table(_records_with_onset("E03.9", block))


def test_valid_onset_block_is_kept_and_missing_one_is_none():
    table = common_diseases_table(_records_with_onset("J06.9", {"median": 2, "sigma": 0}))
    onset = table.set_index("icd10")["onset_days"]
    assert onset["J06.9"] == {"median": 2.0, "sigma": 0.0}
    assert onset["I21"] is None


def test_lab_table_has_labs_and_vitals_with_plausible_ranges():
    table = load_lab_table()
    assert table["loinc"].is_unique and table["short"].is_unique
    assert set(table.loc[table["kind"] == "vital", "short"]) == VITALS
    assert (table["kind"] == "lab").sum() >= 14
    for row in table.itertuples():
        assert row.units[row.canonical_unit] == 1.0
        assert row.plausible["min"] < row.normal["mean"] < row.plausible["max"]
        assert 0 <= row.missing_rate < 1


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "canonical"),
    [
        ("2345-7", 5.5, "mmol/L", 99.09),  # glucose
        ("2160-0", 88.42, "umol/L", 1.0),  # creatinine
        ("718-7", 135, "g/L", 13.5),  # haemoglobin
        ("8310-5", 98.6, "[degF]", 37.0),  # body temperature
        ("2345-7", 99, "mg/dl", 99.0),  # spelling variant of the canonical unit
    ],
)
def test_known_conversions(loinc, value, unit, canonical):
    assert to_canonical(loinc, value, unit) == pytest.approx(canonical, rel=1e-3)


def test_every_conversion_round_trips():
    for row in load_lab_table().itertuples():
        for unit in [*row.units, *row.affine]:
            value = row.normal["mean"]
            there = from_canonical(row.loinc, value, unit)
            assert to_canonical(row.loinc, there, unit) == pytest.approx(value), (row.loinc, unit)


def test_unknown_units_and_codes_name_the_problem():
    with pytest.raises(UnitConversionError, match=r"'2345-7'.*'mg'"):
        to_canonical("2345-7", 1.0, "mg")
    with pytest.raises(UnitConversionError, match="99999-9"):
        to_canonical("99999-9", 1.0, "mg/dL")


@pytest.mark.parametrize(
    ("raw", "clean"), [("j18", "J18"), ("e119", "E11.9"), (" I10 ", "I10"), ("j45.909", "J45.909")]
)
def test_icd10_spelling_is_normalised(raw, clean):
    assert normalise_icd10(raw) == clean


@pytest.mark.parametrize("bad", ["J18..9", "18.9", "", "HP:0001945"])
def test_malformed_icd10_is_rejected(bad):
    with pytest.raises(ValueError, match="ICD-10"):
        normalise_icd10(bad)
