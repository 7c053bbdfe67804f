"""Common patients recorded in the styles the gate's training rows differ in: without
their age, and with a long list of findings recorded absent.

Published rare cases (the gate's RARE query rows) often record no age and list many
excluded findings (median 7); a gate can learn those recording habits instead of the
phenotype and fill a common patient's differential with rare candidates when a clinician
leaves out the age or records pertinent negatives. Symptom-only patients are sampled
from the catalogue (terms, age, sex; a seed of their own) and sent through the served
path (``predict_tables``, as ``/predict_batch`` does after its input checks) three times:
as sampled (``as_sampled``), without their age (``without_age``) and with ``negatives``
more catalogue findings they do not show recorded absent (``with_negatives``). Per arm:
the share with P(rare) at or above the threshold and the served top-k.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.knowledge.catalogue import load_common_diseases
from disease_pipeline.knowledge.knowledge_shift import catalogue_findings, sample_symptom_patients
from disease_pipeline.rare.gate_check import TablePredictor, served_answers
from disease_pipeline.records import PatientRecord, Symptom

ARMS = ("as_sampled", "without_age", "with_negatives")


def patient_records(
    patients: pd.DataFrame, arm: str, pool: list[str], negatives: int, seed: int
) -> list[PatientRecord]:
    """Requests of sampled patients (``present``, ``absent``, ``age``, ``sex``) in the
    recording style of ``arm`` (:data:`ARMS`); ``with_negatives`` adds ``negatives``
    findings of ``pool`` the patient does not show as absent (seeded)."""
    if arm not in ARMS:
        raise ValueError(f"recording_check: unknown arm {arm!r}; expected one of {ARMS}")
    rng = np.random.default_rng(seed)
    records = []
    for i, p in enumerate(patients.itertuples()):
        absent = list(p.absent)
        if arm == "with_negatives":
            free = [t for t in pool if t not in set(p.present) | set(absent)]
            absent += [str(t) for t in rng.choice(free, min(negatives, len(free)), False)]
        records.append(
            PatientRecord(
                encounter_id=f"recording-{i}",
                age=None if arm == "without_age" else float(p.age),
                sex=str(p.sex),
                symptoms=[Symptom(code=t) for t in p.present]
                + [Symptom(code=t, present=False) for t in absent],
            )
        )
    return records


def recording_metrics(
    predictor: TablePredictor,
    patients: pd.DataFrame,
    pool: list[str],
    *,
    threshold: float,
    top_k: int,
    negatives: int,
    seed: int,
) -> dict[str, float]:
    """``recording.*``: per arm of :data:`ARMS` the share of patients with P(rare) >=
    ``threshold`` and the share whose disease (``label``) is in the served top ``top_k``."""
    metrics = {"recording.patients": float(len(patients))}
    labels = patients["label"].astype(str).tolist()
    for arm in ARMS:
        records = patient_records(patients, arm, pool, negatives, seed)
        p_rare, codes = served_answers(predictor, records, top_k)
        hits = [label in listed for label, listed in zip(labels, codes, strict=True)]
        metrics[f"recording.{arm}.share_p_rare_at_least_threshold"] = round(
            float(np.mean(p_rare >= threshold)), 4
        )
        metrics[f"recording.{arm}.top{top_k}"] = round(float(np.mean(hits)), 4)
    return metrics


def check_recording_styles(predictor: TablePredictor, params: dict[str, Any]) -> dict[str, float]:
    """The ``recording_check`` of ``params`` (evaluation parameters) on catalogue-sampled
    symptom-only patients; empty when disabled."""
    options = params.get("recording_check", {})
    if not options.get("enabled", False):
        return {}
    catalogue = load_common_diseases()
    seed = int(options["seed"])
    patients = sample_symptom_patients(catalogue, int(options["n_per_disease"]), seed=seed)
    pool = catalogue_findings(catalogue)
    return recording_metrics(
        predictor,
        patients,
        pool,
        threshold=float(options["threshold"]),
        top_k=int(options["top_k"]),
        negatives=int(options["negatives"]),
        seed=seed + 1,
    )
