"""Per-candidate component scores of the hybrid (its feature columns, see
:data:`disease_pipeline.rare.hybrid.FEATURES`).

Knowledge features (they rank diseases with no known case, the *unseen* situation):

* ``knowledge_present`` / ``knowledge_excluded``: LIRICAL-like log likelihood ratios of
  the present and excluded terms (ancestor matches discounted, explicit NOT
  annotations) against profiles updated with known cases;
* ``knowledge_robust``: the same present-term sum with each term's log LR floored at
  ``log(robust_floor)``, so one unexplained finding does not sink a disease;
* ``resnik_one_sided`` / ``matched_share``: one-sided Resnik best-match average and
  its IC-normalised (Lin-like) share, against the annotations
  (:mod:`disease_pipeline.rare.similarity`).

Case features (few-shot), in two disjoint families — candidates with published
(registry) cases, ``*_published``, and candidates known from unpublished (simulated)
cases only, ``*_unpublished``: ``resnik_<family>`` (one-sided Resnik against the terms
of the candidate's known cases, 0 outside the family), ``<family>_cases`` (the
candidate is in the family) and ``encoder_if_<family>`` (the encoder on those only),
so the learned weights can trust each kind of case where there are some and the
knowledge features elsewhere; ``encoder`` is the cosine to the prototypes of every
candidate. ``disease_side``: the candidate side of the Resnik
match (how much of the candidate's annotated profile the patient shows), which breaks
the ties of the one-sided score among candidates explaining every patient term, and
``exact_share`` (the IC share of the patient's terms the candidate is annotated with
exactly, not only through a more specific term) breaks them further.
``considered_share``: the IC share of the patient's excluded terms inside the
candidate's annotated spectrum (pertinent negatives are recorded for the diseases a
clinician considers, so they point at them as well as against them).
``not_omim``: ORPHA/DECIPHER rows, which largely duplicate OMIM
entries (the learned weight keeps one disease from taking two places).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import xgboost as xgb

from disease_pipeline.rare.cases import PUBLISHED, Case
from disease_pipeline.rare.encoder_index import EncoderIndex, Featuriser, PatientInput
from disease_pipeline.rare.hybrid import FEATURES, RERANK_FEATURES, reranked
from disease_pipeline.rare.profiles import Candidates, Profiles, case_profiles, merge_profiles
from disease_pipeline.rare.scorer import (
    LikelihoodRatioScorer,
    LRParams,
    _same,
    _summed,
    _summed_each,
    background_frequency,
    information_content,
)
from disease_pipeline.rare.similarity import OneSidedResnik
from disease_pipeline.rare.terms import TermSpace

if TYPE_CHECKING:  # the fitted components never hold a PyTorch object
    from disease_pipeline.rare.encoder import PhenotypeEncoder

#: floor of one present term's likelihood ratio in ``knowledge_robust``
ROBUST_FLOOR = 0.2


def patient_input(space: TermSpace, case: Case) -> PatientInput:
    """Encoder/scorer input of a cleaned case."""
    return PatientInput(
        present=np.asarray(space.indices(case.present), dtype=np.int64),
        excluded=np.asarray(space.indices(case.excluded), dtype=np.int64),
        age=case.age,
        sex=case.sex,
    )


class Components:
    """Per-candidate component scores for one patient or a batch (module docstring).

    ``knowledge``: likelihood ratio against the annotations alone (the knowledge scorer
    of the validation report). ``case_knowledge``: the same against profiles updated
    with known cases. ``resnik``: one-sided Resnik against the annotations.
    """

    def __init__(
        self,
        space: TermSpace,
        candidates: Candidates,
        knowledge: Profiles,
        cases: list[Case],
        *,
        lr_params: LRParams,
        pseudocount: float,
        encoder: tuple[PhenotypeEncoder, Featuriser] | None,
    ) -> None:
        self.space = space
        self.background = background_frequency(knowledge)
        self.knowledge = LikelihoodRatioScorer(knowledge, self.background, space, lr_params)
        known = [c for c in cases if c.disease_id in candidates.index]
        self.case_profiles = case_profiles(known, candidates, space)
        merged = merge_profiles(knowledge, self.case_profiles, pseudocount)
        self.case_knowledge = LikelihoodRatioScorer(merged, self.background, space, lr_params)
        ic = information_content(knowledge)
        self.resnik = OneSidedResnik(knowledge, ic, space)
        self.case_resnik = OneSidedResnik(self.case_profiles, ic, space)
        self.has_cases = (self.case_profiles.n_cases > 0).astype(np.float64)
        self.has_published = np.zeros(len(self.has_cases))
        self.has_published[
            [candidates.index[c.disease_id] for c in known if c.source == PUBLISHED]
        ] = 1.0
        self.annotated_terms = np.diff(sp.csr_matrix(knowledge.direct).indptr)
        table = candidates.table
        self.not_omim = ((table["category"] == "RARE") & (table["database"] != "OMIM")).to_numpy(
            np.float64
        )
        self.encoder: EncoderIndex | None = None
        if encoder is not None:
            # imported here: fitting trains with PyTorch, predicting never imports it
            from disease_pipeline.rare.encoder import build_index

            rows = np.array([candidates.index[c.disease_id] for c in known], dtype=np.int64)
            inputs = [patient_input(space, c) for c in known]
            self.encoder = build_index(encoder[0], encoder[1], knowledge, rows, inputs)

    def columns_batch(self, patients: list[PatientInput]) -> Iterator[tuple[str, np.ndarray]]:
        """``(name, (n_patients, n_candidates) array)`` of every feature of
        :data:`FEATURES`, in order, one at a time (never all stacked)."""
        present = [p.present for p in patients]
        excluded = [p.excluded for p in patients]
        n = (len(patients), len(self.has_cases))
        scorer = self.case_knowledge
        table = scorer.log_ratio_table
        floor = float(np.log(ROBUST_FLOOR))
        # the present terms' log LRs, looked up once for the plain and the floored sums
        knowledge_present, knowledge_robust = _summed_each(
            present,
            lambda t: table(t, excluded=False),
            (_same, lambda rows: np.maximum(rows, floor)),
        )
        yield "knowledge_present", knowledge_present
        del knowledge_present
        yield "knowledge_excluded", _summed(excluded, lambda t: table(t, excluded=True))
        similarity = (
            self.encoder.similarity_batch(patients) if self.encoder is not None else np.zeros(n)
        )
        yield "encoder", similarity
        resnik, share = self.resnik.score_batch(present)
        yield "resnik_one_sided", resnik
        yield "matched_share", share
        yield "knowledge_robust", knowledge_robust
        del knowledge_robust
        unpublished = self.has_cases - self.has_published  # known from unpublished only
        yield "unpublished_cases", np.broadcast_to(unpublished, n)
        yield "encoder_if_unpublished", similarity * unpublished
        yield "not_omim", np.broadcast_to(self.not_omim, n)
        resnik_cases = self.case_resnik.score_batch(present)[0]
        yield "resnik_unpublished", resnik_cases * unpublished
        yield "disease_side", self.resnik.disease_side(present)
        yield "exact_share", self.resnik.exact_share(present)
        yield "considered_share", self.resnik.considered_share(excluded)
        yield "published_cases", np.broadcast_to(self.has_published, n)
        yield "encoder_if_published", similarity * self.has_published
        yield "resnik_published", resnik_cases * self.has_published

    def features(self, patient: PatientInput) -> np.ndarray:
        """Candidate × :data:`FEATURES` matrix of one patient."""
        columns = dict(self.columns_batch([patient]))
        return np.column_stack([columns[name][0] for name in FEATURES])

    #: re-ranking trees of the hybrid (:func:`disease_pipeline.rare.hybrid.fit_reranker`)
    #: and how many candidates they re-rank; a model pickled without them has none
    reranker: xgb.Booster | None = None
    rerank_top: int = 0

    def logits_batch(self, patients: list[PatientInput], weights: np.ndarray) -> np.ndarray:
        """``(n_patients, n_candidates)`` hybrid logits ``w · x_d`` of many patients,
        accumulated one feature column at a time, then each patient's strongest
        candidates re-ranked by :attr:`reranker` (whose columns are kept for it)."""
        position = {name: j for j, name in enumerate(FEATURES)}
        out = np.zeros((len(patients), len(self.has_cases)))
        kept: list[np.ndarray] = []
        for name, column in self.columns_batch(patients):
            w = float(weights[position[name]])
            if w:
                out += w * column
            if self.reranker is not None and name in RERANK_FEATURES:
                kept.append(np.broadcast_to(column, out.shape))
        return reranked(out, kept, self.reranker, self.rerank_top)

    def knowledge_score(self, patient: PatientInput) -> np.ndarray:
        """Annotation-only likelihood-ratio score (the knowledge scorer alone)."""
        return self.knowledge.score(patient.present, patient.excluded)

    def resnik_score(self, patient: PatientInput) -> np.ndarray:
        """One-sided Resnik best-match average against the annotations."""
        return self.resnik.score(patient.present)
