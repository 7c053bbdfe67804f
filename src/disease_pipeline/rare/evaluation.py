"""Real-case validation of the rare model under two protocols.

1. ``unseen``: leave-disease-out folds — no case of an evaluated disease is used to fit
   the model (neither as support nor for validation); only its annotations are known.
2. ``few_shot_k``: for diseases with more than ``k`` cases, ``k`` random cases are
   support (training) examples and the others are tested; diseases with ``k`` cases or
   fewer are used for training only.

Each tested case is ranked among ALL candidates by the hybrid, the likelihood-ratio
knowledge scorer alone, the encoder alone, and two Resnik best-match-average
baselines: one-sided (patient term → best-matching annotated term, Phenomizer's
variant, the one to beat) and symmetric (the disease side averaged in). A case with no
usable term, or whose disease is not a candidate, counts as a miss. Each protocol
carries disease-cluster bootstrap intervals, the paired differences to the one-sided
Resnik baseline and a per-disease breakdown with the failure modes of the worst.

Ties: every method is ranked with ties sharing the mean rank. The one-sided Resnik
score ties often at the top (a patient whose terms are all annotated to several
diseases gives each the maximum, the mean IC of the patient's terms: 21 % of the
registry cases tie the truth with a median of 7 candidates), so the report also shows
``resnik_one_sided_omim_ties_won``: the same score over OMIM candidates only, with
every tie counted in the truth's favour (rank = 1 + candidates strictly above). That is
the convention under which an external evaluation reported one-sided Resnik at
0.54/0.58/0.61; it is a diagnostic of the baseline, not a ranking a clinician can use
(a tie group of 7 does not name the disease).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from disease_pipeline.rare.cases import Case, group_by_disease
from disease_pipeline.rare.encoder import PatientInput, PhenotypeEncoder
from disease_pipeline.rare.fit import Knowledge, RareModelParams, fit_rare_model, pretrain_encoder
from disease_pipeline.rare.model import RareDiseaseModel, patient_input
from disease_pipeline.rare.validation_stats import bootstrap_metrics, per_disease

METHODS = (
    "hybrid",
    "knowledge",
    "encoder",
    "resnik_one_sided",
    "resnik_symmetric",
    "resnik_one_sided_omim_ties_won",
)
#: methods ranked with ties counted in the truth's favour (see :func:`rank_tie_won`)
TIES_WON = ("resnik_one_sided_omim_ties_won",)
#: methods whose ranking groups equivalent candidates (see :mod:`.equivalence`)
GROUPED = ("hybrid",)
#: the baseline the hybrid must beat (paired bootstrap differences are taken to it)
REFERENCE = "resnik_one_sided"
TOP_K = (1, 3, 10)
#: test cases ranked together (bounds the cases × candidates arrays)
SCORE_BLOCK = 64


def rank_of(scores: np.ndarray, truth: int | None) -> float:
    """1-based rank of ``truth`` (ties share the mean rank); inf when it is no candidate."""
    if truth is None or not np.isfinite(scores[truth]):
        return float("inf")
    higher = int(np.sum(scores > scores[truth]))
    ties = int(np.sum(scores == scores[truth])) - 1
    return 1.0 + higher + ties / 2.0


def rank_tie_won(scores: np.ndarray, truth: int | None) -> float:
    """1-based rank of ``truth`` with every tie counted in its favour; inf when it is no
    candidate or has no finite score."""
    if truth is None or not np.isfinite(scores[truth]):
        return float("inf")
    return 1.0 + float(np.sum(scores > scores[truth]))


def summarise(ranks: list[float]) -> dict[str, float]:
    """top-1/3/10 accuracy and mean reciprocal rank."""
    r = np.asarray(ranks, dtype=float)
    if len(r) == 0:
        return {"n": 0, **{f"top{k}": float("nan") for k in TOP_K}, "mrr": float("nan")}
    out: dict[str, float] = {"n": len(r)}
    out.update({f"top{k}": round(float(np.mean(r <= k)), 4) for k in TOP_K})
    out["mrr"] = round(float(np.mean(1.0 / r)), 4)
    return out


def _block_scores(model: RareDiseaseModel, patients: list[PatientInput]) -> dict[str, np.ndarray]:
    """``(n_patients, n_candidates)`` scores of every method of :data:`METHODS`.

    The symmetric Resnik BMA is the mean of the one-sided score and its disease side
    (:meth:`OneSidedResnik.disease_side`), both vectorised over the block. The hybrid
    ranks equivalent candidates in one place (:meth:`RareDiseaseModel.grouped`, as the
    service does); the other methods rank every candidate on its own."""
    components = model.components
    present = [p.present for p in patients]
    knowledge = components.knowledge.score_parts_batch(present, [p.excluded for p in patients])
    n = (len(patients), len(model.candidates))
    one_sided = components.resnik.score_batch(present)[0]
    omim = (model.candidates.table["database"] == "OMIM").to_numpy()
    return {
        "hybrid": model.grouped(components.logits_batch(patients, model.weights)),
        "knowledge": knowledge[0] + knowledge[1],
        "encoder": components.encoder.similarity_batch(patients)
        if components.encoder is not None
        else np.zeros(n),
        "resnik_one_sided": one_sided,
        "resnik_symmetric": 0.5 * (one_sided + components.resnik.disease_side(present)),
        "resnik_one_sided_omim_ties_won": np.where(omim[None, :], one_sided, -np.inf),
    }


def _case_facts(
    model: RareDiseaseModel, case: Case, patient: PatientInput, truth: int | None,
    hybrid: np.ndarray,
) -> dict[str, Any]:  # fmt: skip
    """What explains a case's rank: terms, annotations of the truth, rivals above it."""
    components = model.components
    annotated = 0
    unexplained = 1.0
    non_omim_above = 0
    if truth is not None:
        annotated = int(components.annotated_terms[truth])
        if len(patient.present):
            matched = [
                components.resnik.best_match(int(q))[truth] >= components.resnik.ic[q] - 1e-6
                for q in patient.present
            ]
            unexplained = 1.0 - float(np.mean(matched))
        place = hybrid[model.representative(truth)]  # ``hybrid`` is the grouped ranking
        non_omim_above = int(np.sum((hybrid > place) & (components.not_omim > 0)))
    return {
        "case_id": case.case_id,
        "disease_id": case.disease_id,
        "disease_name": case.disease_name,
        "n_terms": len(patient.present),
        "annotated_terms": annotated,
        "unexplained_share": round(unexplained, 3),
        "non_omim_above": non_omim_above,
        "top1": str(model.candidates.ids[int(np.argmax(hybrid))]),
    }


