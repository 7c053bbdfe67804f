"""Nodes of the ``simulate`` pipeline: hospital exports fabricated from the knowledge base.

Every node is a pure function of its inputs and ``simulate:`` parameters; each draws
from its own seeded random stream, so the same seed gives byte-identical files.
The knowledge tables (HPO, annotations, common-disease catalogue, LOINC table) are
package data read through the cached loaders of :mod:`disease_pipeline.knowledge`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.core.levels import SEVERITY_LEVELS
from disease_pipeline.knowledge.annotations import load_annotations
from disease_pipeline.knowledge.catalogue import load_common_diseases, load_lab_table
from disease_pipeline.knowledge.hpo import load_ontology
from disease_pipeline.pipelines.simulate import (
    cohort,
    config,
    diagnoses,
    fhir,
    rare,
    rare_cases,
    records,
)
from disease_pipeline.pipelines.simulate.common import stream
from disease_pipeline.pipelines.simulate.measurements import simulate_measurements
from disease_pipeline.pipelines.simulate.notes import clinical_notes
from disease_pipeline.pipelines.simulate.symptoms import simulate_symptoms

logger = logging.getLogger(__name__)

#: Columns of the simulated patients written to ``identifiers.csv`` (kind = column).
IDENTIFIER_KINDS = [
    "full_name", "given_name", "family_name", "phone", "email", "mrn", "address_line",
    "postal_code", "birth_date",
]  # fmt: skip


def _catalogue(cfg: dict[str, Any]) -> pd.DataFrame:
    """The common-disease catalogue restricted to ``simulate.common.include`` (if given)."""
    table = load_common_diseases()
    include = cfg["common"]["include"]
    if include:
        table = table[table["icd10"].isin(include)]
    return table.reset_index(drop=True)


def validate_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """Check every ``simulate:`` knob and code before anything is generated.

    Raises:
        ValueError: naming the parameter or code (HPO, ICD-10, OMIM/ORPHA) that is wrong.
    """
    databases = list(params.get("rare", {}).get("databases", []))
    unknown = sorted(set(databases) - {"OMIM", "ORPHA"})
    if unknown:
        raise ValueError(f"parameter simulate.rare.databases: unsupported {', '.join(unknown)}")
    annotations = load_annotations()
    rare_ids = set(annotations.loc[annotations["database"].isin(databases), "disease_id"])
    return config.validate(
        params, load_ontology(), load_common_diseases(), load_lab_table(), rare_ids
    )


def select_rare_diseases(cfg: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw ``rare.n_diseases`` OMIM/Orphanet diseases and split the rare cases among them."""
    diseases, terms = rare.select_rare(cfg, load_annotations())
    logger.info(
        "simulate: %d rare diseases, %d rare cases", len(diseases), int(diseases["n_cases"].sum())
    )
    return diseases, terms


def simulate_population(cfg: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Patients with personal identifiers, and their visit times."""
    return cohort.simulate_population(cfg, _catalogue(cfg))


def assign_diagnoses(
    cfg: dict[str, Any], patients: pd.DataFrame, visits: pd.DataFrame, rare_diseases: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Diagnosis, comorbidities, hidden acuity, severity label and class of every encounter."""
    return diagnoses.assign_diagnoses(cfg, patients, visits, _catalogue(cfg), rare_diseases)


def simulate_findings(
    cfg: dict[str, Any],
    encounters: pd.DataFrame,
    comorbidities: pd.DataFrame,
    rare_diseases: pd.DataFrame,
    rare_terms: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Symptoms, vital signs and lab results of every encounter."""
    common = _catalogue(cfg)
    tables = {"common": common, "rare": rare_diseases, "rare_terms": rare_terms,
              "annotations": load_annotations()}  # fmt: skip
    symptoms = simulate_symptoms(cfg, encounters, comorbidities, tables, ontology=load_ontology())
    shifts = rare_cases.measurement_shifts(cfg, rare_diseases, rare_terms, load_ontology())
    vitals, labs = simulate_measurements(
        cfg, encounters, comorbidities, common, load_lab_table(), symptoms=symptoms,
        rare_shifts=shifts,
    )  # fmt: skip
    return symptoms, vitals, labs


def write_fhir_bundles(
    cfg: dict[str, Any],
    patients: pd.DataFrame,
    encounters: pd.DataFrame,
    symptoms: pd.DataFrame,
    vitals: pd.DataFrame,
) -> tuple[list[str], pd.DataFrame]:
    """FHIR R4 bundles as NDJSON lines, with a validated random sample, and ground truth.

    Raises:
        ValueError: a bundle of the ``validate_sample`` sample is not valid FHIR R4(B).
    """
    names = load_ontology().names
    notes, _ = clinical_notes(cfg, encounters, patients, symptoms, names)
    tables = {"patients": patients, "encounters": encounters, "symptoms": symptoms,
              "vitals": vitals, "lab_table": load_lab_table()}  # fmt: skip
    lines, truth = fhir.build_bundles(cfg, tables, notes, names)
    size = min(int(cfg["validate_sample"]), len(lines))
    if size:
        sample = np.sort(
            stream(cfg["seed"], "validate").choice(len(lines), size=size, replace=False)
        )
        fhir.validate_bundles(lines, sample)
    return lines, truth


def write_lab_results(
    cfg: dict[str, Any], patients: pd.DataFrame, encounters: pd.DataFrame, labs: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The LIS lab-results export and its ground truth."""
    return records.build_lab_results(cfg, patients, encounters, labs, load_lab_table())


def write_admission_forms(
    cfg: dict[str, Any],
    patients: pd.DataFrame,
    encounters: pd.DataFrame,
    symptoms: pd.DataFrame,
    comorbidities: pd.DataFrame,
) -> tuple[list[str], pd.DataFrame]:
    """Admission forms as JSON lines and their ground truth."""
    return records.build_admission_forms(
        cfg, patients, encounters, symptoms, comorbidities, names=load_ontology().names
    )


def assemble_ground_truth(
    fhir_truth: pd.DataFrame,
    lis_truth: pd.DataFrame,
    forms_truth: pd.DataFrame,
    patients: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``injected.csv`` (every entry error and duplicate) and ``identifiers.csv``."""
    injected = pd.concat([fhir_truth, lis_truth, forms_truth], ignore_index=True)
    injected = injected.sort_values(["source", "line", "entry"], kind="stable").reset_index(
        drop=True
    )
    people = patients.assign(full_name=patients["given_name"] + " " + patients["family_name"])
    frames = [pd.DataFrame({"kind": kind, "value": people[kind]}) for kind in IDENTIFIER_KINDS]
    wrong_births = fhir_truth.loc[fhir_truth["field"] == "birthDate", "description"]
    found = [m.group(1) for m in map(re.compile(r"birth date (\S+)").match, wrong_births) if m]
    frames.append(pd.DataFrame({"kind": "birth_date", "value": found}))
    identifiers = pd.concat(frames, ignore_index=True)
    identifiers = identifiers[identifiers["value"].astype(str) != ""]
    identifiers = identifiers.drop_duplicates().sort_values(["kind", "value"], kind="stable")
    return injected, identifiers.reset_index(drop=True)


def summarise_simulation(
    *,
    cfg: dict[str, Any],
    encounters: pd.DataFrame,
    symptoms: pd.DataFrame,
    labs: pd.DataFrame,
    rare_diseases: pd.DataFrame,
    fhir_truth: pd.DataFrame,
    lis_truth: pd.DataFrame,
    forms_truth: pd.DataFrame,
) -> dict[str, Any]:
    """Headline figures of the simulated data set (for the report and the tests)."""
    injected = pd.concat([fhir_truth, lis_truth, forms_truth], ignore_index=True)
    n = len(encounters)
    is_rare = encounters["category"] == "RARE"
    n_lab_items = int((load_lab_table()["kind"] == "lab").sum())
    counts = injected.groupby(["source", "kind"]).size()
    duplicates = {s: int(counts.get((s, "duplicate"), 0)) for s in ("fhir", "lis", "forms")}
    records = {"fhir": n, "lis": len(labs) + duplicates["lis"], "forms": n + duplicates["forms"]}
    return {
        "seed": int(cfg["seed"]),
        "n_encounters": n,
        "n_patients": int(encounters["patient"].nunique()),
        "n_common_diseases": int(encounters.loc[~is_rare, "code"].nunique()),
        "n_rare_diseases": int(len(rare_diseases)),
        "rare_share": float(is_rare.mean()),
        "rare_cases_min": int(rare_diseases["n_cases"].min()) if len(rare_diseases) else 0,
        "rare_cases_max": int(rare_diseases["n_cases"].max()) if len(rare_diseases) else 0,
        "severity": {s: int((encounters["severity"] == s).sum()) for s in SEVERITY_LEVELS},
        "encounter_class": encounters["encounter_class"].value_counts().sort_index().to_dict(),
        "symptoms_per_encounter": float(len(symptoms) / n),
        "snomed_share": float((symptoms["system"] == "SNOMEDCT").mean()),
        "lab_missing_share": float(1 - len(labs) / (n * n_lab_items)),
        "modality": encounters["modality"].value_counts().sort_index().to_dict(),
        "mislabelled_share": float(
            (encounters["code"] != encounters["true_code"])[~is_rare].mean()
        ),
        "site": {
            name: int((encounters["site"] == k).sum())
            for k, name in enumerate(cfg["sites"]["specs"])
        },
        "onset_unknown_share": float((symptoms.loc[symptoms["present"], "onset_days"] < 0).mean()),
        "records": records,
        "errors": {s: int(counts.get((s, "error"), 0)) for s in ("fhir", "lis", "forms")},
        "duplicates": duplicates,
    }
