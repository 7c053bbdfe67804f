"""Why a candidate disease ranks where it does, in the patient's and the annotations' terms.

For one candidate: the patient's terms that match its annotations (the annotated term
they match — the same term or a more specific one — with its annotated frequency, or
the share of known cases showing them), the features the disease usually shows that
are not reported, and the evidence against it — explicitly excluded terms the disease
shows, and present terms the disease is annotated NOT to have. Frequencies the
annotations do not give are reported as None, never as the imputed value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from disease_pipeline.rare.profiles import Candidates, Profiles
from disease_pipeline.rare.terms import TermSpace

UNKNOWN = -1.0  # stored frequency of an annotation without one


@dataclass(frozen=True)
class ExplanationParams:
    """Knobs of the explanation (``rare_model.explanation`` parameters)."""

    max_items: int = 5  # per list
    frequent: float = 0.5  # "expected" = annotated frequency at least this


def annotated_frequencies(
    annotations: pd.DataFrame, catalogue: pd.DataFrame | None, candidates: Candidates,
    space: TermSpace,
) -> sp.csr_matrix:  # fmt: skip
    """Candidate × term matrix of annotated frequencies (``UNKNOWN`` when not given)."""
    long = annotations.loc[~annotations["excluded"], ["disease_id", "hpo_id", "frequency"]]
    if catalogue is not None and len(catalogue):
        rows = [
            {"disease_id": r["icd10"], "hpo_id": s["hpo"], "frequency": float(s["frequency"])}
            for r in catalogue.to_dict("records")
            for s in r["symptoms"]
        ]
        long = pd.concat([long, pd.DataFrame(rows)], ignore_index=True)
    long = long[long["hpo_id"].isin(space.index) & long["disease_id"].isin(candidates.index)]
    matrix = sp.csr_matrix(
        (
            long["frequency"].fillna(UNKNOWN).to_numpy(np.float32),
            (long["disease_id"].map(candidates.index), long["hpo_id"].map(space.index)),
        ),
        shape=(len(candidates), space.n_terms),
    )
    matrix.sum_duplicates()
    return matrix


def _frequency(value: float) -> float | None:
    return None if value < 0 else round(float(value), 3)


class Explainer:
    """Builds explanations from annotated frequencies and case profiles."""

    def __init__(
        self,
        frequencies: sp.csr_matrix,
        knowledge: Profiles,
        cases: Profiles,
        background: np.ndarray,
        space: TermSpace,
        *,
        params: ExplanationParams,
    ) -> None:
        self.space = space
        self.params = params
        self.background = background
        self._direct = sp.csr_matrix(frequencies)
        self._propagated = sp.csr_matrix(knowledge.propagated)
        self._not = sp.csr_matrix(knowledge.excluded)
        self._cases = sp.csr_matrix(cases.propagated)
        self._n_cases = cases.n_cases
        self._ancestor_sets: dict[int, frozenset[int]] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_ancestor_sets": {}}  # a cache, rebuilt on use

    def _ancestors(self, term: int) -> frozenset[int]:
        found = self._ancestor_sets.get(term)
        if found is None:
            found = frozenset(self.space.ancestor_lists[term].tolist())
            self._ancestor_sets[term] = found
        return found

    @staticmethod
    def _row(matrix: sp.csr_matrix, row: int) -> dict[int, float]:
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        values = matrix.data[start:end].tolist()
        return dict(zip(matrix.indices[start:end].tolist(), values, strict=True))

    def _term(self, index: int, **extra: object) -> dict[str, object]:
        return {"hpo_id": self.space.ids[index], "name": self.space.names[index], **extra}

    def shown(self, present: list[int]) -> set[int]:
        """The present terms and all their ancestors (what the patient shows)."""
        return set(self.space.propagate(present).tolist())

    @staticmethod
    def _best_annotation(
        term: int, ancestry: list[tuple[float, int, frozenset[int]]]
    ) -> tuple[int, float] | None:
        """The annotated term that ``term`` matches (itself or a descendant), most
        frequent first (unknown frequencies last); ``ancestry`` holds each annotated
        term's frequency, index and ancestor set."""
        hits = [(f, t) for f, t, ancestors in ancestry if term in ancestors]
        if not hits:
            return None
        frequency, annotated = max(hits)
        return annotated, frequency

    def explain(
        self,
        row: int,
        present: list[int],
        excluded: list[int],
        shown: set[int] | None = None,
    ) -> dict[str, object]:
        """Matched, expected-but-absent and against-evidence terms for candidate ``row``;
        ``shown`` (the present terms and their ancestors) may be given when explaining
        several candidates for one patient."""
        k = self.params.max_items
        direct = self._row(self._direct, row)
        ancestry = [(f, t, self._ancestors(t)) for t, f in direct.items()]
        observed = self._row(self._cases, row)
        matched = []
        for q in present:
            best = self._best_annotation(q, ancestry)
            share = observed.get(q)
            if best is None and share is None:
                continue
            item = self._term(q, specificity=round(float(-np.log(self.background[q])), 2))
            if best is not None:
                item["annotation"] = self.space.ids[best[0]]
                item["annotated_frequency"] = _frequency(best[1])
            if share is not None:
                item["share_of_known_cases"] = round(float(share), 3)
            matched.append(item)
        matched.sort(key=lambda m: -m["specificity"])
        if shown is None:
            shown = self.shown(present)
        missing = [(f, t) for t, f in direct.items() if t not in shown]
        known = sorted((p for p in missing if p[0] >= self.params.frequent), reverse=True)
        unknown = sorted(
            (p for p in missing if p[0] < 0), key=lambda p: self.background[p[1]]
        )  # most specific first
        expected = [
            self._term(t, annotated_frequency=_frequency(f)) for f, t in [*known, *unknown][:k]
        ]
        propagated = self._row(self._propagated, row)
        against = []
        for e in excluded:
            if e in propagated:
                best = self._best_annotation(e, ancestry)
                freq = _frequency(best[1]) if best else None
                against.append(self._term(e, annotated_frequency=freq, reason="excluded"))
        nots = self._row(self._not, row)
        for q in present if nots else ():
            hit = next((a for a in self.space.ancestor_lists[q].tolist() if a in nots), None)
            if hit is not None:
                against.append(self._term(q, reason=f"annotated NOT: {self.space.names[hit]}"))
        against.sort(key=lambda a: -(a.get("annotated_frequency") or 0.0))
        return {
            "matched": matched[:k],
            "n_matched": len(matched),
            "expected_absent": expected,
            "against": against[:k],
            "known_cases": int(self._n_cases[row]),
        }
