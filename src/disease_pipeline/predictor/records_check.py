"""Validate and normalise ``PatientRecord``s before feature building.

The rules are the patient record's one rule set
(:mod:`disease_pipeline.knowledge.record_rules`, shared with ingestion and the service)
in its ``first`` mode: SNOMED CT symptoms (with or without a ``SNOMEDCT:`` prefix) are
mapped to HPO, obsolete HPO ids to their replacements, vital and lab values checked
against their list (a vital is not a lab), converted to the canonical unit of their
LOINC code and checked against the plausible range (NaN and infinities refused),
comorbidities spelled as canonical ICD-10. A present finding recorded with a phenotype
term of the newer HPO release the project ships a table of is read as its nearest
ancestor in the model's release; any other well-formed HPO id the release lacks is
ignored (logged), not refused. Any other problem raises a ``ValueError``
naming the field, e.g. ``records[0].labs[1].unit: …`` (a
:class:`~disease_pipeline.knowledge.record_rules.FieldProblem`, whose ``problem`` has the
field, value and reason).

Pickled predictors and MLflow models import :func:`normalise_records` from here: the
module path stays.
"""

from __future__ import annotations

import logging
from typing import Any

from disease_pipeline.knowledge.record_rules import FieldProblem, Problem, default_rules
from disease_pipeline.records import PatientRecord

logger = logging.getLogger(__name__)


def normalise_records(records: list[PatientRecord | dict[str, Any]]) -> list[PatientRecord]:
    """Validated, normalised copies of ``records`` (dicts are parsed as PatientRecord).

    Raises:
        ValueError: a record, symptom code, unit, value or ICD-10 code is invalid (the
            message names the field), or two records share an ``encounter_id``.
    """
    rules = default_rules(require_symptoms=False)
    out, seen = [], set()
    for i, raw in enumerate(records):
        where = f"records[{i}]"
        try:
            record = raw if isinstance(raw, PatientRecord) else PatientRecord.model_validate(raw)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from error
        if record.encounter_id is not None:
            if record.encounter_id in seen:
                raise FieldProblem(
                    Problem(
                        f"{where}.encounter_id",
                        record.encounter_id,
                        "malformed_value",
                        f"{record.encounter_id!r} is duplicated",
                    )
                )
            seen.add(record.encounter_id)
        checked = rules.first(record, where)
        for field, code in checked.ignored:
            logger.warning(
                "%s: %s is not in the HPO release this model was built with: ignored", field, code
            )
        out.append(checked.record)
    return out
