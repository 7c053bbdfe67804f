"""Schema of ``simulate`` (``parameters_simulate.yml``): types and keys only.

``pipelines.simulate.config.validate`` (the pipeline's first node) still checks the
ranges, dates and codes against the knowledge base.
"""

from __future__ import annotations

from disease_pipeline.params.base import (
    NonNegativeInt,
    Pair,
    ParamsModel,
    PositiveInt,
    Seed,
    Share,
    optional_key,
)


class Patients(ParamsModel):
    """The simulated population."""

    encounters_per_patient_mean: float
    other_sex_share: Share
    unknown_sex_share: Share
    email_share: Share
    smoker_share: Share
    smoker_min_age: NonNegativeInt


class Encounters(ParamsModel):
    """Arrival times and encounter classes."""

    hour_weights: list[float]
    class_slope: float
    emergency_midpoint: float


class Common(ParamsModel):
    """Common diseases of the catalogue."""

    include: list[str]
    onset_days_median: float
    onset_days_sigma: float
    frequency_logit_sd: float


class SiteSpec(ParamsModel):
    """One latent care site."""

    share: Share
    tier_slope: float
    child_factor: float
    snomed_share: Share
    lab_alt_unit_share: Share
    symptoms_only: Share
    vitals_only: Share


class SeasonSpike(ParamsModel):
    """A winter surge of some diagnoses at one site."""

    site: str
    start: str
    end: str
    codes: dict[str, float]


class AssayChange(ParamsModel):
    """A laboratory assay that reads differently from a date on."""

    site: str | None
    date: str
    loinc: str
    factor: float
    unit: str


class Sites(ParamsModel):
    """Latent care sites, a seasonal surge and an assay change."""

    reference_acuity: Share
    modality_acuity_slope: float
    specs: dict[str, SiteSpec]
    season_spike: SeasonSpike
    assay_change: AssayChange


class Labels(ParamsModel):
    """Label noise of common diagnoses."""

    noise_share: Share
    neighbours: PositiveInt


class Outcomes(ParamsModel):
    """The outcome model severity is rated from."""

    acuity_weight: float
    age_weight: float
    comorbidity_weight: float
    tier_weight: float
    risk_noise_sd: float
    admission_intercept: float
    icu_intercept: float
    death_intercept: float
    los_median_days: float
    los_sigma: float
    high_los_days: NonNegativeInt
    rater_noise: Share


class MeasurementShift(ParamsModel):
    """Vital-sign and lab shifts an HPO term brings (either may be left out)."""

    labs: dict[str, float] = optional_key()  # a term may shift vitals only
    vitals: dict[str, float] = optional_key()  # a term may shift labs only


class OnsetDays(ParamsModel):
    """A log-normal onset: median days and spread."""

    median: float
    sigma: float


class Rare(ParamsModel):
    """Rare diseases and their cases."""

    n_diseases: NonNegativeInt
    share: Share
    cases_min: NonNegativeInt
    cases_max: NonNegativeInt
    case_weight_sigma: float
    databases: list[str]
    min_present_terms: NonNegativeInt
    include: list[str]
    present_symptoms_mean: float
    min_present_symptoms: NonNegativeInt
    max_present_symptoms: NonNegativeInt
    min_disease_terms: NonNegativeInt
    imprecise_share: Share
    parent_share: Share
    base_acuity_beta: Pair
    onset_days_median: float
    onset_days_sigma: float
    acute_share: Share
    presenting_share: Share
    presenting_onset_days: OnsetDays
    prediagnostic_share: Share
    prediagnostic_max_terms: NonNegativeInt
    complaint_acuity_bonus: float
    shift_min_frequency: Share
    measurement_shifts: dict[str, MeasurementShift]


class OnsetHeaping(ParamsModel):
    """Recalled onsets rounded to preferred values."""

    share: Share
    days: list[float]


class Symptoms(ParamsModel):
    """Recorded findings."""

    default_frequency: Share
    acuity_gain: Share
    omission_rate: Share
    less_specific_share: Share
    background_mean: float
    background_terms: dict[str, float]
    incidental_recorded: Share
    incidental_terms: dict[str, Share]
    vocabulary_mean: float
    vocabulary_shape: float
    vocabulary_power: float
    comorbidity_onset_days: OnsetDays
    excluded_mean: float
    differential_width: NonNegativeInt
    severity_share: Share
    onset_share: Share
    onset_heaping: OnsetHeaping
    reported_share: Share


class Acuity(ParamsModel):
    """The hidden acuity of an encounter."""

    concentration: float
    age_slope_over_65: float
    infant_bonus: float
    comorbidity_effect: float
    noise_sd: float


class Measurements(ParamsModel):
    """How vital signs and labs vary between patients and with disease."""

    patient_icc: Share
    acuity_floor: Share
    response_sd: float
    hospital_spread: float
    max_shift_sd: float
    min_ratio: Share
    vital_max_shift_sd: float


class Vitals(ParamsModel):
    """Vital-sign units and shifts."""

    alt_unit_share: Share
    generic_shift: dict[str, float]
    child_shift: dict[str, float]
    child_scale_years: float


class Labs(ParamsModel):
    """Lab units, ordering and shifts."""

    lowercase_unit_share: Share
    missing_acuity_effect: float
    suspicion_effect: float
    generic_shift: dict[str, float]
    delay_minutes: Pair


class Comorbidity(ParamsModel):
    """One comorbidity's prevalence curve and effects (effects may be left out)."""

    name: str
    max_prevalence: Share
    midpoint_age: float
    spread_years: float
    vitals: dict[str, float] = optional_key()  # not every comorbidity shifts vitals
    labs: dict[str, float] = optional_key()  # not every comorbidity shifts labs
    risk: dict[str, float] = optional_key()  # relative risks of diagnoses
    findings: dict[str, Share] = optional_key()  # HPO terms it adds


class Comorbidities(ParamsModel):
    """Comorbidities recorded on admission forms."""

    messy_share: Share
    codes: dict[str, Comorbidity]


class Notes(ParamsModel):
    """Free-text notes."""

    share: Share
    name_share: Share


class Rate(ParamsModel):
    """A rate of records (entry errors, duplicates)."""

    rate: Share


class SimulateParams(ParamsModel):
    """``simulate``: fabricated hospital exports (docs/simulator.md)."""

    seed: Seed
    world_seed: Seed | None
    n_encounters: NonNegativeInt
    start_date: str
    end_date: str
    timezone: str
    faker_locale: str
    validate_sample: NonNegativeInt
    patients: Patients
    encounters: Encounters
    common: Common
    sites: Sites
    labels: Labels
    outcomes: Outcomes
    rare: Rare
    symptoms: Symptoms
    acuity: Acuity
    measurements: Measurements
    vitals: Vitals
    labs: Labs
    comorbidities: Comorbidities
    notes: Notes
    errors: Rate
    duplicates: Rate
