"""Code systems and normalisation rules shared by every ingestion source.

A :class:`Vocabulary` is a small picklable snapshot of the knowledge base (HPO,
SNOMED CT → HPO, LOINC table, common-disease catalogue, rare-disease names) plus the
ingestion parameters, so worker processes can normalise records without reloading
anything. Each method returns the canonical value or raises :class:`Reject` naming the
field, the offending value and the quarantine reason.

The rules themselves are the patient record's one rule set
(:mod:`disease_pipeline.knowledge.record_rules`, shared with the service and the
pyfunc): a :class:`Vocabulary` is its :class:`FieldRules` plus what only ingestion reads
(the catalogue and rare-disease names for diagnoses, severity codes, encounter classes,
sex spellings, onset units and the date range). ``Reject``, ``REASONS`` and ``LabInfo``
are that module's, re-exported here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from disease_pipeline.knowledge.annotations import load_annotations
from disease_pipeline.knowledge.catalogue import (
    icd10_name,
    load_common_diseases,
)
from disease_pipeline.knowledge.hpo import load_ontology
from disease_pipeline.knowledge.record_rules import (
    REASONS,
    FieldRules,
    LabInfo,
    NewerTerm,
    Reject,
    lab_infos,
)

__all__ = [
    "ICD10",
    "OMIM",
    "ORPHA",
    "REASONS",
    "VOCABULARY_PARAMETERS",
    "LabInfo",
    "NewerTerm",
    "Reject",
    "Vocabulary",
    "read_parameters",
]

ICD10 = "ICD10"
OMIM = "OMIM"
ORPHA = "ORPHA"
_RARE_CODE = re.compile(r"^(?:(OMIM|ORPHA|ORPHANET):)?\s*(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Vocabulary(FieldRules):
    """Picklable lookups used to normalise records (build with :meth:`from_knowledge`).

    The symptom, onset, measurement and number rules are :class:`FieldRules`' (the
    record's one rule set); a well-formed HPO id the release lacks raises
    :class:`NewerTerm`, a :class:`Reject` (``unknown_code``) that ingestion quarantines.
    """

    hpo_live: frozenset[str]
    hpo_replaced: dict[str, str]
    snomed_to_hpo: dict[str, str]
    labs: dict[str, LabInfo]
    hpo_newer: dict[str, str]
    common: dict[str, tuple[str, str]]
    rare_names: dict[str, str]
    severity_codes: dict[str, str]
    encounter_classes: frozenset[str]
    sexes: dict[str, str]
    onset_units_days: dict[str, float]
    min_date: date
    max_date: date

    @classmethod
    def from_knowledge(cls, params: dict[str, Any]) -> Vocabulary:
        """Snapshot the knowledge base with the ``ingestion`` parameters ``params``."""
        onto = load_ontology()
        common = {
            str(row["icd10"]): (str(row["name"]), str(row["category"]))
            for row in load_common_diseases().to_dict("records")
        }
        names = load_annotations().drop_duplicates("disease_id")
        rare_names = dict(zip(names["disease_id"], names["disease_name"], strict=True))
        return cls(
            hpo_live=frozenset(onto.names),
            hpo_replaced=dict(onto.replaced_by),
            snomed_to_hpo=dict(onto.snomed_to_hpo),
            labs=dict(lab_infos()),
            hpo_newer=onto.newer_ancestors(),
            common=common,
            rare_names=rare_names,
            severity_codes={str(k): str(v) for k, v in params["severity_codes"].items()},
            encounter_classes=frozenset(params["encounter_classes"]),
            sexes={str(k): str(v) for k, v in params["sexes"].items()},
            onset_units_days={str(k): float(v) for k, v in params["onset_units_days"].items()},
            min_date=date.fromisoformat(str(params["min_date"])),
            max_date=date.fromisoformat(str(params["max_date"])),
        )

    # ---- symptoms -------------------------------------------------------------------
    def onset_days(self, field: str, value: Any, unit: str = "d") -> float:
        """Days since onset from ``value`` in ``unit`` (d, wk, mo, a)."""
        self.number(field, value)
        factor = self.onset_units_days.get(str(unit or "d"))
        if factor is None:
            raise Reject(field, unit, "unknown_unit", "onset unit must be a time unit")
        return self.onset(field, value, factor)

    # ---- diagnoses ------------------------------------------------------------------
    def diagnosis(
        self,
        field: str,
        system: str,
        code: Any,
        primary: bool,
        registry_name: str | None = None,
    ) -> dict[str, Any]:
        """``code, system, name, category`` of a diagnosis code.

        ICD-10: spelling normalised; a primary diagnosis must be in the common-disease
        catalogue (the label space), a comorbidity only needs to be well formed
        (COMMON unless the catalogue says otherwise; named from ICD-10-CM when the
        catalogue does not name it). OMIM/ORPHA: ``OMIM:nnn`` → ``nnn``;
        must be an annotated disease, unless a registry (phenopackets, the authority for
        its own diagnoses) passes the disease's name as ``registry_name``.
        """
        if system == ICD10:
            icd = self.icd10(field, code)
            known = self.common.get(icd)
            if known is None and primary:
                raise Reject(field, code, "unknown_code", "ICD-10 code not in the catalogue")
            name, category = known if known else (_icd10_name(icd), "COMMON")
            return {"code": icd, "system": ICD10, "name": name, "category": category}
        match = _RARE_CODE.match(str(code or "").strip())
        if system not in (OMIM, ORPHA) or match is None:
            raise Reject(field, code, "unknown_code", f"not a {system} code")
        prefix = match.group(1)
        if prefix and prefix.upper().replace("ORPHANET", "ORPHA") != system:
            raise Reject(field, code, "unknown_code", f"prefix does not match system {system}")
        number = match.group(2)
        name = self.rare_names.get(f"{system}:{number}") or registry_name
        if name is None:
            raise Reject(field, code, "unknown_code", "no annotated disease with this id")
        return {"code": number, "system": system, "name": name, "category": "RARE"}

    def severity(self, field: str, code: Any) -> str:
        """Severity label (low/moderate/high/critical) of a SNOMED CT severity code."""
        label = self.severity_codes.get(str(code or "").strip())
        if label is None:
            raise Reject(field, code, "unknown_code", "not a known SNOMED CT severity code")
        return label

    # ---- dates and demographics ---------------------------------------------------
    def datetime(self, field: str, value: Any) -> datetime:
        """UTC datetime from an ISO 8601 string (naive values are taken as UTC)."""
        try:
            parsed = datetime.fromisoformat(str(value).strip())
        except (TypeError, ValueError):
            raise Reject(field, value, "malformed_date", "not an ISO 8601 datetime") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        self._check_range(field, value, parsed.date())
        return parsed.astimezone(UTC)

    def date(self, field: str, value: Any) -> datetime:
        """Naive midnight datetime from an ISO 8601 date (``YYYY-MM-DD``)."""
        try:
            parsed = date.fromisoformat(str(value).strip())
        except (TypeError, ValueError):
            raise Reject(field, value, "malformed_date", "not an ISO 8601 date") from None
        self._check_range(field, value, parsed)
        return datetime(parsed.year, parsed.month, parsed.day)

    def _check_range(self, field: str, value: Any, day: date) -> None:
        if not self.min_date <= day <= self.max_date:
            raise Reject(
                field, value, "implausible_value", f"outside [{self.min_date}, {self.max_date}]"
            )

    def sex(self, field: str, value: Any) -> str:
        """Canonical sex (female/male/other/unknown) from any known spelling."""
        sex = self.sexes.get(str(value or "").strip())
        if sex is None:
            raise Reject(field, value, "unknown_code", "not a known sex/gender code")
        return sex


#: Keys of the ``ingestion`` parameters a :class:`Vocabulary` reads.
VOCABULARY_PARAMETERS = (
    "severity_codes",
    "encounter_classes",
    "sexes",
    "onset_units_days",
    "min_date",
    "max_date",
)


def read_parameters(path: str | Path) -> dict[str, Any]:
    """The vocabulary's ``ingestion`` parameters from a Kedro parameters file read as
    plain YAML (the service reads ``conf/base/parameters_ingestion.yml`` without Kedro)."""
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    params = document.get("ingestion") or {}
    missing = [key for key in VOCABULARY_PARAMETERS if key not in params]
    if missing:
        raise KeyError(f"{path}: ingestion parameters lack {missing}")
    return {key: params[key] for key in VOCABULARY_PARAMETERS}


def _icd10_name(code: str) -> str | None:
    """ICD-10-CM name of a code outside the catalogue; None where the ICD-10-CM tables are
    not installed (the service's Bento: it reads comorbidity codes, not their names)."""
    try:
        return icd10_name(code)
    except ImportError:
        return None
