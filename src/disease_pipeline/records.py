"""The one canonical patient record: what a clinician sends and what the predictor reads.

Training turns warehouse rows into the same per-encounter tables that
:func:`records_to_tables` builds from these records, so feature building is shared
by evaluation and serving.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

Sex = Literal["female", "male", "other", "unknown"]


def _not_boolean(value: Any) -> Any:
    """JSON ``true``/``false`` where a number is expected is an error (pydantic's lax
    mode would read ``"age": true`` as 1 year)."""
    if isinstance(value, bool):
        raise ValueError("a number is required, not true or false")
    return value


#: a number field that refuses booleans (the JSON schema stays ``number``/``integer``)
NotBoolean = BeforeValidator(_not_boolean)

#: Columns of the canonical symptoms table (docs/data_contracts.md), the same from
#: ingestion (``int_symptoms``) and from :func:`records_to_tables`.
SYMPTOM_COLUMNS = [
    "encounter_id",
    "hpo_id",
    "present",
    "severity",
    "onset_days",
    "source",
    "original_system",
    "original_code",
]


#: Ages at or above this are recorded as this value, flagged ``age_90_plus`` (HIPAA Safe
#: Harbor; the anonymization pipeline's ``age_top_code``), wherever a record is stored.
AGE_TOP_CODE = 90.0

#: Earliest plausible ``encounter_date``; the latest is tomorrow (clocks and time zones).
EARLIEST_ENCOUNTER = datetime(1900, 1, 1)


def encounter_date_problem(date: datetime | None) -> str | None:
    """Why ``date`` is not a plausible encounter date, or None when it is (or absent)."""
    if date is None:
        return None
    latest = datetime.now() + timedelta(days=1)
    if EARLIEST_ENCOUNTER <= date.replace(tzinfo=None) <= latest:
        return None
    return (
        f"{date.isoformat()} is not a plausible encounter date "
        f"({EARLIEST_ENCOUNTER.date()} to tomorrow)"
    )


class Symptom(BaseModel):
    """A sign or symptom, coded in HPO (``HP:0001945``) or SNOMED CT."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="HPO id (HP:nnnnnnn) or SNOMED CT concept id")
    system: Literal["HPO", "SNOMEDCT"] = "HPO"
    present: bool = Field(True, description="False: explicitly absent (excluded)")
    severity: Annotated[int | None, NotBoolean] = Field(
        None, ge=1, le=3, description="1 mild, 2 moderate, 3 severe"
    )
    onset_days: Annotated[float | None, NotBoolean] = Field(
        None, ge=0, le=36500, description="days since onset"
    )


class Measurement(BaseModel):
    """A vital sign or lab result, LOINC-coded, in any unit of the LOINC table."""

    model_config = ConfigDict(extra="forbid")

    loinc: str
    value: Annotated[float, NotBoolean]
    unit: str


#: a care-site code: letters, digits and ``_ . : -``, starting with a letter or digit
SITE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class PatientRecord(BaseModel):
    """One patient at one encounter."""

    model_config = ConfigDict(extra="forbid")

    patient_id: str | None = Field(None, description="pseudonymous id; never a raw identifier")
    encounter_id: str | None = None
    age: Annotated[float | None, NotBoolean] = Field(
        None,
        ge=0,
        le=120,
        description="age in years (90 and over may be sent as 90); null when unknown",
    )
    sex: Sex = "unknown"
    encounter_date: datetime | None = None
    symptoms: list[Symptom] = Field(default_factory=list)
    vitals: list[Measurement] = Field(default_factory=list)
    labs: list[Measurement] = Field(default_factory=list)
    comorbidities: list[str] = Field(default_factory=list, description="ICD-10 codes")
    note: str | None = None
    site: str | None = Field(
        None,
        max_length=64,
        pattern=SITE_PATTERN,
        description=(
            "code of the care site that sends the record (hospital, clinic or ward code; "
            "never a patient identifier): not read by the model, kept in the prediction log "
            "so that monitoring reports live performance per site"
        ),
    )


def records_to_tables(records: list[PatientRecord]) -> dict[str, pd.DataFrame]:
    """Warehouse-shaped tables (``encounters``, ``symptoms``, ``vitals``, ``labs``,
    ``diagnoses``) for a batch of records, in the columns of docs/data_contracts.md.

    Codes and units are taken as given: callers validate and normalise them first.
    """
    encounters, symptoms, vitals, labs, diagnoses = [], [], [], [], []
    for index, record in enumerate(records):
        encounter_id = record.encounter_id or f"request-{index}"
        encounters.append(
            {
                "encounter_id": encounter_id,
                "patient_id": record.patient_id or encounter_id,
                "source": "request",
                "start": _naive_utc(record.encounter_date or datetime.now()),
                "encounter_class": "AMB",
                "age_years": float("nan") if record.age is None else float(record.age),
                "age_90_plus": record.age is not None and record.age >= AGE_TOP_CODE,
                "sex": record.sex,
            }
        )
        symptoms += [
            {
                "encounter_id": encounter_id,
                "hpo_id": s.code,
                "present": s.present,
                "severity": s.severity,
                "onset_days": s.onset_days,
                "source": "request",
                "original_system": s.system,
                "original_code": s.code,
            }
            for s in record.symptoms
        ]
        vitals += [
            {"encounter_id": encounter_id, "loinc": m.loinc, "value": m.value, "unit": m.unit}
            for m in record.vitals
        ]
        labs += [
            {"encounter_id": encounter_id, "loinc": m.loinc, "value": m.value, "unit": m.unit}
            for m in record.labs
        ]
        diagnoses += [
            {"encounter_id": encounter_id, "code": code, "system": "ICD10", "role": "comorbidity"}
            for code in record.comorbidities
        ]
    columns = {
        "symptoms": SYMPTOM_COLUMNS,
        "vitals": ["encounter_id", "loinc", "value", "unit"],
        "labs": ["encounter_id", "loinc", "value", "unit"],
        "diagnoses": ["encounter_id", "code", "system", "role"],
    }
    return {
        "encounters": pd.DataFrame(encounters),
        "symptoms": pd.DataFrame(symptoms, columns=columns["symptoms"]),
        "vitals": pd.DataFrame(vitals, columns=columns["vitals"]),
        "labs": pd.DataFrame(labs, columns=columns["labs"]),
        "diagnoses": pd.DataFrame(diagnoses, columns=columns["diagnoses"]),
    }


def _naive_utc(moment: datetime) -> pd.Timestamp:
    """A time stamp without time zone (UTC when one was given), as the warehouse's."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp
