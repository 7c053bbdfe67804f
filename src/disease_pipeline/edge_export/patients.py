"""Simulated patient records for the edge parity test and benchmark.

A mix that walks every path of the predictor: common-disease patients drawn from the
catalogue (symptoms by their frequencies, some reported absent, vitals and labs around
their normal or shifted values in any unit of the LOINC table, comorbidities, a time
zone on some dates), rare-disease patients drawn from the HPO annotations (frequent
phenotypes of a random annotated disease, a few SNOMED CT codes and an obsolete HPO id
among them), and symptoms-only, age-less and sex-less ones.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from disease_pipeline.knowledge.annotations import load_annotations
from disease_pipeline.knowledge.catalogue import (
    from_canonical,
    load_common_diseases,
    load_lab_table,
)
from disease_pipeline.knowledge.hpo import load_ontology

COMORBIDITIES = ("E11.9", "I10", "J45", "N18.3", "e119", "I25.10", "K21.9")


def _measurements(rng: random.Random, kind: str, shifts: dict[str, float]) -> list[dict]:
    out = []
    for row in load_lab_table().to_dict("records"):
        if row["kind"] != kind or rng.random() < float(row["missing_rate"]) + 0.2:
            continue
        mean = row["normal"]["mean"] + shifts.get(row["short"], shifts.get(row["loinc"], 0.0))
        value = rng.gauss(mean, row["normal"]["sd"])
        low, high = row["plausible"]["min"], row["plausible"]["max"]
        margin = 1e-3 * (high - low)  # unit rounding stays within the plausible range
        value = min(max(value, low + margin), high - margin)
        unit = rng.choice([*row["units"], *(row.get("affine") or {})])
        shown = from_canonical(row["loinc"], value, unit)
        out.append({"loinc": row["loinc"], "value": float(f"{shown:.6g}"), "unit": unit})
        if rng.random() < 0.05:  # a repeated reading
            again = from_canonical(row["loinc"], (value + row["normal"]["mean"]) / 2, unit)
            out.append(dict(out[-1], value=float(f"{again:.6g}")))
    return out


def _common(rng: random.Random, disease: dict) -> dict[str, Any]:
    symptoms = []
    for s in disease["symptoms"]:
        if rng.random() < float(s["frequency"]):
            symptom = {"code": s["hpo"], "severity": rng.randint(1, 3)}
            if rng.random() < 0.7:
                symptom["onset_days"] = rng.choice([0.5, 2, 5, 10, 30, 120])
            symptoms.append(symptom)
        elif rng.random() < 0.15:
            symptoms.append({"code": s["hpo"], "present": False})
    if not any(s.get("present", True) for s in symptoms):
        symptoms.append({"code": disease["symptoms"][0]["hpo"]})
    record: dict[str, Any] = {"symptoms": symptoms}
    if rng.random() < 0.75:
        record["vitals"] = _measurements(rng, "vital", disease.get("vitals") or {})
    if rng.random() < 0.5:
        record["labs"] = _measurements(rng, "lab", disease.get("labs") or {})
    if rng.random() < 0.3:
        record["comorbidities"] = rng.sample(COMORBIDITIES, rng.randint(1, 2))
    return record


def _rare(rng: random.Random, annotations: dict[str, list[tuple[str, float]]]) -> dict[str, Any]:
    onto = load_ontology()
    disease = rng.choice(sorted(annotations))
    terms = annotations[disease]
    chosen = [t for t, f in terms if rng.random() < max(f, 0.3)][:12] or [terms[0][0]]
    snomed = {hpo: code for code, hpo in onto.snomed_to_hpo.items()}
    obsolete = {live: old for old, live in onto.replaced_by.items()}
    symptoms = []
    for term in chosen:
        if term in snomed and rng.random() < 0.2:
            symptoms.append({"code": snomed[term], "system": "SNOMEDCT"})
        elif term in obsolete and rng.random() < 0.3:
            symptoms.append({"code": obsolete[term]})
        else:
            symptoms.append({"code": term.lower() if rng.random() < 0.05 else term})
    others = [t for t, _ in terms if t not in chosen]
    for term in rng.sample(others, min(len(others), rng.randint(0, 2))):
        symptoms.append({"code": term, "present": False})
    return {"symptoms": symptoms}


def rare_annotations(limit: int = 400, seed: int = 0) -> dict[str, list[tuple[str, float]]]:
    """Annotated phenotypes (with frequencies, most frequent first) of ``limit``
    OMIM/ORPHA diseases with at least four of them."""
    table = load_annotations()
    table = table[~table["excluded"].astype(bool)]
    onto = load_ontology()
    grouped: dict[str, list[tuple[str, float]]] = {}
    for disease, term, frequency in zip(
        table["disease_id"], table["hpo_id"], table["frequency"].fillna(0.5), strict=True
    ):
        if onto.is_phenotype(str(term)):
            grouped.setdefault(str(disease), []).append((str(term), float(frequency)))
    eligible = sorted(d for d, t in grouped.items() if len(t) >= 4)
    picked = random.Random(seed).sample(eligible, min(limit, len(eligible)))
    return {d: sorted(grouped[d], key=lambda x: -x[1]) for d in picked}


def simulated_patients(count: int, seed: int = 0, rare_share: float = 0.3) -> list[dict]:
    """``count`` patient records (JSON-ready dicts) of the mix described above."""
    rng = random.Random(seed)
    diseases = load_common_diseases().to_dict("records")
    annotations = rare_annotations(seed=seed)
    start = datetime(2024, 1, 1, 8, 0)
    out = []
    for index in range(count):
        if rng.random() < rare_share:
            record = _rare(rng, annotations)
        else:
            record = _common(rng, rng.choice(diseases))
        moment = start + timedelta(days=rng.uniform(0, 700), hours=rng.uniform(0, 12))
        if rng.random() < 0.2:
            moment = moment.replace(tzinfo=UTC)
        record |= {
            "encounter_id": f"sim-{seed}-{index}",
            "encounter_date": moment.isoformat(timespec="seconds"),
            "sex": rng.choice(["female", "male", "female", "male", "unknown", "other"]),
        }
        if rng.random() > 0.05:
            record["age"] = float(rng.randint(0, 95))
        out.append(record)
    return out
