"""Fitting the rare-disease hybrid from knowledge and known cases.

1. Candidates: annotated diseases, the common catalogue, diseases known only from cases.
2. Known cases are split into *support* cases and *validation* cases. Validation takes
   some diseases whole (no case of them left as support: the unseen-disease situation)
   and a share of the cases of others, the rest staying as support (the few-shot
   situation: a new patient of a disease with published cases). Only cases of
   ``validation_sources`` (every source when empty) are validation cases. With
   ``validation_splits`` K > 1 the split is cross-fitted: K disjoint blocks of diseases
   each validate once, against the support the others leave.
3. The encoder is pre-trained on common diseases and fine-tuned episodically on rare
   ones, with support cases as queries and prototypes (once per part).
4. On validation cases (each scored against its own part's support cases and encoder,
   all parts pooled), the combination weights are fitted on one half and the
   temperature on the other. With too few validation cases of diseases that keep
   support cases (e.g. one known case per disease), the case features keep their prior
   weight and the weights are fitted without the wrong candidates that have known
   cases (:data:`disease_pipeline.rare.hybrid.CASE_FEATURES`).
5. The final model uses every known case as support and the first part's encoder;
   with ``equivalence: name``, candidates that are one disease in several databases
   (same normalised name) are grouped to rank in one place.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, fields, replace
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.knowledge.annotations import load_supplemented_annotations
from disease_pipeline.knowledge.catalogue import load_common_diseases
from disease_pipeline.knowledge.hpo import Ontology, load_ontology
from disease_pipeline.rare.cases import Case, group_by_disease
from disease_pipeline.rare.encoder import EncoderParams, PhenotypeEncoder
from disease_pipeline.rare.encoder_index import Featuriser
from disease_pipeline.rare.equivalence import MATCHES, equivalence_groups
from disease_pipeline.rare.explanation import (
    Explainer,
    ExplanationParams,
    annotated_frequencies,
)
from disease_pipeline.rare.hybrid import (
    CASE_FAMILIES,
    FEATURES,
    PRIOR_WEIGHTS,
    SHORTLIST_FEATURES,
    HybridParams,
    case_columns_fixed,
    case_patients,
    fit_reranker,
    fit_temperature,
    fit_weights,
    without_case_candidates,
)
from disease_pipeline.rare.hybrid import shortlist as make_shortlist
from disease_pipeline.rare.model import Components, RareDiseaseModel, patient_input
from disease_pipeline.rare.profiles import (
    Candidates,
    Profiles,
    build_candidates,
    knowledge_profiles,
)
from disease_pipeline.rare.scorer import LRParams, information_content
from disease_pipeline.rare.synth import CaseSampler, SynthParams
from disease_pipeline.rare.terms import TermSpace, build_term_space
from disease_pipeline.rare.training import TrainingData, train_encoder

logger = logging.getLogger(__name__)

#: validation patients scored together (bounds the patients × candidates arrays)
VALIDATION_BLOCK = 64

_SECTIONS = {
    "knowledge": LRParams,
    "synthetic": SynthParams,
    "encoder": EncoderParams,
    "hybrid": HybridParams,
    "explanation": ExplanationParams,
}


def _section(cls: type, name: str, values: dict[str, Any] | None) -> Any:
    allowed = {f.name for f in fields(cls)}
    unknown = set(values or {}) - allowed
    if unknown:
        raise ValueError(f"parameters rare_model.{name}: unknown keys {sorted(unknown)}")
    return cls(**(values or {}))


@dataclass(frozen=True)
class RareModelParams:
    """All knobs of the rare model (the ``rare_model`` parameters, minus ``validation``)."""

    knowledge: LRParams
    synthetic: SynthParams
    encoder: EncoderParams
    hybrid: HybridParams
    explanation: ExplanationParams
    unknown_frequency: float = 1.0
    annotation_pseudocount: float = 3.0
    include_common: bool = True
    validation_share: float = 0.3
    unseen_share: float = 0.5
    few_shot_holdout: float = 0.5
    max_validation_cases: int = 1500
    #: sources of the cases that may be validation cases (the hybrid's weights and
    #: temperature are fitted on them); cases of other sources are support only, and
    #: are left out when their disease is held out whole. Empty: every source.
    validation_sources: tuple[str, ...] = ()
    #: cross-fitting: the hybrid's weights and temperature are fitted on this many
    #: disjoint validation parts pooled (each part scored against its own support
    #: cases and its own fine-tuned encoder), so one draw of the split does not decide
    #: them; validation_splits × validation_share must not exceed 1
    validation_splits: int = 1
    serving_top_k: int = 20
    #: equivalent candidates ranked in one place: "name" (same normalised name, see
    #: :mod:`disease_pipeline.rare.equivalence`) or "none"
    equivalence: str = "none"
    seed: int = 11

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> RareModelParams:
        """Build from the parameters dict; unknown keys raise ``ValueError`` naming them."""
        params = dict(params)
        sections = {
            name: _section(c, name, params.pop(name, None)) for name, c in _SECTIONS.items()
        }
        for section in ("cases", "validation", "benchmark"):  # used by the pipeline nodes
            params.pop(section, None)
        scalars = {f.name for f in fields(cls)} - set(_SECTIONS)
        unknown = set(params) - scalars
        if unknown:
            raise ValueError(f"parameters rare_model: unknown keys {sorted(unknown)}")
        if "validation_sources" in params:
            params["validation_sources"] = tuple(params["validation_sources"] or ())
        out = cls(**sections, **params)
        for name in ("validation_share", "unseen_share", "few_shot_holdout"):
            if not 0 <= getattr(out, name) <= 1:
                raise ValueError(f"parameter rare_model.{name} must be in [0, 1]")
        if out.validation_splits < 1 or out.validation_splits * out.validation_share > 1:
            raise ValueError(
                "parameter rare_model.validation_splits must be >= 1 and, times"
                " validation_share, at most 1"
            )
        if out.equivalence not in MATCHES:
            raise ValueError(f"parameter rare_model.equivalence must be one of {MATCHES}")
        return out


@dataclass
class Knowledge:
    """The knowledge the model is built from (loaded once, shared by fits)."""

    ontology: Ontology
    space: TermSpace
    annotations: pd.DataFrame
    catalogue: pd.DataFrame | None


@cache
def load_knowledge() -> Knowledge:
    """The shipped HPO, its disease annotations (with the newer release's diseases it
    lacks: :func:`load_supplemented_annotations`) and the common-disease catalogue
    (parsed once per process; callers must not mutate it)."""
    ontology = load_ontology()
    return Knowledge(
        ontology=ontology,
        space=build_term_space(ontology),
        annotations=load_supplemented_annotations(),
        catalogue=load_common_diseases(),
    )


def split_support_validation(
    cases: list[Case], params: RareModelParams, rng: np.random.Generator, part: int = 0
) -> tuple[list[Case], list[Case], list[Case]]:
    """Support cases, and two validation halves (weights, temperature) — see module doc.

    The diseases are shuffled by ``rng`` and part ``part`` validates on the
    ``part``-th block of ``validation_share`` of them: parts drawn with identically
    seeded generators are disjoint (cross-fitting, ``validation_splits``). Only cases
    of ``params.validation_sources`` (every source when empty) are validation cases; a
    disease held out whole loses its cases of other sources too (it must stay unseen),
    and a disease without a case of those sources stays support."""
    sources = set(params.validation_sources)
    eligible = [c for c in cases if not sources or c.source in sources]
    others = group_by_disease(c for c in cases if sources and c.source not in sources)
    groups = group_by_disease(eligible)
    diseases = sorted(groups)
    rng.shuffle(diseases)
    n_validation = round(params.validation_share * len(diseases))
    chosen = range(part * n_validation, (part + 1) * n_validation)
    support: list[Case] = [c for d in sorted(set(others) - set(groups)) for c in others[d]]
    validation: list[list[Case]] = []
    budget = params.max_validation_cases
    for i, disease in enumerate(diseases):
        group = groups[disease]
        if i not in chosen or budget <= 0:
            support += group + others.get(disease, [])
        elif rng.random() < params.unseen_share or len(group) == 1:
            taken = group[:budget]
            validation.append(taken)
            budget -= len(taken)
        else:
            # a share of the disease's cases (at least one, and at least one left as
            # support): as many few-shot as unseen situations per disease's worth of cases
            n = min(max(1, round(params.few_shot_holdout * len(group))), len(group) - 1, budget)
            picks = set(rng.choice(len(group), size=n, replace=False).tolist())
            validation.append([c for j, c in enumerate(group) if j in picks])
            support += [c for j, c in enumerate(group) if j not in picks]
            support += others.get(disease, [])
            budget -= n
    halves: tuple[list[Case], list[Case]] = ([], [])
    for i, group in enumerate(validation):
        halves[i % 2].extend(group)
    return support, halves[0], halves[1]


def _encoder_data(
    knowledge: Profiles,
    space: TermSpace,
    candidates: Candidates,
    cases: list[Case],
    params: RareModelParams,
) -> TrainingData:
    """Episode material: profiles, the sampler, common/rare rows and known cases by row."""
    index = candidates.index
    category = candidates.table["category"].to_numpy()
    case_rows: dict[int, list] = {}
    for case in cases:
        if case.disease_id in index:
            case_rows.setdefault(index[case.disease_id], []).append(patient_input(space, case))
    rare = np.where(category == "RARE")[0]
    has_cases = np.zeros(len(category), dtype=bool)
    has_cases[list(case_rows)] = True
    return TrainingData(
        profiles=knowledge,
        sampler=CaseSampler(knowledge.direct, space, params.synthetic, params.seed),
        common_rows=np.where((category == "COMMON") & knowledge.has_profile)[0],
        rare_rows=rare[knowledge.has_profile[rare] | has_cases[rare]],
        cases=case_rows,
    )


def _knowledge(
    base: Knowledge, cases: list[Case], params: RareModelParams
) -> tuple[Candidates, Profiles, Featuriser]:
    catalogue = base.catalogue if params.include_common else None
    candidates = build_candidates(base.annotations, catalogue, cases)
    knowledge = knowledge_profiles(
        base.annotations, catalogue, candidates, base.space, params.unknown_frequency
    )
    return candidates, knowledge, Featuriser(base.space, information_content(knowledge))


def validation_groups(
    components: Components,
    space: TermSpace,
    candidates: Candidates,
    cases: list[Case],
    *,
    reachable: np.ndarray,
    params: RareModelParams,
) -> list[np.ndarray]:
    """Shortlisted candidate × feature matrices of validation ``cases`` (truth first)
    for :func:`fit_weights`; cases whose disease no component can reach are skipped."""
    columns = [j for j, name in enumerate(FEATURES) if name in SHORTLIST_FEATURES]
    usable = [c for c in cases if reachable[candidates.index[c.disease_id]]]
    groups = []
    for start in range(0, len(usable), VALIDATION_BLOCK):
        block = usable[start : start + VALIDATION_BLOCK]
        x = dict(components.columns_batch([patient_input(space, c) for c in block]))
        for i, case in enumerate(block):
            row = candidates.index[case.disease_id]
            matrix = np.column_stack([x[name][i] for name in FEATURES])
            groups.append(matrix[make_shortlist(matrix, row, params.hybrid.shortlist, columns)])
    return groups


def pretrain_encoder(
    base: Knowledge, common_cases: list[Case], params: RareModelParams
) -> tuple[PhenotypeEncoder, dict[str, Any]]:
    """Encoder stages that use no rare case (common cases, annotation samples), for
    ``fit_rare_model(..., warm_start=...)`` in fits that differ only in their cases."""
    candidates, knowledge, featuriser = _knowledge(base, [], params)
    data = _encoder_data(knowledge, base.space, candidates, common_cases, params)
    return train_encoder(data, featuriser, replace(params.encoder, finetune_steps=0))


@dataclass
class _Part:
    """One cross-fitting part: its support, encoder and scored validation cases."""

    support: list[Case]
    encoder: PhenotypeEncoder
    history: dict[str, Any]
    components: Components
    groups: list[np.ndarray]
    held: list[Case]


def fit_rare_model(
    base: Knowledge,
    cases: list[Case],
    common_cases: list[Case],
    params: RareModelParams,
    warm_start: PhenotypeEncoder | None = None,
) -> tuple[RareDiseaseModel, dict[str, Any]]:
    """Fit the hybrid on known rare ``cases`` (+ ``common_cases`` for pre-training).

    ``warm_start`` (from :func:`pretrain_encoder`) skips the encoder's pre-training.
    Returns the model and a report (sizes, encoder history, weights, temperature, times).
    """
    started = time.monotonic()
    space = base.space
    candidates, knowledge, featuriser = _knowledge(base, cases, params)

    def _components(known: list[Case], encoder: PhenotypeEncoder) -> Components:
        return Components(
            space,
            candidates,
            knowledge,
            known,
            lr_params=params.knowledge,
            pseudocount=params.annotation_pseudocount,
            encoder=(encoder, featuriser),
        )

    parts = []
    for part in range(params.validation_splits):
        rng = np.random.default_rng(params.seed)  # the same shuffle: disjoint parts
        support, fit_cases, calibration_cases = split_support_validation(cases, params, rng, part)
        data = _encoder_data(knowledge, space, candidates, [*support, *common_cases], params)
        encoder, history = train_encoder(data, featuriser, params.encoder, warm_start)
        validating = _components(support, encoder)
        reachable = knowledge.has_profile.copy()
        reachable[validating.case_profiles.n_cases > 0] = True
        groups = validation_groups(
            validating, space, candidates, fit_cases, reachable=reachable, params=params
        )
        held = [c for c in calibration_cases if reachable[candidates.index[c.disease_id]]]
        parts.append(_Part(support, encoder, history, validating, groups, held))
        logger.info(
            "rare_model: validation part %d of %d: %d support cases, %d + %d validation",
            part + 1, params.validation_splits, len(support), len(groups), len(held),
        )  # fmt: skip
    groups = [g for part in parts for g in part.groups]
    fixed = case_columns_fixed(groups, params.hybrid.min_case_patients)
    for indicator in CASE_FAMILIES:
        if fixed[FEATURES.index(indicator)]:
            groups = [without_case_candidates(g, indicator) for g in groups]
    if groups:
        weights, _ = fit_weights(groups, params.hybrid.prior_strength, fixed=fixed)
    else:
        logger.warning("rare_model: no validation case to fit the hybrid; prior weights used")
        weights = PRIOR_WEIGHTS.copy()
    reranker = fit_reranker(groups, weights, params.hybrid, seed=params.seed)
    logits, truths = [], []
    for part in parts:
        part.components.reranker = reranker
        part.components.rerank_top = params.hybrid.rerank_top
        for start in range(0, len(part.held), VALIDATION_BLOCK):
            block = part.held[start : start + VALIDATION_BLOCK]
            z = part.components.logits_batch([patient_input(space, c) for c in block], weights)
            logits += list(z.astype(np.float32))
            truths += [candidates.index[c.disease_id] for c in block]
    temperature = fit_temperature(logits, truths)
    # the final model knows every case; its encoder is the first part's (it never saw
    # that part's validation cases, like the encoders the weights were fitted with)
    support, encoder, history = parts[0].support, parts[0].encoder, parts[0].history
    del parts
    final = _components(cases, encoder)
    final.reranker, final.rerank_top = reranker, params.hybrid.rerank_top
    catalogue = base.catalogue if params.include_common else None
    explainer = Explainer(
        annotated_frequencies(base.annotations, catalogue, candidates, space),
        knowledge,
        final.case_profiles,
        final.background,
        space,
        params=params.explanation,
    )
    equivalence = equivalence_groups(candidates.table, params.equivalence)
    report = {
        "candidates": len(candidates),
        "equivalence_groups": {
            "match": params.equivalence,
            "groups": equivalence.n_groups,
            "grouped_candidates": len(equivalence.members),
        },
        "candidates_by_database": candidates.table["database"].value_counts().to_dict(),
        "cases": len(cases),
        "diseases_with_cases": len(group_by_disease(cases)),
        "support_cases": len(support),
        "validation_splits": params.validation_splits,
        "validation_sources": list(params.validation_sources),
        "validation_cases": {
            "weights": len(groups),
            "weights_with_known_cases": sum(case_patients(groups, i) for i in CASE_FAMILIES),
            "weights_with_published_cases": case_patients(groups, "published_cases"),
            "temperature": len(truths),
        },
        "case_weights_fitted": not bool(fixed.any()),
        "common_cases": len(common_cases),
        "encoder": history,
        "weights": dict(zip(FEATURES, map(float, weights), strict=True)),
        "reranker": {
            "rounds": 0 if reranker is None else reranker.num_boosted_rounds(),
            "depth": params.hybrid.rerank_depth,
            "top": params.hybrid.rerank_top,
        },
        "temperature": temperature,
        "seconds": round(time.monotonic() - started, 1),
    }
    model = RareDiseaseModel(
        ontology=base.ontology,
        space=space,
        candidates=candidates,
        components=final,
        explainer=explainer,
        weights=weights,
        temperature=temperature,
        serving_top_k=params.serving_top_k,
        equivalence=equivalence if len(equivalence.members) else None,
        metadata={"training": report, "hpo_version": base.ontology.version},
    )
    return model, report
