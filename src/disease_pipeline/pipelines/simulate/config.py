"""Validation of ``parameters_simulate.yml``: every bad knob fails early, by name."""

from __future__ import annotations

import copy
import math
import zoneinfo
from collections.abc import Mapping
from datetime import date
from typing import Any

import pandas as pd

from disease_pipeline.knowledge.catalogue import ICD10_PATTERN
from disease_pipeline.knowledge.hpo import Ontology

#: Every key the simulator reads, by section (``None`` = a scalar or list at top level).
EXPECTED_KEYS: dict[str | None, set[str]] = {
    None: {
        "seed", "world_seed", "n_encounters", "start_date", "end_date", "timezone", "faker_locale",
        "validate_sample", "patients", "encounters", "common", "rare", "symptoms",
        "acuity", "vitals", "labs", "comorbidities", "notes", "errors", "duplicates",
        "sites", "labels", "outcomes", "measurements",
    },
    "patients": {
        "encounters_per_patient_mean", "other_sex_share", "unknown_sex_share",
        "email_share", "smoker_share", "smoker_min_age",
    },
    "encounters": {"hour_weights", "class_slope", "emergency_midpoint"},
    "common": {"include", "onset_days_median", "onset_days_sigma", "frequency_logit_sd"},
    "rare": {
        "n_diseases", "share", "cases_min", "cases_max", "case_weight_sigma", "databases",
        "min_present_terms", "include", "max_present_symptoms", "present_symptoms_mean",
        "base_acuity_beta", "min_present_symptoms", "imprecise_share", "parent_share",
        "complaint_acuity_bonus", "min_disease_terms", "shift_min_frequency", "measurement_shifts",
        "onset_days_median", "onset_days_sigma", "acute_share", "presenting_share",
        "presenting_onset_days", "prediagnostic_share", "prediagnostic_max_terms",
    },
    "symptoms": {
        "default_frequency", "acuity_gain", "omission_rate", "background_mean",
        "background_terms", "excluded_mean", "severity_share", "onset_share",
        "reported_share", "incidental_recorded", "incidental_terms", "vocabulary_mean",
        "vocabulary_power", "vocabulary_shape", "comorbidity_onset_days", "differential_width",
        "onset_heaping", "less_specific_share",
    },
    "acuity": {
        "concentration", "age_slope_over_65", "infant_bonus", "comorbidity_effect", "noise_sd",
    },
    "vitals": {"alt_unit_share", "generic_shift", "child_shift", "child_scale_years"},
    "labs": {
        "lowercase_unit_share", "missing_acuity_effect", "suspicion_effect", "generic_shift",
        "delay_minutes",
    },
    "sites": {"reference_acuity", "modality_acuity_slope", "specs", "season_spike", "assay_change"},
    "labels": {"noise_share", "neighbours"},
    "outcomes": {
        "acuity_weight", "age_weight", "comorbidity_weight", "tier_weight", "risk_noise_sd",
        "admission_intercept", "icu_intercept", "death_intercept", "los_median_days",
        "los_sigma", "high_los_days", "rater_noise",
    },
    "measurements": {
        "patient_icc", "acuity_floor", "response_sd", "max_shift_sd", "hospital_spread",
        "min_ratio",
        "vital_max_shift_sd",
    },
    "comorbidities": {"messy_share", "codes"},
    "notes": {"share", "name_share"},
    "errors": {"rate"},
    "duplicates": {"rate"},
}  # fmt: skip

