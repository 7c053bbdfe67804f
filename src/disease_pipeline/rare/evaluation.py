"""Real-case validation of the rare model under two protocols.

1. ``unseen``: leave-disease-out folds — no case of an evaluated disease is used to fit
   the model (neither as support nor for validation); only its annotations are known.
2. ``few_shot_k``: for diseases with more than ``k`` cases, ``k`` random cases are
   support (training) examples and the others are tested; diseases with ``k`` cases or
   fewer are used for training only.

Each tested case is ranked among ALL candidates by the knowledge scorer alone, the
encoder alone, the hybrid, and a plain Resnik best-match-average baseline; a case with
no usable term, or whose disease is not a candidate, counts as a miss.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from disease_pipeline.rare.cases import Case, group_by_disease
from disease_pipeline.rare.encoder import PhenotypeEncoder
from disease_pipeline.rare.fit import Knowledge, RareModelParams, fit_rare_model, pretrain_encoder
from disease_pipeline.rare.model import RareDiseaseModel, patient_input
from disease_pipeline.rare.profiles import knowledge_profiles
from disease_pipeline.rare.scorer import ResnikBMA, information_content

METHODS = ("hybrid", "knowledge", "encoder", "resnik_bma")
TOP_K = (1, 3, 10)


def rank_of(scores: np.ndarray, truth: int | None) -> float:
    """1-based rank of ``truth`` (ties share the mean rank); inf when it is no candidate."""
    if truth is None or not np.isfinite(scores[truth]):
        return float("inf")
    higher = int(np.sum(scores > scores[truth]))
    ties = int(np.sum(scores == scores[truth])) - 1
    return 1.0 + higher + ties / 2.0


def summarise(ranks: list[float]) -> dict[str, float]:
    """top-1/3/10 accuracy and mean reciprocal rank."""
    r = np.asarray(ranks, dtype=float)
    if len(r) == 0:
        return {"n": 0, **{f"top{k}": float("nan") for k in TOP_K}, "mrr": float("nan")}
    out: dict[str, float] = {"n": len(r)}
    out.update({f"top{k}": round(float(np.mean(r <= k)), 4) for k in TOP_K})
    out["mrr"] = round(float(np.mean(1.0 / r)), 4)
    return out


def _resnik(base: Knowledge, model: RareDiseaseModel, params: RareModelParams) -> ResnikBMA:
    catalogue = base.catalogue if params.include_common else None
    profiles = knowledge_profiles(
        base.annotations, catalogue, model.candidates, base.space, params.unknown_frequency
    )
    return ResnikBMA(profiles, information_content(profiles), base.space)


def score_cases(
    base: Knowledge, model: RareDiseaseModel, tests: list[Case], params: RareModelParams
) -> dict[str, list[float]]:
    """Rank of each test case's disease under every method of :data:`METHODS`."""
    resnik = _resnik(base, model, params)
    components = model.components
    methods: dict[str, Callable] = {
        "hybrid": model.hybrid_logits,
        "knowledge": components.knowledge_score,
        "encoder": components.encoder.similarity,
        "resnik_bma": lambda p: resnik.score(p.present.tolist()),
    }
    ranks: dict[str, list[float]] = {m: [] for m in METHODS}
    for case in tqdm(tests, desc="rare validation: ranking", leave=False):
        patient = patient_input(base.space, case)
        truth = model.candidates.index.get(case.disease_id)
        for name, method in methods.items():
            if len(patient.present) == 0:
                ranks[name].append(float("inf"))
            else:
                ranks[name].append(rank_of(method(patient), truth))
    return ranks


