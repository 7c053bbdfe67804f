"""Real-case validation of the rare model under two protocols.

1. ``unseen``: leave-disease-out folds — no case of an evaluated disease is used to fit
   the model (neither as support nor for validation); only its annotations are known.
2. ``few_shot_k``: for diseases with more than ``k`` cases, ``k`` random cases are
   support (training) examples and the others are tested; diseases with ``k`` cases or
   fewer are used for training only.
3. ``new_publication`` (when each case's publication is known): the publications of
   every disease reported in two or more are dealt to folds; a fold tests the cases of
   its publications and trains on every other case, the other publications of the same
   disease included — a new case report of a known disease, as the trained model meets
   it. Random few-shot splits keep near twins from the same cohort on both sides; this
   protocol does not.

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

import logging
import multiprocessing
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from disease_pipeline.rare.cases import Case, group_by_disease
from disease_pipeline.rare.encoder import PhenotypeEncoder
from disease_pipeline.rare.encoder_index import PatientInput
from disease_pipeline.rare.fit import Knowledge, RareModelParams, fit_rare_model, pretrain_encoder
from disease_pipeline.rare.model import RareDiseaseModel, patient_input
from disease_pipeline.rare.validation_stats import bootstrap_metrics, per_disease

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Fit:
    """One fit of a protocol: the cases it is trained on and the cases it ranks."""

    train: list[Case]
    tests: list[Case]


@dataclass(frozen=True)
class FitResult:
    """What one :class:`Fit` gives: the fit's report and the ranks and facts of its tests."""

    report: dict[str, Any]
    ranks: dict[str, list[float]]
    details: list[dict[str, Any]]


def fit_and_score(
    base: Knowledge,
    fit: Fit,
    common_cases: list[Case],
    params: RareModelParams,
    warm_start: PhenotypeEncoder | None = None,
) -> FitResult:
    """Fit the hybrid on ``fit.train`` and rank ``fit.tests`` under every method."""
    model, report = fit_rare_model(base, fit.train, common_cases, params, warm_start)
    ranks, details = score_cases_detailed(base, model, fit.tests, params)
    return FitResult(report, ranks, details)


def _fit_and_score_alone(
    base: Knowledge,
    fit: Fit,
    common_cases: list[Case],
    params: RareModelParams,
    warm_start: PhenotypeEncoder | None,
) -> FitResult:
    """:func:`fit_and_score` in a worker process, with one BLAS/OpenMP thread (the
    workers share the machine's cores between them)."""
    with threadpool_limits(limits=1):
        return fit_and_score(base, fit, common_cases, params, warm_start)


def run_fits(
    base: Knowledge,
    fits: list[Fit],
    common_cases: list[Case],
    params: RareModelParams,
    *,
    warm_start: PhenotypeEncoder | None = None,
    workers: int = 1,
) -> list[FitResult]:
    """:func:`fit_and_score` of every fit, in order; ``workers`` > 1 runs them in that
    many spawned processes (every fit is seeded by ``params``, so the results do not
    depend on where a fit runs)."""
    if workers <= 1 or len(fits) <= 1:
        return [fit_and_score(base, f, common_cases, params, warm_start) for f in fits]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(fits)), mp_context=context) as pool:
        futures = [
            pool.submit(_fit_and_score_alone, base, f, common_cases, params, warm_start)
            for f in fits
        ]
        for done, future in enumerate(as_completed(futures), start=1):
            future.result()  # raise a failed fit at once
            logger.info("rare validation: %d of %d fits done", done, len(fits))
        return [future.result() for future in futures]


def unseen_fits(cases: list[Case], n_folds: int, seed: int) -> list[Fit]:
    """Leave-disease-out: per fold, train without any case of the fold's diseases."""
    fits = []
    for fold in unseen_folds(cases, n_folds, seed):
        held = set(fold)
        train = _usable([c for c in cases if c.disease_id not in held])
        fits.append(Fit(train, [c for c in cases if c.disease_id in held]))
    return fits


