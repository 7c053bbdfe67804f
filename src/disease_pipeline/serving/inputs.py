"""Check and normalise a clinician's ``PatientRecord`` before it reaches the predictor.

The predictor reads live HPO ids, canonical LOINC units and canonical ICD-10 codes
(the same vocabulary ingestion produces). Here every input is checked against the
knowledge base and every problem is reported with the field it concerns; nothing is
guessed. Deterministic mappings (an obsolete HPO id to its replacement, a SNOMED CT
concept to its HPO term, a unit to the canonical unit) are applied and listed as notes.

The rules are the patient record's one rule set
(:mod:`disease_pipeline.knowledge.record_rules`, shared with ingestion and the pyfunc)
in its ``collect`` mode: every problem of a record is reported at once, as
:class:`FieldError`s (field path, message, value, reason) of one :class:`InputError`.

Two gaps of real phenotype lists are tolerated, with a note: a well-formed HPO id that
the model's HPO release does not know (a newer term) is counted (``on_unknown_term``, the
service's ``/metrics``) and, in a present finding, read as its nearest ancestor in the
release when the newer release's table has it, else ignored; and an unknown age (``null``) is
predicted without age.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from disease_pipeline.knowledge.catalogue import normalise_icd10
from disease_pipeline.knowledge.hpo import Ontology
from disease_pipeline.knowledge.record_rules import Problem, RecordProblems, RecordRules
from disease_pipeline.records import PatientRecord

_DISEASE_CODE = re.compile(r"^(OMIM:\d{6}|ORPHA:\d{1,7})$")


@dataclass(frozen=True)
class FieldError:
    """One bad input field: its JSON path (``patient.labs[0].unit``) and the problem;
    ``value`` and ``reason`` (a key of the rule set's ``REASONS``) when the rule set
    found it."""

    field: str
    message: str
    value: Any = None
    reason: str | None = None

    @classmethod
    def of(cls, problem: Problem) -> FieldError:
        return cls(problem.field, problem.message, problem.value, problem.reason)


class InputError(ValueError):
    """Input the service refuses, listing every bad field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))

    def as_response(self) -> dict:
        """The body of the 422 response, shaped like BentoML's 400 for schema errors."""
        return {
            "error": f"{len(self.errors)} invalid field(s): "
            + ", ".join(e.field for e in self.errors),
            "detail": [
                {"loc": field_location(e.field), "field": e.field, "msg": e.message}
                for e in self.errors
            ],
        }


def field_location(field: str) -> list[str | int]:
    """Pydantic-style location of a dotted path: ``a.b[0].c`` → ``["a", "b", 0, "c"]``."""
    parts: list[str | int] = []
    for piece in re.findall(r"[^.\[\]]+", field):
        parts.append(int(piece) if piece.isdigit() else piece)
    return parts


class RecordNormaliser:
    """Validates records against the HPO ontology and the LOINC table (the record rule
    set's ``collect`` mode)."""

    def __init__(
        self,
        ontology: Ontology | None = None,
        on_unknown_term: Callable[[str], None] | None = None,
    ) -> None:
        self.rules = RecordRules(ontology, on_unknown_term=on_unknown_term)
        self.ontology = self.rules.ontology
        self.on_unknown_term = on_unknown_term

    def normalise(
        self, record: PatientRecord, where: str = "patient"
    ) -> tuple[PatientRecord, list[str]]:
        """The record in the predictor's vocabulary and the notes on what was mapped.

        Raises:
            InputError: every field that is unknown, unconvertible or implausible.
        """
        try:
            checked = self.rules.collect(record, where)
        except RecordProblems as problems:
            raise InputError([FieldError.of(p) for p in problems.problems]) from None
        return checked.record, checked.notes


def check_disease_code(code: str, where: str) -> str:
    """A confirmed diagnosis code in its canonical spelling: ICD-10 (``J18.9``),
    ``OMIM:nnnnnn`` or ``ORPHA:nnnn``.

    Raises:
        InputError: the code has none of these forms.
    """
    text = str(code or "").strip()
    upper = text.upper()
    if _DISEASE_CODE.match(upper):
        return upper
    try:
        return normalise_icd10(text)
    except ValueError:
        raise InputError(
            [FieldError(where, f"{code!r} is not an ICD-10, OMIM:nnnnnn or ORPHA:n code")]
        ) from None
