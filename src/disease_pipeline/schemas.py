"""Pandera schemas of the canonical ``int_*`` tables (layer 02_intermediate).

One ``DataFrameModel`` per table of ``docs/data_contracts.md``: exact columns in
contract order, dtypes (coerced), allowed values and keys. ``TABLE_SCHEMAS`` maps
catalog dataset names to their schema. Datetimes are UTC (``start``,
``collected_at``); ``birth_date`` is a naive date at midnight.
"""

from __future__ import annotations

from typing import Annotated

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from disease_pipeline.core.levels import SEVERITY_LEVELS
from disease_pipeline.knowledge.hpo import load_ontology

UTCDateTime = Annotated[pd.DatetimeTZDtype, "ns", "UTC"]

SEXES = ["female", "male", "other", "unknown"]
ENCOUNTER_CLASSES = ["AMB", "EMER", "IMP"]
DIAGNOSIS_SYSTEMS = ["ICD10", "OMIM", "ORPHA"]
CATEGORIES = ["COMMON", "RARE"]
ROLES = ["primary", "comorbidity"]
SEVERITIES = list(SEVERITY_LEVELS)
#: ``source`` of a canonical row; ``int_quarantine`` also uses ``lis``.
RECORD_SOURCES = ["fhir", "forms", "phenopacket"]
QUARANTINE_SOURCES = ["fhir", "lis", "forms", "phenopacket"]
#: Highest plausible ``reported_age_years``; older stated ages are quarantined.
MAX_REPORTED_AGE_YEARS = 120.0


class _Strict:
    strict = True
    coerce = True
    ordered = True


class PatientsSchema(pa.DataFrameModel):
    """``int_patients``: one row per source patient, raw identifiers still present."""

    patient_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    source: Series[str] = pa.Field(isin=["fhir", "phenopacket"])
    mrn: Series[str] = pa.Field(nullable=True)
    given_name: Series[str] = pa.Field(nullable=True)
    family_name: Series[str] = pa.Field(nullable=True)
    birth_date: Series[pd.Timestamp] = pa.Field(nullable=True)
    sex: Series[str] = pa.Field(isin=SEXES)
    address_line: Series[str] = pa.Field(nullable=True)
    city: Series[str] = pa.Field(nullable=True)
    state: Series[str] = pa.Field(nullable=True)
    postal_code: Series[str] = pa.Field(nullable=True)
    phone: Series[str] = pa.Field(nullable=True)
    email: Series[str] = pa.Field(nullable=True)

    Config = _Strict


class EncountersSchema(pa.DataFrameModel):
    """``int_encounters``: one row per encounter (a phenopacket is one encounter)."""

    encounter_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    patient_id: Series[str] = pa.Field(nullable=True)
    source: Series[str] = pa.Field(isin=["fhir", "phenopacket"])
    start: Series[UTCDateTime] = pa.Field(nullable=True)
    encounter_class: Series[str] = pa.Field(isin=ENCOUNTER_CLASSES, nullable=True)
    #: Age at the encounter as the source states it (phenopacket ``timeAtLastEncounter``),
    #: in years; null when the source gives dates instead (FHIR). Never reaches layer 03.
    reported_age_years: Series[float] = pa.Field(nullable=True, ge=0, le=MAX_REPORTED_AGE_YEARS)

    Config = _Strict


class SymptomsSchema(pa.DataFrameModel):
    """``int_symptoms``: live HPO ids; ``present`` False = explicitly excluded."""

    encounter_id: Series[str]
    hpo_id: Series[str] = pa.Field(str_matches=r"^HP:\d{7}$")
    present: Series[bool]
    severity: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=1, le=3)
    onset_days: Series[float] = pa.Field(nullable=True, ge=0)
    source: Series[str] = pa.Field(isin=RECORD_SOURCES)
    original_system: Series[str] = pa.Field(isin=["HPO", "SNOMEDCT"])
    original_code: Series[str]

    Config = _Strict

    @pa.check("hpo_id", name="live_hpo_id")
    @classmethod
    def _live(cls, hpo_id: Series[str]) -> Series[bool]:
        return hpo_id.isin(load_ontology().names.keys())


class VitalsSchema(pa.DataFrameModel):
    """``int_vitals``: value in the LOINC code's canonical UCUM unit."""

    encounter_id: Series[str]
    loinc: Series[str] = pa.Field(str_matches=r"^\d{1,7}-\d$")
    name: Series[str]
    value: Series[float]
    unit: Series[str]

    Config = _Strict


class LabsSchema(pa.DataFrameModel):
    """``int_labs``: canonical value/unit plus the value and unit as sent."""

    encounter_id: Series[str]
    loinc: Series[str] = pa.Field(str_matches=r"^\d{1,7}-\d$")
    name: Series[str]
    value: Series[float]
    unit: Series[str]
    original_value: Series[float]
    original_unit: Series[str]
    collected_at: Series[UTCDateTime] = pa.Field(nullable=True)

    Config = _Strict


class DiagnosesSchema(pa.DataFrameModel):
    """``int_diagnoses``: primary diagnoses (labels) and comorbidities."""

    encounter_id: Series[str]
    code: Series[str] = pa.Field(str_length={"min_value": 1})
    system: Series[str] = pa.Field(isin=DIAGNOSIS_SYSTEMS)
    name: Series[str] = pa.Field(nullable=True)
    category: Series[str] = pa.Field(isin=CATEGORIES)
    role: Series[str] = pa.Field(isin=ROLES)
    severity: Series[str] = pa.Field(isin=SEVERITIES, nullable=True)

    Config = _Strict

    @pa.dataframe_check(name="rare_codes_are_rare")
    @classmethod
    def _rare(cls, df: pd.DataFrame) -> Series[bool]:
        return ~df["system"].isin(["OMIM", "ORPHA"]) | (df["category"] == "RARE")


class NotesSchema(pa.DataFrameModel):
    """``int_notes``: clinical note text (may name the patient at this layer)."""

    encounter_id: Series[str]
    text: Series[str]

    Config = _Strict


class QuarantineSchema(pa.DataFrameModel):
    """``int_quarantine``: every unusable record or field, with its position and reason.

    ``line`` is the 1-based line of an NDJSON/JSONL file or the 1-based data row of a
    CSV (header excluded), 0 for a whole file; ``entry`` the 0-based bundle entry, -1
    when the problem is not inside one entry.
    """

    source: Series[str] = pa.Field(isin=QUARANTINE_SOURCES)
    file: Series[str]
    line: Series[int] = pa.Field(ge=0)
    entry: Series[int] = pa.Field(ge=-1)
    record_id: Series[str] = pa.Field(nullable=True)
    field: Series[str] = pa.Field(nullable=True)
    value: Series[str] = pa.Field(nullable=True)
    reason: Series[str] = pa.Field(str_matches=r"^[a-z_]+$")

    Config = _Strict


#: Catalog dataset name → schema.
TABLE_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "int_patients": PatientsSchema,
    "int_encounters": EncountersSchema,
    "int_symptoms": SymptomsSchema,
    "int_vitals": VitalsSchema,
    "int_labs": LabsSchema,
    "int_diagnoses": DiagnosesSchema,
    "int_notes": NotesSchema,
    "int_quarantine": QuarantineSchema,
}