SHARES = [
    "patients.other_sex_share", "patients.unknown_sex_share", "patients.email_share",
    "patients.smoker_share", "rare.share", "rare.acute_share",
    "rare.presenting_share", "rare.prediagnostic_share", "symptoms.default_frequency",
    "symptoms.acuity_gain", "symptoms.omission_rate",
    "symptoms.severity_share", "symptoms.onset_share", "symptoms.reported_share",
    "symptoms.incidental_recorded", "symptoms.onset_heaping.share", "rare.imprecise_share",
    "rare.parent_share", "rare.shift_min_frequency", "symptoms.less_specific_share",
    "labels.noise_share", "outcomes.rater_noise",
    "measurements.patient_icc", "measurements.acuity_floor", "measurements.min_ratio",
    "sites.reference_acuity",
    "acuity.infant_bonus", "acuity.comorbidity_effect",
    "encounters.emergency_midpoint", "vitals.alt_unit_share",
    "labs.lowercase_unit_share", "comorbidities.messy_share", "notes.share", "notes.name_share",
    "errors.rate", "duplicates.rate",
]  # fmt: skip
COUNTS = [
    "seed", "n_encounters", "validate_sample", "patients.smoker_min_age", "rare.n_diseases",
    "rare.cases_min", "rare.cases_max", "rare.min_present_terms", "rare.max_present_symptoms",
    "rare.min_present_symptoms", "rare.min_disease_terms", "rare.prediagnostic_max_terms",
    "labels.neighbours",
    "symptoms.differential_width",
    "outcomes.high_los_days",
]  # fmt: skip
NON_NEGATIVE = [
    "symptoms.background_mean", "symptoms.excluded_mean", "acuity.noise_sd",
    "symptoms.vocabulary_mean", "symptoms.vocabulary_power", "labs.suspicion_effect",
    "outcomes.risk_noise_sd", "outcomes.los_sigma", "measurements.response_sd",
    "measurements.hospital_spread", "symptoms.vocabulary_shape", "sites.modality_acuity_slope",
    "acuity.age_slope_over_65", "common.onset_days_sigma", "common.frequency_logit_sd",
    "rare.onset_days_sigma", "rare.presenting_onset_days.sigma",
    "rare.case_weight_sigma", "labs.missing_acuity_effect",
    "encounters.class_slope", "rare.complaint_acuity_bonus",
]  # fmt: skip
POSITIVE = [
    "patients.encounters_per_patient_mean", "acuity.concentration", "common.onset_days_median",
    "rare.onset_days_median", "rare.presenting_onset_days.median",
    "vitals.child_scale_years", "rare.present_symptoms_mean",
    "outcomes.los_median_days", "measurements.max_shift_sd", "measurements.vital_max_shift_sd",
    "labels.neighbours", "symptoms.differential_width",
]  # fmt: skip


def _get(params: Mapping[str, Any], path: str) -> Any:
    node: Any = params
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ValueError(f"parameter simulate.{path} is missing")
        node = node[part]
    return node


def _number(params: Mapping[str, Any], path: str) -> float:
    value = _get(params, path)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"parameter simulate.{path} must be a finite number, got {value!r}")
    return float(value)


def _check_keys(params: Mapping[str, Any]) -> None:
    for section, keys in EXPECTED_KEYS.items():
        node = params if section is None else _get(params, section)
        where = "simulate" if section is None else f"simulate.{section}"
        if not isinstance(node, Mapping):
            raise ValueError(f"parameter {where} must be a mapping")
        unknown = sorted(set(node) - keys)
        missing = sorted(keys - set(node))
        if unknown:
            raise ValueError(f"parameter {where}: unknown key(s) {', '.join(unknown)}")
        if missing:
            raise ValueError(f"parameter {where}: missing key(s) {', '.join(missing)}")


