"""Feature builder, HPO ontology and record rules of a predictor as edge arrays/config."""

from __future__ import annotations

from typing import Any

import numpy as np

from disease_pipeline.knowledge.catalogue import (
    ICD10_PATTERN,
    UNIT_ALIASES,
    load_lab_table,
)
from disease_pipeline.knowledge.hpo import Ontology
from disease_pipeline.knowledge.record_rules import (
    AGE_RANGE,
    HPO_ID,
    MAX_ONSET_DAYS,
    SNOMED_PREFIXES,
)
from disease_pipeline.records import EARLIEST_ENCOUNTER, SITE_PATTERN


def ontology_arrays(onto: Ontology) -> dict[str, np.ndarray]:
    """Every live HPO id (sorted), its is_a closure (itself included) as CSR index
    arrays, the phenotype flag, obsolete/alternative → live ids, SNOMED CT → HPO and the
    newer release's phenotype terms → their nearest ancestor here."""
    ids = sorted(onto.names)
    index = {t: i for i, t in enumerate(ids)}
    closures = [np.array(sorted(index[a] for a in onto.ancestors(t)), np.int32) for t in ids]
    indptr = np.concatenate([[0], np.cumsum([len(c) for c in closures])]).astype(np.int64)
    replaced = sorted(onto.replaced_by.items())
    snomed = sorted(onto.snomed_to_hpo.items())
    newer = sorted(onto.newer_ancestors().items())
    return {
        "hpo_ids": np.asarray(ids),
        "hpo_anc_indptr": indptr,
        "hpo_anc_indices": np.concatenate(closures),
        "hpo_is_phenotype": np.array([onto.is_phenotype(t) for t in ids]),
        "hpo_replaced_from": np.asarray([k for k, _ in replaced]),
        "hpo_replaced_to": np.asarray([v for _, v in replaced]),
        "snomed_codes": np.asarray([k for k, _ in snomed]),
        "snomed_hpo": np.asarray([v for _, v in snomed]),
        "hpo_newer_from": np.asarray([k for k, _ in newer], dtype=str),
        "hpo_newer_to": np.asarray([v for _, v in newer], dtype=str),
    }


def feature_config(builder: Any) -> dict[str, Any]:
    """What :class:`~disease_pipeline.predictor.features.FeatureBuilder` fitted: column
    names, DFS specs, vocabularies and thresholds (JSON-ready)."""
    return {
        "names": list(builder.feature_names),
        "specs": [[s.name, s.child, s.primitive, s.column, s.where] for s in builder.specs],
        "groups": list(builder.symptom_groups.values()),
        "news2_loinc": {k: list(v) for k, v in builder.news2_loinc.items()},
        "acute_onset_days": float(builder.acute_onset_days),
        "chronic_onset_days": float(builder.chronic_onset_days),
        "missing_indicators": bool(builder.missing_indicators),
        "lab_vocab": list(builder.loinc_vocab["labs"]),
        "comorbidity_codes": list(builder.comorbidity_codes),
        "phenotype_terms": list(builder.phenotype_terms),
        "excluded_terms": list(builder.excluded_terms),
        "knowledge": getattr(builder, "knowledge_scorer", None) is not None,
    }


def record_config() -> dict[str, Any]:
    """The patient record's rules (knowledge.record_rules) as data: the LOINC table with
    units, conversions and plausible ranges, and the formats and ranges of the fields."""
    labs = {}
    for row in load_lab_table().to_dict("records"):
        labs[str(row["loinc"])] = {
            "name": str(row["name"]),
            "kind": str(row["kind"]),
            "unit": str(row["canonical_unit"]),
            "low": float(row["plausible"]["min"]),
            "high": float(row["plausible"]["max"]),
            "units": {str(k): float(v) for k, v in row["units"].items()},
            "affine": {
                str(k): {"scale": float(v["scale"]), "offset": float(v["offset"])}
                for k, v in (row.get("affine") or {}).items()
            },
        }
    return {
        "labs": labs,
        "unit_aliases": dict(UNIT_ALIASES),
        "icd10_pattern": ICD10_PATTERN.pattern,
        "hpo_pattern": HPO_ID.pattern,
        "snomed_prefixes": list(SNOMED_PREFIXES),
        "site_pattern": SITE_PATTERN,
        "age_range": list(AGE_RANGE),
        "max_onset_days": MAX_ONSET_DAYS,
        "earliest_encounter": EARLIEST_ENCOUNTER.isoformat(),
    }
