"""``RareDiseaseModel``: the fitted hybrid used by evaluation and serving.

``rank_patient(present_terms, excluded_terms, age, sex, top_k)`` returns the ranked
candidates with calibrated probabilities and explanations; ``rank(tables, features)``
is the :class:`disease_pipeline.predictor.bundle.RareRanker` protocol the
``DiseasePredictor`` calls (rare candidates only, score = probability among them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.knowledge.hpo import Ontology
from disease_pipeline.rare.components import Components, patient_input
from disease_pipeline.rare.encoder_index import PatientInput
from disease_pipeline.rare.equivalence import EquivalenceGroups
from disease_pipeline.rare.explanation import Explainer
from disease_pipeline.rare.hybrid import softmax
from disease_pipeline.rare.profiles import Candidates
from disease_pipeline.rare.terms import CleanedTerms, TermSpace, clean_terms, most_specific

#: patients scored together by ``rank`` (bounds the patients × candidates arrays)
RANK_BLOCK = 256
NO_TERMS_REASON = "no usable HPO phenotype term: a rare-disease ranking needs at least one"

__all__ = ["Components", "RareDiseaseModel", "encounter_terms", "patient_input", "top_k_stable"]


@dataclass(frozen=True)
class RareLookup:
    """What ``rank`` reads of the candidate table: the RARE candidates' positions
    (``columns``), ids (as a list and an array) and names, for the table ``table_id``."""

    table_id: int
    columns: np.ndarray
    ids: tuple[str, ...]
    id_array: np.ndarray
    names: np.ndarray

    @classmethod
    def of(cls, table: pd.DataFrame) -> RareLookup:
        """The lookup of a candidate table."""
        rare = (table["category"] == "RARE").to_numpy()
        columns = np.flatnonzero(rare)
        ids = table.loc[rare, "disease_id"].tolist()
        names = table["name"].astype(str).to_numpy()[columns]
        arrays = (columns, np.asarray(ids, dtype=str), names)
        for array in arrays:
            array.setflags(write=False)
        return cls(id(table), arrays[0], tuple(ids), arrays[1], arrays[2])


@dataclass
class RareDiseaseModel:
    """The fitted rare-disease hybrid (see module docstring)."""

    ontology: Ontology
    space: TermSpace
    candidates: Candidates
    components: Components
    explainer: Explainer
    weights: np.ndarray
    temperature: float
    serving_top_k: int = 20
    metadata: dict[str, Any] = field(default_factory=dict)
    #: candidates that are one disease (OMIM ↔ ORPHA ↔ DECIPHER), ranked in one place;
    #: None (and models pickled before it existed) ranks every candidate on its own
    equivalence: EquivalenceGroups | None = None

    @property
    def disease_ids(self) -> list[str]:
        """Ids of the RARE candidates the model can rank."""
        return list(self._rare_lookup().ids)

    def _rare_lookup(self) -> RareLookup:
        """The RARE candidates' positions, ids and names, computed once per process (and
        again if the candidate table is replaced): every ``rank`` call reads them, and
        deriving them from the 12,881-row table cost milliseconds per call."""
        table = self.candidates.table
        cached = self.__dict__.get("_rare")
        if cached is None or cached.table_id != id(table):
            cached = RareLookup.of(table)
            self.__dict__["_rare"] = cached
        return cached

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_rare", None)  # derived from the candidate table on demand
        return state

    # ------------------------------------------------------------------ scoring
    def grouped(self, logits: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        """``logits`` (patients × candidates, or one patient's vector) with each group of
        equivalent candidates in one place: its primary (OMIM) column holds the group's
        best logit, the other members ``-inf`` (see
        :meth:`EquivalenceGroups.apply`; ``columns`` as there). Unchanged without
        groups. The ranking the service and the evaluation both use."""
        groups = getattr(self, "equivalence", None)
        if groups is None:
            return logits
        if logits.ndim == 1:
            return groups.apply(logits[None, :], columns)[0]
        return groups.apply(logits, columns)

    def representative(self, row: int) -> int:
        """The candidate row that stands for ``row`` in a grouped ranking."""
        groups = getattr(self, "equivalence", None)
        return row if groups is None else int(groups.primary[row])

    def equivalent_ids(self, row: int) -> list[str]:
        """Ids of the other candidates of ``row``'s group (empty when it stands alone)."""
        groups = getattr(self, "equivalence", None)
        if groups is None:
            return []
        ids = self.candidates.table["disease_id"]
        return [str(ids.iat[r]) for r in groups.equivalents(row)]

    def clean(
        self, present_terms: list[str], excluded_terms: list[str] | None = None
    ) -> CleanedTerms:
        """Resolve, map and validate a patient's terms (see :func:`clean_terms`)."""
        return clean_terms(self.ontology, self.space, list(present_terms), excluded_terms)

    def hybrid_logits(self, patient: PatientInput) -> np.ndarray:
        """``w · x_d`` for every candidate."""
        return self.components.logits_batch([patient], self.weights)[0]

    def probabilities(self, patient: PatientInput) -> np.ndarray:
        """Calibrated probability of every candidate (sums to 1)."""
        return softmax(self.hybrid_logits(patient), self.temperature)

    def rank_patient_report(
        self,
        present_terms: list[str],
        excluded_terms: list[str] | None = None,
        age: float | None = None,
        sex: str = "unknown",
        top_k: int = 10,
        *,
        category: str | None = None,
        explain: bool = True,
    ) -> dict[str, Any]:
        """Ranked candidates plus what happened to the input terms.

        Equivalent candidates (one disease in several databases) take one place, under
        the OMIM id, the others listed in ``equivalent_ids``.

        Returns ``{"candidates": [...], "reason": str | None, "terms": {...}}``; with
        no usable present term, ``candidates`` is empty and ``reason`` says why.
        ``category`` (``RARE``/``COMMON``) restricts and renormalises the ranking;
        ``explain=False`` leaves ``explanation`` None (faster).
        """
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        cleaned = self.clean(present_terms, excluded_terms)
        report = cleaned.report()
        if not cleaned.present:
            return {"candidates": [], "reason": NO_TERMS_REASON, "terms": report}
        patient = self._input(cleaned, age, sex)
        logits = self.hybrid_logits(patient)
        table = self.candidates.table
        if category is not None:
            keep = (table["category"] == category).to_numpy()
            logits = np.where(keep, logits, -np.inf)
        logits = self.grouped(logits)
        probability = softmax(logits, self.temperature)
        groups = getattr(self, "equivalence", None)
        members = groups.members if groups is not None else np.zeros(0, dtype=np.int64)
        # a grouped member is listed only under its group's place (equivalent_ids)
        order = top_k_stable(logits[None, :], top_k + len(members))[0]
        order = order[~np.isin(order, members)][:top_k]
        ranked = []
        for row in order:
            ranked.append(
                {
                    "disease_id": str(table["disease_id"].iat[row]),
                    "name": str(table["name"].iat[row]),
                    "category": str(table["category"].iat[row]),
                    "icd10": table["icd10"].iat[row],
                    "score": float(logits[row]),
                    "probability": float(probability[row]),
                    "equivalent_ids": self.equivalent_ids(int(row)),
                    "explanation": self.explainer.explain(
                        int(row), patient.present.tolist(), patient.excluded.tolist()
                    )
                    if explain
                    else None,
                }
            )
        return {"candidates": ranked, "reason": None, "terms": report}

    def rank_patient(
        self,
        present_terms: list[str],
        excluded_terms: list[str] | None = None,
        age: float | None = None,
        sex: str = "unknown",
        top_k: int = 10,
    ) -> list[dict[str, Any]]:
        """Top ``top_k`` candidates ``{disease_id, name, category, icd10, score,
        probability, equivalent_ids, explanation}``; empty when no usable term (see the
        report method)."""
        report = self.rank_patient_report(present_terms, excluded_terms, age, sex, top_k)
        return report["candidates"]

    # --------------------------------------------------------- predictor protocol
    def _patients(
        self, tables: dict[str, pd.DataFrame] | None, features: pd.DataFrame
    ) -> list[PatientInput | None]:
        """Cleaned model input of each row of ``features``; None without a usable term."""
        terms = encounter_terms(tables, features, self.space)
        none: tuple[list[str], list[str], float | None, str] = ([], [], None, "unknown")
        patients: list[PatientInput | None] = []
        for encounter_id in features.index.astype(str):
            present, excluded, age, sex = terms.get(encounter_id, none)
            cleaned = self.clean(present, excluded)
            patients.append(self._input(cleaned, age, sex) if cleaned.present else None)
        return patients

    def _input(self, cleaned: CleanedTerms, age: float | None, sex: str) -> PatientInput:
        """Scorer and encoder input of cleaned terms."""
        return PatientInput(
            present=np.asarray(self.space.indices(cleaned.present), dtype=np.int64),
            excluded=np.asarray(self.space.indices(cleaned.excluded), dtype=np.int64),
            age=age,
            sex=sex,
        )

    def _rare_logits(
        self, patients: list[PatientInput | None]
    ) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
        """Blocks of :data:`RANK_BLOCK` usable patients: their row positions, the
        tempered logits over the RARE candidates (``rare_columns`` order) and each
        row's log normaliser: log P(d | rare) = ``logits - log_norm``. Equivalent
        candidates are grouped (:meth:`grouped`).

        The normaliser alone is returned (not the full log-probability matrix), so a
        caller that needs only the top candidates or a few columns never pays for
        shifting every candidate of every patient."""
        rare = self.rare_columns
        usable = [i for i, p in enumerate(patients) if p is not None]
        for start in range(0, len(usable), RANK_BLOCK):
            block = usable[start : start + RANK_BLOCK]
            logits = self.components.logits_batch([patients[i] for i in block], self.weights)
            if len(rare) != logits.shape[1]:
                # np.take keeps rows contiguous (``logits[:, rare]`` would not, and every
                # per-row reduction below would then stride through memory)
                logits = np.take(logits, rare, axis=1)
            logits = self.grouped(logits, rare)
            logits /= self.temperature
            peak = logits.max(axis=1, keepdims=True)
            shifted = np.subtract(logits, peak)
            np.exp(shifted, out=shifted)
            yield block, logits, peak + np.log(shifted.sum(axis=1, keepdims=True))

    @property
    def rare_columns(self) -> np.ndarray:
        """Positions of the RARE candidates in the candidate table (read-only)."""
        return self._rare_lookup().columns

    def rank(
        self, tables: dict[str, pd.DataFrame] | None, features: pd.DataFrame
    ) -> list[list[tuple[str, str, float]]]:
        """``RareRanker`` protocol: per row of ``features`` (index = encounter id), the
        top ``serving_top_k`` RARE candidates as ``(disease_id, name, probability)``;
        an empty list when the encounter has no usable HPO term.

        Scores :data:`RANK_BLOCK` patients at a time (one sparse product per block);
        the result equals :meth:`rank_patient_report` with ``category="RARE"``.
        """
        patients = self._patients(tables, features)
        lookup = self._rare_lookup()
        ids, names = lookup.id_array, lookup.names
        k = min(self.serving_top_k, len(lookup.columns))
        out: list[list[tuple[str, str, float]]] = [[] for _ in patients]
        for block, logits, log_norm in self._rare_logits(patients):
            top = top_k_stable(logits, k)
            probability = np.exp(np.take_along_axis(logits, top, axis=1) - log_norm)
            for row, i in enumerate(block):
                cols = top[row]
                out[i] = list(
                    zip(
                        ids[cols].tolist(),
                        names[cols].tolist(),
                        probability[row].tolist(),
                        strict=True,
                    )
                )
        return out

    def explain_candidates(
        self,
        tables: dict[str, pd.DataFrame] | None,
        features: pd.DataFrame,
        disease_ids: list[list[str]],
    ) -> list[list[dict[str, Any] | None]]:
        """Per row of ``features``, the explanation of each candidate named in
        ``disease_ids[row]``: the patient's phenotypes it matches, its frequent
        phenotypes the patient does not report (``expected_absent``) and the evidence
        against it (see :meth:`Explainer.explain`), as ``rank_patient_report`` gives
        them. None for a candidate the model does not know or a row without a usable
        HPO term."""
        patients = self._patients(tables, features)
        out: list[list[dict[str, Any] | None]] = []
        for patient, wanted in zip(patients, disease_ids, strict=True):
            if patient is None:
                out.append([None] * len(wanted))
                continue
            present, excluded = patient.present.tolist(), patient.excluded.tolist()
            shown = self.explainer.shown(present)
            rows = [self.candidates.index.get(str(d)) for d in wanted]
            out.append(
                [
                    None if row is None else self.explainer.explain(row, present, excluded, shown)
                    for row in rows
                ]
            )
        return out

    def probabilities_of(
        self,
        tables: dict[str, pd.DataFrame] | None,
        features: pd.DataFrame,
        disease_ids: list[str],
    ) -> np.ndarray:
        """``(len(features), len(disease_ids))``: P(d | rare) of the named RARE candidates
        for every row, not truncated to a top k (0 for a row without a usable term or a
        disease the model does not know; a candidate grouped with equivalents gets its
        group's). For per-disease AUROC in evaluation."""
        patients = self._patients(tables, features)
        rare = self.rare_columns
        position = {str(d): j for j, d in enumerate(self.disease_ids)}
        # a candidate grouped with equivalents takes its group's probability
        position = {
            d: int(np.searchsorted(rare, self.representative(int(rare[j]))))
            for d, j in position.items()
        }
        wanted = [(k, position[d]) for k, d in enumerate(disease_ids) if d in position]
        out = np.zeros((len(patients), len(disease_ids)))
        if not wanted:
            return out
        targets, columns = (np.asarray(x) for x in zip(*wanted, strict=True))
        for block, logits, log_norm in self._rare_logits(patients):
            out[np.ix_(block, targets)] = np.exp(logits[:, columns] - log_norm)
        return out


def encounter_terms(
    tables: dict[str, pd.DataFrame] | None, features: pd.DataFrame, space: TermSpace
) -> dict[str, tuple[list[str], list[str], float | None, str]]:
    """Encounter id → (present, excluded, age, sex), from warehouse-shaped tables when
    given, else from the feature matrix's ``hpo_<id>``/``hpo_not_<id>`` columns (the
    most specific present columns only, as they are propagated to ancestors)."""
    out: dict[str, tuple[list[str], list[str], float | None, str]] = {}
    if tables is not None and "symptoms" in tables:
        symptoms = tables["symptoms"]
        encounters = tables.get("encounters", pd.DataFrame(columns=["encounter_id"]))
        demo_ids = encounters["encounter_id"].astype(str).tolist()
        ages = (
            dict(zip(demo_ids, encounters["age_years"], strict=True))
            if "age_years" in encounters
            else {}
        )
        sexes = dict(zip(demo_ids, encounters["sex"], strict=True)) if "sex" in encounters else {}
        ids = symptoms["encounter_id"].astype(str).to_numpy()
        order = np.argsort(ids, kind="stable")
        ids, hpo = ids[order], symptoms["hpo_id"].astype(str).to_numpy()[order]
        present = symptoms["present"].astype(bool).to_numpy()[order]
        groups, starts = np.unique(ids, return_index=True)
        for encounter_id, start, end in zip(groups, starts, [*starts[1:], len(ids)], strict=True):
            age, sex = ages.get(encounter_id), sexes.get(encounter_id)
            on = present[start:end]
            out[str(encounter_id)] = (
                hpo[start:end][on].tolist(),
                hpo[start:end][~on].tolist(),
                None if age is None or pd.isna(age) else float(age),
                str(sex) if isinstance(sex, str) else "unknown",
            )
        return out
    present_cols = [
        c for c in features.columns if c.startswith("hpo_") and not c.startswith("hpo_not_")
    ]
    excluded_cols = [c for c in features.columns if c.startswith("hpo_not_")]
    present_ids = np.array([c[len("hpo_") :].replace("_", ":", 1) for c in present_cols])
    excluded_ids = np.array([c[len("hpo_not_") :].replace("_", ":", 1) for c in excluded_cols])
    present_on = features[present_cols].to_numpy(dtype=float) > 0
    excluded_on = features[excluded_cols].to_numpy(dtype=float) > 0
    ages = features.get("age_years")
    for i, encounter_id in enumerate(features.index.astype(str)):
        age = None if ages is None or pd.isna(ages.iloc[i]) else float(ages.iloc[i])
        out[encounter_id] = (
            most_specific(space, present_ids[present_on[i]].tolist()),
            excluded_ids[excluded_on[i]].tolist(),
            age,
            "unknown",
        )
    return out


#: every how many columns :func:`top_k_stable` samples a row for its first threshold
TOP_K_SAMPLE_STRIDE = 8


def top_k_stable(scores: np.ndarray, k: int) -> np.ndarray:
    """Column positions of each row's ``k`` highest scores, best first, ties broken by
    the lower position: what a stable descending sort of the row would list first.

    The ``k``-th highest score of every ``TOP_K_SAMPLE_STRIDE``-th column is a floor
    that at least ``k`` scores of the row reach, so only the scores at or above it are
    sorted (exactly, ties included); a full selection over every column (numpy's
    ``argpartition``) costs several times more per row.
    """
    n_rows, n_cols = scores.shape
    k = min(k, n_cols)
    top = np.zeros((n_rows, k), dtype=np.int64)
    if k == 0 or n_rows == 0:
        return top
    sample = scores[:, ::TOP_K_SAMPLE_STRIDE]
    if sample.shape[1] >= k:
        place = sample.shape[1] - k
        floor = np.partition(sample, place, axis=1)[:, place]
    else:
        floor = np.full(n_rows, -np.inf)
    for row in range(n_rows):
        values = scores[row]
        above = np.flatnonzero(values >= floor[row])
        top[row] = above[np.lexsort((above, -values[above]))][:k]
    return top