def _check_scalars(params: Mapping[str, Any]) -> None:
    for path in SHARES:
        value = _number(params, path)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"parameter simulate.{path} must lie in [0, 1], got {value}")
    for path in COUNTS:
        value = _get(params, path)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(
                f"parameter simulate.{path} must be a non-negative integer, got {value!r}"
            )
    world = params["world_seed"]
    if world is not None and (isinstance(world, bool) or not isinstance(world, int) or world < 0):
        raise ValueError(
            f"parameter simulate.world_seed must be null or a non-negative integer, got {world!r}"
        )
    for path in NON_NEGATIVE:
        if _number(params, path) < 0:
            raise ValueError(f"parameter simulate.{path} must not be negative")
    for path in POSITIVE:
        if _number(params, path) <= 0:
            raise ValueError(f"parameter simulate.{path} must be positive")
    if _number(params, "patients.encounters_per_patient_mean") < 1:
        raise ValueError("parameter simulate.patients.encounters_per_patient_mean must be >= 1")
    if params["n_encounters"] < 1:
        raise ValueError("parameter simulate.n_encounters must be at least 1")
    sex_other = params["patients"]["other_sex_share"] + params["patients"]["unknown_sex_share"]
    if sex_other > 1:
        raise ValueError(
            "parameters simulate.patients.other_sex_share + unknown_sex_share exceed 1"
        )


def _check_dates(params: Mapping[str, Any]) -> None:
    try:
        start = date.fromisoformat(str(params["start_date"]))
        end = date.fromisoformat(str(params["end_date"]))
    except ValueError as exc:
        raise ValueError(f"parameter simulate.start_date/end_date: {exc}") from exc
    if end <= start:
        raise ValueError("parameter simulate.end_date must be after simulate.start_date")
    try:
        zoneinfo.ZoneInfo(str(params["timezone"]))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"parameter simulate.timezone: unknown zone {params['timezone']!r}"
        ) from exc
    hours = params["encounters"]["hour_weights"]
    if len(hours) != 24 or any(_bad_weight(w) for w in hours) or sum(hours) <= 0:
        raise ValueError(
            "parameter simulate.encounters.hour_weights must be 24 non-negative numbers"
        )


def _bad_weight(value: Any) -> bool:
    return isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0


def _check_pairs(params: Mapping[str, Any]) -> None:
    rare = params["rare"]
    if rare["cases_min"] < 1 or rare["cases_max"] < rare["cases_min"]:
        raise ValueError("parameters simulate.rare.cases_min/cases_max: need 1 <= min <= max")
    low_terms, high_terms = rare["min_present_symptoms"], rare["max_present_symptoms"]
    if not 1 <= low_terms <= high_terms:
        raise ValueError(
            "parameters simulate.rare.min_present_symptoms/max_present_symptoms: need "
            "1 <= min <= max"
        )
    beta = rare["base_acuity_beta"]
    if len(beta) != 2 or any(_bad_weight(b) or b == 0 for b in beta):
        raise ValueError("parameter simulate.rare.base_acuity_beta must be two positive numbers")
    delay = params["labs"]["delay_minutes"]
    if len(delay) != 2 or any(_bad_weight(d) for d in delay) or delay[1] < delay[0]:
        raise ValueError("parameter simulate.labs.delay_minutes must be [min, max] minutes >= 0")
    n_rare = round(rare["share"] * params["n_encounters"])
    low, high = rare["n_diseases"] * rare["cases_min"], rare["n_diseases"] * rare["cases_max"]
    if rare["n_diseases"] and not low <= n_rare <= high:
        raise ValueError(
            f"parameter simulate.rare.share: {rare['share']} x {params['n_encounters']} encounters "
            f"= {n_rare} rare encounters, outside [{low}, {high}] allowed by n_diseases x cases"
        )