def unseen_folds(cases: list[Case], n_folds: int, seed: int) -> list[list[str]]:
    """Diseases split into ``n_folds`` groups of about equal case counts."""
    groups = group_by_disease(cases)
    diseases = sorted(groups)
    np.random.default_rng(seed).shuffle(diseases)
    folds: list[list[str]] = [[] for _ in range(n_folds)]
    sizes = np.zeros(n_folds)
    for disease in sorted(diseases, key=lambda d: -len(groups[d])):
        j = int(np.argmin(sizes))
        folds[j].append(disease)
        sizes[j] += len(groups[disease])
    return folds


def _usable(cases: list[Case]) -> list[Case]:
    return [c for c in cases if c.present]


def protocol_unseen(
    base: Knowledge,
    cases: list[Case],
    common_cases: list[Case],
    params: RareModelParams,
    *,
    n_folds: int,
    warm_start: PhenotypeEncoder | None = None,
) -> dict[str, Any]:
    """Leave-disease-out: per fold, fit without any case of the fold's diseases."""
    ranks: dict[str, list[float]] = {m: [] for m in METHODS}
    fits = []
    for i, fold in enumerate(unseen_folds(cases, n_folds, params.seed)):
        held = set(fold)
        train = _usable([c for c in cases if c.disease_id not in held])
        tests = [c for c in cases if c.disease_id in held]
        model, report = fit_rare_model(base, train, common_cases, params, warm_start)
        fits.append({"fold": i, "train_cases": len(train), "test_cases": len(tests),
                     "seconds": report["seconds"], "weights": report["weights"]})  # fmt: skip
        for name, values in score_cases(base, model, tests, params).items():
            ranks[name] += values
    return {"folds": fits, "metrics": {m: summarise(r) for m, r in ranks.items()}}


def protocol_few_shot(
    base: Knowledge,
    cases: list[Case],
    common_cases: list[Case],
    params: RareModelParams,
    *,
    k: int,
    warm_start: PhenotypeEncoder | None = None,
) -> dict[str, Any]:
    """``k`` support cases per disease with more than ``k`` cases; the rest are tested."""
    rng = np.random.default_rng(params.seed + k)
    train, tests = [], []
    for _, group in sorted(group_by_disease(cases).items()):
        if len(group) <= k:
            train += group
            continue
        order = rng.permutation(len(group))
        train += [group[j] for j in order[:k]]
        tests += [group[j] for j in order[k:]]
    model, report = fit_rare_model(base, _usable(train), common_cases, params, warm_start)
    ranks = score_cases(base, model, tests, params)
    return {
        "k": k,
        "train_cases": len(train),
        "test_cases": len(tests),
        "test_diseases": len({c.disease_id for c in tests}),
        "seconds": report["seconds"],
        "weights": report["weights"],
        "metrics": {m: summarise(r) for m, r in ranks.items()},
    }


def run_validation(
    base: Knowledge,
    cases: list[Case],
    common_cases: list[Case],
    params: RareModelParams,
    *,
    n_folds: int,
    shots: list[int],
) -> dict[str, Any]:
    """Both protocols and the dataset facts, as one JSON-ready dict.

    The encoder stages that use no rare case run once and warm-start every fit.
    """
    started = time.monotonic()
    warm_start, pretraining = pretrain_encoder(base, common_cases, params)
    annotated = set(base.annotations["disease_id"])
    missing = [c for c in cases if c.disease_id not in annotated]
    result: dict[str, Any] = {
        "cases": len(cases),
        "diseases": len(group_by_disease(cases)),
        "cases_without_usable_terms": sum(1 for c in cases if not c.present),
        "cases_truth_not_annotated": len(missing),
        "diseases_not_annotated": len({c.disease_id for c in missing}),
        "pretraining": pretraining,
        "protocols": {
            "unseen": protocol_unseen(
                base, cases, common_cases, params, n_folds=n_folds, warm_start=warm_start
            ),
            **{
                f"few_shot_k{k}": protocol_few_shot(
                    base, cases, common_cases, params, k=k, warm_start=warm_start
                )
                for k in shots
            },
        },
    }
    result["seconds"] = round(time.monotonic() - started, 1)
    return result
