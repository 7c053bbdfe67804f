"""Nodes of the ``rare_model`` pipeline: known cases → fitted hybrid → validation, latency.

The library behind these nodes is :mod:`disease_pipeline.rare`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.rare.cases import PUBLISHED, Case, cases_from_frame
from disease_pipeline.rare.encoder import PhenotypeEncoder
from disease_pipeline.rare.evaluation import run_validation
from disease_pipeline.rare.fit import (
    Knowledge,
    RareModelParams,
    fit_rare_model,
    load_knowledge,
    pretrain_encoder,
)
from disease_pipeline.rare.model import RareDiseaseModel
from disease_pipeline.rare.report import latency_report, validation_markdown

logger = logging.getLogger(__name__)

CASE_COLUMNS = [
    "case_id",
    "disease_id",
    "disease_name",
    "category",
    "source",
    "present_terms",
    "excluded_terms",
    "age",
    "sex",
]


def _term_lists(symptoms: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    wanted = symptoms[symptoms["encounter_id"].isin(ids)]
    present = wanted["present"].astype(bool)
    out = pd.DataFrame({"encounter_id": ids})
    for column, mask in (("present_terms", present), ("excluded_terms", ~present)):
        lists = wanted[mask].groupby("encounter_id")["hpo_id"].agg(lambda s: sorted(set(s)))
        out[column] = out["encounter_id"].map(lists)
        out[column] = out[column].map(lambda v: v if isinstance(v, list) else [])
    return out


def assemble_rare_cases(
    *,
    registry_cases: pd.DataFrame,
    train: pd.DataFrame,
    symptoms: pd.DataFrame,
    encounters: pd.DataFrame,
    patients: pd.DataFrame,
    diagnoses: pd.DataFrame,
    params: dict[str, Any],
) -> pd.DataFrame:
    """Known cases for the rare model, one row each (columns :data:`CASE_COLUMNS`).

    * registry cases (phenopackets, ``feat_registry_cases``): ``source = registry``;
    * simulated encounters of the training split: RARE ones, and up to
      ``cases.max_common_cases`` COMMON ones for pre-training (``source = simulated``).

    Terms come from the warehouse symptoms; age and sex from encounters/patients;
    disease names from the warehouse diagnoses.
    """
    options = params.get("cases", {})
    rng = np.random.default_rng(params.get("seed", 0))
    names = diagnoses.assign(
        disease_id=np.where(
            diagnoses["system"].isin(["OMIM", "ORPHA"]),
            diagnoses["system"].astype(str) + ":" + diagnoses["code"].astype(str),
            diagnoses["code"].astype(str),
        )
    ).drop_duplicates("disease_id")
    name_of = dict(zip(names["disease_id"], names["name"], strict=True))
    frames = []
    if options.get("registry", True) and len(registry_cases):
        registry = registry_cases.rename(
            columns={"encounter_id": "case_id", "label_disease": "disease_id"}
        )
        frames.append(registry.assign(category="RARE", source=PUBLISHED))
    labels = train[["encounter_id", "label_disease", "label_category"]]
    rare = (
        labels[labels["label_category"] == "RARE"]
        if options.get("simulated_rare", True)
        else labels.iloc[:0]
    )
    common = labels[labels["label_category"] == "COMMON"]
    limit = int(options.get("max_common_cases", 0))
    if len(common) > limit:
        common = common.iloc[np.sort(rng.choice(len(common), size=limit, replace=False))]
    simulated = pd.concat([rare, common], ignore_index=True)
    if len(simulated):
        terms = _term_lists(symptoms, simulated["encounter_id"])
        demo = encounters[["encounter_id", "patient_id", "age_years"]].merge(
            patients[["patient_id", "sex"]], on="patient_id", how="left"
        )
        simulated = simulated.merge(terms, on="encounter_id").merge(
            demo, on="encounter_id", how="left"
        )
        frames.append(
            simulated.rename(
                columns={
                    "encounter_id": "case_id",
                    "label_disease": "disease_id",
                    "label_category": "category",
                    "age_years": "age",
                }
            ).assign(source="simulated")
        )
    if not frames:
        raise ValueError("rare_model: no known case (no registry case and no simulated encounter)")
    cases = pd.concat(frames, ignore_index=True)
    cases["disease_name"] = cases["disease_id"].map(name_of).fillna("")
    logger.info(
        "rare_model: %d cases (%s)",
        len(cases),
        cases.groupby(["source", "category"]).size().to_dict(),
    )
    return cases[CASE_COLUMNS].reset_index(drop=True)


def _cases(
    frame: pd.DataFrame, base: Knowledge, keep_empty: bool = False
) -> tuple[list[Case], dict]:
    out, stats = [], {}
    for source, group in frame.groupby("source", sort=True):
        cases, counts = cases_from_frame(
            group, base.ontology, base.space, str(source), keep_empty=keep_empty
        )
        out += cases
        stats[str(source)] = counts
    return out, stats


def _split(cases: list[Case], frame: pd.DataFrame) -> tuple[list[Case], list[Case]]:
    common_ids = set(frame.loc[frame["category"] == "COMMON", "case_id"].astype(str))
    rare = [c for c in cases if c.case_id not in common_ids]
    common = [c for c in cases if c.case_id in common_ids]
    return rare, common


def pretrain_rare_encoder(
    cases: pd.DataFrame, params: dict[str, Any]
) -> tuple[PhenotypeEncoder, dict[str, Any]]:
    """The encoder stages that use no rare case (common cases, annotation samples).

    The trained model and every validation fit start from this one encoder, so the
    validation measures the procedure the model was trained with, and the stages run
    once. Returns the encoder and its training history.
    """
    base = load_knowledge()
    config = RareModelParams.from_dict(params)
    parsed, _ = _cases(cases, base)
    _, common = _split(parsed, cases)
    return pretrain_encoder(base, common, config)


def train_rare_model(
    cases: pd.DataFrame, encoder: PhenotypeEncoder, params: dict[str, Any]
) -> tuple[RareDiseaseModel, dict[str, Any], dict[str, dict[str, float]]]:
    """Fit the hybrid on every known case, fine-tuning the pre-trained ``encoder``;
    returns model, training report, MLflow metrics."""
    base = load_knowledge()
    config = RareModelParams.from_dict(params)
    parsed, stats = _cases(cases, base)
    rare, common = _split(parsed, cases)
    model, report = fit_rare_model(base, rare, common, config, warm_start=encoder)
    report["input_cases"] = stats
    metrics = {
        "rare_model.candidates": {"value": float(report["candidates"]), "step": 0},
        "rare_model.training_seconds": {"value": float(report["seconds"]), "step": 0},
        "rare_model.temperature": {"value": float(report["temperature"]), "step": 0},
    }
    return model, report, metrics


def _subsample_diseases(frame: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    """Whole diseases, in random order, until ``limit`` cases are reached."""
    diseases = frame["disease_id"].drop_duplicates().to_numpy()
    np.random.default_rng(seed).shuffle(diseases)
    sizes = frame["disease_id"].value_counts()
    keep = diseases[np.cumsum(sizes.reindex(diseases).to_numpy()) <= limit]
    return frame[frame["disease_id"].isin(keep)]


def validate_rare_model(
    cases: pd.DataFrame,
    encoder: PhenotypeEncoder,
    pretraining: dict[str, Any],
    params: dict[str, Any],
) -> tuple[dict[str, Any], str, dict[str, dict[str, float]]]:
    """Real-case validation (registry cases ranked) under both protocols, against the
    one-sided and symmetric Resnik baselines, with bootstrap intervals and a
    per-disease breakdown (:mod:`disease_pipeline.rare.evaluation`). The simulated rare
    cases join every fit's training side, as they join the trained model's.

    Every fit starts from the pre-trained ``encoder`` the model was trained from;
    ``validation.workers`` processes run the fits. ``validation.max_cases`` (null:
    every registry case) may bound the time: whole diseases are then drawn at random
    until that many cases. Returns the JSON report, its markdown rendering and MLflow
    metrics; with ``validation.enabled`` false, a report saying so.
    """
    options = params.get("validation", {})
    if not options.get("enabled", True):
        result = {"skipped": "parameter rare_model.validation.enabled is false"}
        return result, "# Rare-disease model validation\n\nSkipped.\n", {}
    base = load_knowledge()
    config = RareModelParams.from_dict(params)
    registry = cases[cases["source"] == PUBLISHED]
    if registry.empty:
        result = {"skipped": "no registry case (phenopacket) to validate on"}
        return result, "# Rare-disease model validation\n\nNo registry case.\n", {}
    limit = options.get("max_cases")
    if limit is not None and len(registry) > int(limit):
        registry = _subsample_diseases(registry, int(limit), int(params.get("seed", 0)))
    parsed, _ = _cases(registry, base, keep_empty=True)
    common, _ = _cases(cases[cases["category"] == "COMMON"], base)
    simulated, _ = _cases(
        cases[(cases["source"] != PUBLISHED) & (cases["category"] == "RARE")], base
    )
    result = run_validation(
        base,
        parsed,
        common,
        config,
        n_folds=int(options.get("folds", 5)),
        shots=list(options.get("shots", [1, 3])),
        warm_start=encoder,
        pretraining=pretraining,
        workers=int(options.get("workers", 1)),
        other_cases=simulated,
    )
    metrics = {
        f"rare_model.{protocol}.{method}.{name}": {"value": float(value), "step": 0}
        for protocol, block in result["protocols"].items()
        for method, summary in block["metrics"].items()
        for name, value in summary.items()
        if name != "n"
    }
    return result, validation_markdown(result), metrics


def benchmark_rare_model(
    model: RareDiseaseModel, cases: pd.DataFrame, params: dict[str, Any]
) -> dict[str, Any]:
    """Latency per patient against all candidates (knowledge scorer alone, full ranking)."""
    options = params.get("benchmark", {})
    n = int(options.get("patients", 200))
    base = load_knowledge()
    parsed, _ = _cases(cases[cases["category"] == "RARE"], base)
    if not parsed:
        return {"skipped": "no case to time"}
    rng = np.random.default_rng(0)
    sample = [parsed[i] for i in rng.choice(len(parsed), size=min(n, len(parsed)), replace=False)]
    return latency_report(model, sample, threads=int(options.get("threads", 1)))