def unseen_result(fits: list[Fit], results: list[FitResult]) -> dict[str, Any]:
    """The ``unseen`` protocol's report from its folds' results."""
    ranks: dict[str, list[float]] = {m: [] for m in METHODS}
    details: list[dict[str, Any]] = []
    folds = []
    for i, (fit, result) in enumerate(zip(fits, results, strict=True)):
        report = result.report
        folds.append({"fold": i, "train_cases": len(fit.train), "test_cases": len(fit.tests),
                      "seconds": report["seconds"], "weights": report["weights"],
                      "temperature": report["temperature"]})  # fmt: skip
        for name, values in result.ranks.items():
            ranks[name] += values
        details += result.details
    return {"folds": folds, **_statistics(ranks, details)}


def protocol_unseen(
    base: Knowledge,
    cases: list[Case],
    common_cases: list[Case],
    params: RareModelParams,
    *,
    n_folds: int,
    warm_start: PhenotypeEncoder | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Leave-disease-out: per fold, fit without any case of the fold's diseases."""
    fits = unseen_fits(cases, n_folds, params.seed)
    results = run_fits(base, fits, common_cases, params, warm_start=warm_start, workers=workers)
    return unseen_result(fits, results)


def publication_fits(
    cases: list[Case], publication: Mapping[str, str], n_folds: int, seed: int
) -> list[Fit]:
    """New publications of known diseases: every disease reported in two or more
    publications (``publication``: case id → publication id; a case without one never
    tests) has its publications dealt to the ``n_folds`` folds in a seeded random order,
    from a random fold on, so no fold takes all of them; a fold tests the cases of its
    publications and trains on every other usable case. Folds without a test are left
    out. Raises ``ValueError`` for fewer than 2 folds (one fold would hold out every
    publication of a disease)."""
    if n_folds < 2:
        raise ValueError(f"new_publication protocol: n_folds must be >= 2, got {n_folds}")
    rng = np.random.default_rng(seed)
    by_disease: dict[str, set[str]] = {}
    for case in cases:
        if case.case_id in publication:
            by_disease.setdefault(case.disease_id, set()).add(publication[case.case_id])
    fold_of: dict[tuple[str, str], int] = {}
    for disease in sorted(by_disease):
        names = sorted(by_disease[disease])
        if len(names) < 2:
            continue
        start = int(rng.integers(n_folds))
        for j, i in enumerate(rng.permutation(len(names))):
            fold_of[(disease, names[i])] = (start + j) % n_folds
    tests: list[list[Case]] = [[] for _ in range(n_folds)]
    for case in cases:
        fold = fold_of.get((case.disease_id, publication.get(case.case_id, "")))
        if fold is not None:
            tests[fold].append(case)
    fits = []
    for held in filter(None, tests):
        tested = {c.case_id for c in held}
        fits.append(Fit(_usable([c for c in cases if c.case_id not in tested]), held))
    return fits


def publication_result(
    fits: list[Fit], results: list[FitResult], publication: Mapping[str, str]
) -> dict[str, Any]:
    """The ``new_publication`` protocol's report from its folds' results."""
    block = unseen_result(fits, results)
    tests = [c for fit in fits for c in fit.tests]
    return {
        "test_cases": len(tests),
        "test_diseases": len({c.disease_id for c in tests}),
        "test_publications": len({publication[c.case_id] for c in tests}),
        **block,
    }


def _statistics(ranks: dict[str, list[float]], details: list[dict[str, Any]]) -> dict[str, Any]:
    """Metrics, disease-cluster bootstrap intervals (and paired differences to
    :data:`REFERENCE`) and the per-disease breakdown of one protocol."""
    diseases = [d["disease_id"] for d in details]
    return {
        "metrics": {m: summarise(r) for m, r in ranks.items()},
        "bootstrap": bootstrap_metrics(ranks, diseases, reference=REFERENCE),
        "per_disease": per_disease(ranks, details, reference=REFERENCE),
    }


def few_shot_fit(cases: list[Case], k: int, seed: int) -> Fit:
    """``k`` support cases per disease with more than ``k`` cases; the rest are tested."""
    rng = np.random.default_rng(seed + k)
    train, tests = [], []
    for _, group in sorted(group_by_disease(cases).items()):
        if len(group) <= k:
            train += group
            continue
        order = rng.permutation(len(group))
        train += [group[j] for j in order[:k]]
        tests += [group[j] for j in order[k:]]
    return Fit(_usable(train), tests)


def with_other_cases(fit: Fit, others: list[Case]) -> Fit:
    """``fit`` with ``others`` on its training side, except those of a disease it tests
    (an unseen disease stays unseen, a few-shot one keeps its k support cases)."""
    tested = {c.disease_id for c in fit.tests}
    return Fit(fit.train + [c for c in others if c.disease_id not in tested], fit.tests)


def few_shot_result(k: int, fit: Fit, result: FitResult, train_cases: int) -> dict[str, Any]:
    """The ``few_shot_k`` protocol's report from its fit's result."""
    report = result.report
    return {
        "k": k,
        "train_cases": train_cases,
        "test_cases": len(fit.tests),
        "test_diseases": len({c.disease_id for c in fit.tests}),
        "seconds": report["seconds"],
        "weights": report["weights"],
        "temperature": report["temperature"],
        **_statistics(result.ranks, result.details),
    }


def _few_shot_train_cases(cases: list[Case], k: int) -> int:
    """Cases on the training side of the few-shot split, usable or not (the report's
    ``train_cases``)."""
    return sum(min(len(group), k) for group in group_by_disease(cases).values())


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
    fit = few_shot_fit(cases, k, params.seed)
    result = fit_and_score(base, fit, common_cases, params, warm_start)
    return few_shot_result(k, fit, result, _few_shot_train_cases(cases, k))


def run_validation(
    base: Knowledge,
    cases: list[Case],
    common_cases: list[Case],
    params: RareModelParams,
    *,
    n_folds: int,
    shots: list[int],
    warm_start: PhenotypeEncoder | None = None,
    pretraining: dict[str, Any] | None = None,
    workers: int = 1,
    other_cases: list[Case] | None = None,
    publications: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Both protocols (and ``new_publication`` when ``publications`` maps case ids to
    publication ids) and the dataset facts, as one JSON-ready dict.

    The encoder stages that use no rare case warm-start every fit: ``warm_start`` (with
    its ``pretraining`` history) when given — the encoder the trained model starts
    from — else they are run here once. ``other_cases`` (the simulated rare encounters
    the trained model also learns from) join every fit's training side, except those
    of the diseases the fit tests, and are never ranked, so each fit repeats the
    trained model's procedure. The fits of the protocols (``n_folds`` + one per k of
    ``shots`` + up to ``n_folds`` over publications) run in ``workers`` processes.
    """
    started = time.monotonic()
    if warm_start is None:
        warm_start, pretraining = pretrain_encoder(base, common_cases, params)
    annotated = set(base.annotations["disease_id"])
    missing = [c for c in cases if c.disease_id not in annotated]
    extra = _usable(other_cases or [])
    unseen = [with_other_cases(f, extra) for f in unseen_fits(cases, n_folds, params.seed)]
    few_shot = [with_other_cases(few_shot_fit(cases, k, params.seed), extra) for k in shots]
    publications = publications or {}
    published = [
        with_other_cases(f, extra)
        for f in publication_fits(cases, publications, n_folds, params.seed)
    ]
    results = run_fits(
        base,
        [*unseen, *few_shot, *published],
        common_cases,
        params,
        warm_start=warm_start,
        workers=workers,
    )
    done = len(unseen) + len(few_shot)
    result: dict[str, Any] = {
        "cases": len(cases),
        "diseases": len(group_by_disease(cases)),
        "other_training_cases": len(extra),
        "cases_without_usable_terms": sum(1 for c in cases if not c.present),
        "cases_truth_not_annotated": len(missing),
        "diseases_not_annotated": len({c.disease_id for c in missing}),
        "pretraining": pretraining or {},
        "workers": workers,
        "protocols": {
            "unseen": unseen_result(unseen, results[: len(unseen)]),
            **{
                f"few_shot_k{k}": few_shot_result(k, fit, outcome, _few_shot_train_cases(cases, k))
                for k, fit, outcome in zip(
                    shots, few_shot, results[len(unseen) : done], strict=True
                )
            },
        },
    }
    if published:
        result["protocols"]["new_publication"] = publication_result(
            published, results[done:], publications
        )
    result["seconds"] = round(time.monotonic() - started, 1)
    return result
