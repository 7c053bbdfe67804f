"""Validate and normalise ``PatientRecord``s before feature building.

SNOMED CT symptoms are mapped to HPO, obsolete HPO ids to their replacements, vital and
lab values converted to the canonical unit of their LOINC code, comorbidities spelled
as canonical ICD-10. A well-formed HPO id newer than the model's HPO release is ignored
(logged), not refused. Any other problem raises a ``ValueError`` naming the field, e.g.
``records[0].labs[1].unit: …``.
"""

from __future__ import annotations

import logging
import re
from functools import cache
from typing import Any

from disease_pipeline.knowledge.catalogue import (
    UnitConversionError,
    load_lab_table,
    normalise_icd10,
    to_canonical,
)
from disease_pipeline.knowledge.hpo import load_ontology
from disease_pipeline.records import (
    Measurement,
    PatientRecord,
    Symptom,
    encounter_date_problem,
)

logger = logging.getLogger(__name__)


def normalise_records(records: list[PatientRecord | dict[str, Any]]) -> list[PatientRecord]:
    """Validated, normalised copies of ``records`` (dicts are parsed as PatientRecord).

    Raises:
        ValueError: a record, symptom code, unit or ICD-10 code is invalid (the message
            names the field), or two records share an ``encounter_id``.
    """
    out, seen = [], set()
    for i, raw in enumerate(records):
        where = f"records[{i}]"
        try:
            record = raw if isinstance(raw, PatientRecord) else PatientRecord.model_validate(raw)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from error
        date_problem = encounter_date_problem(record.encounter_date)
        if date_problem:
            raise ValueError(f"{where}.encounter_date: {date_problem}")
        if record.encounter_id is not None:
            if record.encounter_id in seen:
                raise ValueError(f"{where}.encounter_id: {record.encounter_id!r} is duplicated")
            seen.add(record.encounter_id)
        out.append(
            record.model_copy(
                update={
                    "symptoms": [
                        checked
                        for j, s in enumerate(record.symptoms)
                        if (checked := _symptom(s, f"{where}.symptoms[{j}]")) is not None
                    ],
                    "vitals": [
                        _measurement(m, f"{where}.vitals[{j}]") for j, m in enumerate(record.vitals)
                    ],
                    "labs": [
                        _measurement(m, f"{where}.labs[{j}]") for j, m in enumerate(record.labs)
                    ],
                    "comorbidities": [
                        _icd10(code, f"{where}.comorbidities[{j}]")
                        for j, code in enumerate(record.comorbidities)
                    ],
                }
            )
        )
    return out


def _symptom(symptom: Symptom, where: str) -> Symptom | None:
    """The symptom with its live HPO id; None (logged) for a well-formed HPO id that the
    model's HPO release lacks (a newer term): it is ignored, not refused."""
    onto = load_ontology()
    code = symptom.code.strip()
    if symptom.system == "SNOMEDCT":
        hpo = onto.snomed_to_hpo.get(code)
        if hpo is None:
            raise ValueError(f"{where}.code: SNOMED CT code {code!r} has no HPO equivalent")
    else:
        hpo = onto.resolve(code.upper())
        if hpo is None and re.fullmatch(r"HP:\d{7}", code.upper()):
            logger.warning(
                "%s.code: %s is not in the HPO release this model was built with: ignored",
                where,
                code,
            )
            return None
        if hpo is None:
            raise ValueError(f"{where}.code: {code!r} is not an HPO term id (HP:nnnnnnn)")
    return symptom.model_copy(update={"code": hpo, "system": "HPO"})


def _measurement(measurement: Measurement, where: str) -> Measurement:
    try:
        value = to_canonical(measurement.loinc, measurement.value, measurement.unit)
    except UnitConversionError as error:
        field = "loinc" if "not in the LOINC table" in str(error) else "unit"
        raise ValueError(f"{where}.{field}: {error}") from error
    unit = _canonical_units()[measurement.loinc]
    return measurement.model_copy(update={"value": value, "unit": unit})


def _icd10(code: str, where: str) -> str:
    try:
        return normalise_icd10(code)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from error


@cache
def _canonical_units() -> dict[str, str]:
    table = load_lab_table()
    return dict(zip(table["loinc"], table["canonical_unit"], strict=True))