def _check_codes(
    params: Mapping[str, Any],
    ontology: Ontology,
    common_codes: set[str],
    lab_table: pd.DataFrame,
    rare_ids: set[str],
) -> None:
    for code, weight in params["symptoms"]["background_terms"].items():
        if not ontology.is_phenotype(str(code)):
            raise ValueError(
                f"parameter simulate.symptoms.background_terms: {code!r} is not a live HPO "
                "phenotype term"
            )
        if _bad_weight(weight):
            raise ValueError(f"parameter simulate.symptoms.background_terms[{code}]: bad weight")
    for code in params["common"]["include"]:
        if code not in common_codes:
            raise ValueError(
                f"parameter simulate.common.include: ICD-10 code {code!r} is not in the catalogue"
            )
    for code in params["rare"]["include"]:
        if code not in rare_ids:
            raise ValueError(
                f"parameter simulate.rare.include: disease {code!r} is unknown or not in "
                "simulate.rare.databases"
            )
    for path in ("vitals.generic_shift", "vitals.child_shift"):
        known = set(lab_table.loc[lab_table["kind"] == "vital", "short"])
        for key in _get(params, path):
            if key not in known:
                raise ValueError(f"parameter simulate.{path}: unknown vital {key!r}")
    labs = set(lab_table.loc[lab_table["kind"] == "lab", "loinc"])
    for key in params["labs"]["generic_shift"]:
        if key not in labs:
            raise ValueError(f"parameter simulate.labs.generic_shift: unknown LOINC {key!r}")
    vitals = set(lab_table.loc[lab_table["kind"] == "vital", "short"])
    for code, spec in params["comorbidities"]["codes"].items():
        _check_comorbidity(str(code), spec, vitals, labs)
        where = f"simulate.comorbidities.codes[{code}]"
        for target in spec.get("risk", {}):
            if target not in common_codes:
                raise ValueError(f"parameter {where}.risk: {target!r} is not in the catalogue")
        _check_terms(ontology, spec.get("findings", {}), f"{where}.findings")
    _check_terms(ontology, params["symptoms"]["incidental_terms"], "symptoms.incidental_terms")
    for term, rule in params["rare"]["measurement_shifts"].items():
        where = f"simulate.rare.measurement_shifts[{term}]"
        if not ontology.is_phenotype(str(term)):
            raise ValueError(f"parameter {where}: {term!r} is not a live HPO phenotype")
        if set(rule) - {"vitals", "labs"}:
            raise ValueError(f"parameter {where}: only vitals and labs")
        for key in rule.get("vitals", {}):
            if key not in vitals:
                raise ValueError(f"parameter {where}.vitals: unknown vital {key!r}")
        for key in rule.get("labs", {}):
            if key not in labs:
                raise ValueError(f"parameter {where}.labs: unknown LOINC {key!r}")
    _check_sites(params["sites"], common_codes, lab_table)
    weights = params["symptoms"]["background_terms"].values()
    if params["symptoms"]["background_mean"] > 0 and not sum(weights) > 0:
        raise ValueError("parameter simulate.symptoms.background_terms: no positive weight")


def _check_terms(ontology: Ontology, terms: Mapping[str, Any], where: str) -> None:
    for term, share in terms.items():
        if not ontology.is_phenotype(str(term)):
            raise ValueError(f"parameter simulate.{where}: {term!r} is not a live HPO phenotype")
        if _bad_weight(share) or share > 1:
            raise ValueError(f"parameter simulate.{where}[{term}] must lie in [0, 1]")


SITE_KEYS = {"share", "tier_slope", "child_factor", "snomed_share", "lab_alt_unit_share",
             "symptoms_only", "vitals_only"}  # fmt: skip


def _check_sites(sites: Mapping[str, Any], common_codes: set[str], lab_table: pd.DataFrame) -> None:
    specs = sites["specs"]
    if not isinstance(specs, Mapping) or not specs:
        raise ValueError("parameter simulate.sites.specs must name at least one site")
    for name, spec in specs.items():
        where = f"simulate.sites.specs[{name}]"
        if set(spec) != SITE_KEYS:
            raise ValueError(f"parameter {where}: keys must be {', '.join(sorted(SITE_KEYS))}")
        for key in SITE_KEYS - {"tier_slope", "child_factor", "share"}:
            if _bad_weight(spec[key]) or spec[key] > 1:
                raise ValueError(f"parameter {where}.{key} must lie in [0, 1]")
        if spec["symptoms_only"] + spec["vitals_only"] > 1:
            raise ValueError(f"parameter {where}: symptoms_only + vitals_only exceed 1")
        if _bad_weight(spec["share"]) or _bad_weight(spec["child_factor"]):
            raise ValueError(f"parameter {where}: share and child_factor must be >= 0")
    spike, change = sites["season_spike"], sites["assay_change"]
    for what, block in (("season_spike", spike), ("assay_change", change)):
        if block["site"] not in specs and not (what == "assay_change" and block["site"] is None):
            raise ValueError(
                f"parameter simulate.sites.{what}.site: unknown site {block['site']!r}"
            )
    for code in spike["codes"]:
        if code not in common_codes:
            raise ValueError(
                f"parameter simulate.sites.season_spike.codes: {code!r} not in catalogue"
            )
    rows = lab_table.set_index("loinc")
    if str(change["loinc"]) not in rows.index:
        raise ValueError(
            f"parameter simulate.sites.assay_change.loinc: unknown {change['loinc']!r}"
        )
    row = rows.loc[str(change["loinc"])]
    if change["unit"] not in {row["canonical_unit"], *row["units"], *row["affine"]}:
        raise ValueError(f"parameter simulate.sites.assay_change.unit: {change['unit']!r} unknown")


COMORBIDITY_KEYS = {
    "name", "max_prevalence", "midpoint_age", "spread_years", "vitals", "labs", "risk", "findings",
}  # fmt: skip


def _check_comorbidity(
    code: str, spec: Mapping[str, Any], vitals: set[str], labs: set[str]
) -> None:
    where = f"simulate.comorbidities.codes[{code}]"
    if not ICD10_PATTERN.match(code):
        raise ValueError(f"parameter {where}: {code!r} is not a well-formed ICD-10 code")
    unknown = sorted(set(spec) - COMORBIDITY_KEYS)
    missing = sorted({"name", "max_prevalence", "midpoint_age", "spread_years"} - set(spec))
    if unknown or missing:
        raise ValueError(f"parameter {where}: unknown {unknown or '-'}, missing {missing or '-'}")
    if _bad_weight(spec["max_prevalence"]) or spec["max_prevalence"] > 1:
        raise ValueError(f"parameter {where}.max_prevalence must lie in [0, 1]")
    if _bad_weight(spec["spread_years"]) or spec["spread_years"] == 0:
        raise ValueError(f"parameter {where}.spread_years must be positive")
    for key in spec.get("vitals", {}):
        if key not in vitals:
            raise ValueError(f"parameter {where}.vitals: unknown vital {key!r}")
    for key in spec.get("labs", {}):
        if key not in labs:
            raise ValueError(f"parameter {where}.labs: unknown LOINC {key!r}")


def _check_catalogue(ontology: Ontology, common: pd.DataFrame) -> None:
    for row in common.itertuples(index=False):
        for symptom in row.symptoms:
            if not ontology.is_phenotype(symptom["hpo"]):
                raise ValueError(
                    f"common disease {row.icd10}: symptom {symptom['hpo']!r} is not a live HPO term"
                )
            if not 0 <= symptom["frequency"] <= 1:
                raise ValueError(
                    f"common disease {row.icd10}: frequency of {symptom['hpo']} not in [0, 1]"
                )


def validate(
    params: Mapping[str, Any],
    ontology: Ontology,
    common: pd.DataFrame,
    lab_table: pd.DataFrame,
    rare_ids: set[str],
) -> dict[str, Any]:
    """Check every knob of ``simulate:`` and return a deep copy of the parameters.

    Raises:
        ValueError: naming the parameter (``simulate.rare.share``) or code that is wrong.
    """
    if not isinstance(params, Mapping):
        raise ValueError("parameter simulate must be a mapping")
    _check_keys(params)
    _check_scalars(params)
    _check_dates(params)
    _check_pairs(params)
    _check_codes(params, ontology, set(common["icd10"]), lab_table, rare_ids)
    _check_catalogue(ontology, common)
    return copy.deepcopy(dict(params))