def score_cases_detailed(
    base: Knowledge, model: RareDiseaseModel, tests: list[Case], params: RareModelParams
) -> tuple[dict[str, list[float]], list[dict[str, Any]]]:
    """Rank of each test case's disease under every method of :data:`METHODS`, and the
    per-case facts of :func:`_case_facts` (a case without a usable term is a miss)."""
    ranks: dict[str, list[float]] = {m: [] for m in METHODS}
    details: list[dict[str, Any]] = []
    for start in tqdm(range(0, len(tests), SCORE_BLOCK), desc="rare validation", leave=False):
        block = tests[start : start + SCORE_BLOCK]
        patients = [patient_input(base.space, c) for c in block]
        usable = [i for i, p in enumerate(patients) if len(p.present)]
        scores = _block_scores(model, [patients[i] for i in usable]) if usable else {}
        position = {i: j for j, i in enumerate(usable)}
        for i, (case, patient) in enumerate(zip(block, patients, strict=True)):
            truth = model.candidates.index.get(case.disease_id)
            # in the grouped hybrid ranking the truth's group stands at its primary row
            grouped = None if truth is None else model.representative(truth)
            j = position.get(i)
            for name in METHODS:
                ranking = rank_tie_won if name in TIES_WON else rank_of
                target = grouped if name in GROUPED else truth
                ranks[name].append(float("inf") if j is None else ranking(scores[name][j], target))
            hybrid = scores["hybrid"][j] if j is not None else np.zeros(len(model.candidates))
            facts = _case_facts(model, case, patient, truth, hybrid)
            details.append(facts | {"hybrid_rank": _finite_rank(ranks["hybrid"][-1])})
    return ranks, details


def _finite_rank(rank: float) -> float | None:
    return rank if np.isfinite(rank) else None


def score_cases(
    base: Knowledge, model: RareDiseaseModel, tests: list[Case], params: RareModelParams
) -> dict[str, list[float]]:
    """Rank of each test case's disease under every method of :data:`METHODS`."""
    return score_cases_detailed(base, model, tests, params)[0]


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
    details: list[dict[str, Any]] = []
    fits = []
    for i, fold in enumerate(unseen_folds(cases, n_folds, params.seed)):
        held = set(fold)
        train = _usable([c for c in cases if c.disease_id not in held])
        tests = [c for c in cases if c.disease_id in held]
        model, report = fit_rare_model(base, train, common_cases, params, warm_start)
        fits.append({"fold": i, "train_cases": len(train), "test_cases": len(tests),
                     "seconds": report["seconds"], "weights": report["weights"],
                     "temperature": report["temperature"]})  # fmt: skip
        fold_ranks, fold_details = score_cases_detailed(base, model, tests, params)
        for name, values in fold_ranks.items():
            ranks[name] += values
        details += fold_details
    return {"folds": fits, **_statistics(ranks, details)}


def _statistics(ranks: dict[str, list[float]], details: list[dict[str, Any]]) -> dict[str, Any]:
    """Metrics, disease-cluster bootstrap intervals (and paired differences to
    :data:`REFERENCE`) and the per-disease breakdown of one protocol."""
    diseases = [d["disease_id"] for d in details]
    return {
        "metrics": {m: summarise(r) for m, r in ranks.items()},
        "bootstrap": bootstrap_metrics(ranks, diseases, reference=REFERENCE),
        "per_disease": per_disease(ranks, details, reference=REFERENCE),
    }


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
    ranks, details = score_cases_detailed(base, model, tests, params)
    return {
        "k": k,
        "train_cases": len(train),
        "test_cases": len(tests),
        "test_diseases": len({c.disease_id for c in tests}),
        "seconds": report["seconds"],
        "weights": report["weights"],
        "temperature": report["temperature"],
        **_statistics(ranks, details),
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
