"""The HPO phenotype terms as a numbered space, and cleaning of a patient's terms.

Every live term under *Phenotypic abnormality* (HP:0000118) gets an index; the
ancestor closure is kept both as per-term index arrays (fast loops) and as a sparse
term × ancestor matrix (vectorised propagation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from disease_pipeline.knowledge.hpo import Ontology


@dataclass
class TermSpace:
    """Indexed phenotype terms with their ancestor closure."""

    ids: list[str]
    names: list[str]
    index: dict[str, int]
    ancestor_lists: list[np.ndarray] = field(repr=False)
    ancestors: sp.csr_matrix = field(repr=False)  # A[t, a] = 1 when a is t or an ancestor
    parent_lists: list[np.ndarray] = field(repr=False, default_factory=list)

    @property
    def n_terms(self) -> int:
        """Number of terms in the space."""
        return len(self.ids)

    def propagate(self, term_indices: list[int] | np.ndarray) -> np.ndarray:
        """Sorted unique indices of the terms and all their ancestors."""
        if len(term_indices) == 0:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate([self.ancestor_lists[i] for i in term_indices]))

    def indices(self, term_ids: list[str]) -> list[int]:
        """Indices of ``term_ids`` (which must already be cleaned)."""
        return [self.index[t] for t in term_ids]


def build_term_space(ontology: Ontology) -> TermSpace:
    """Number every live phenotype term of ``ontology`` and index its ancestors."""
    ids = sorted(t for t in ontology.names if ontology.is_phenotype(t))
    index = {t: i for i, t in enumerate(ids)}
    lists = [
        np.array(sorted(index[a] for a in ontology.ancestors(t) if a in index), dtype=np.int64)
        for t in ids
    ]
    rows = np.repeat(np.arange(len(ids)), [len(x) for x in lists])
    cols = np.concatenate(lists)
    matrix = sp.csr_matrix(
        (np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(len(ids), len(ids))
    )
    parents = [
        np.array([index[p] for p in ontology.parents.get(t, ()) if p in index], dtype=np.int64)
        for t in ids
    ]
    return TermSpace(
        ids=ids,
        names=[ontology.names[t] for t in ids],
        index=index,
        ancestor_lists=lists,
        ancestors=matrix,
        parent_lists=parents,
    )


@dataclass
class CleanedTerms:
    """A patient's phenotype after cleaning, with what was changed and why."""

    present: list[str]
    excluded: list[str]
    mapped: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    not_phenotype: list[str] = field(default_factory=list)
    conflicting: list[str] = field(default_factory=list)

    def report(self) -> dict[str, object]:
        """What was mapped or dropped, for the API answer and logs."""
        return {
            "mapped": dict(self.mapped),
            "unknown": list(self.unknown),
            "not_phenotype": list(self.not_phenotype),
            "conflicting_excluded": list(self.conflicting),
        }


def clean_terms(
    ontology: Ontology,
    space: TermSpace,
    present: list[str],
    excluded: list[str] | None = None,
) -> CleanedTerms:
    """Resolve obsolete/alternative ids, map SNOMED CT ids, read a present term of a newer
    HPO release as its nearest ancestor here (``Ontology.newer_ancestor``; an excluded one
    is dropped: a specific finding's absence says nothing of its parent), drop and report
    the rest.

    An excluded term that is also present, or an ancestor of a present term, is a
    contradiction: it is dropped from the excluded list and reported.
    """
    result = CleanedTerms(present=[], excluded=[])

    def _resolve(raw: str, present: bool = True) -> str | None:
        code = str(raw).strip()
        if code.isdigit():
            mapped = ontology.snomed_to_hpo.get(code)
        else:
            mapped = ontology.resolve(code.upper())
            if mapped is None and present:
                mapped = ontology.newer_ancestor(code.upper())
        if mapped is None:
            result.unknown.append(code)
            return None
        if mapped != code:
            result.mapped[code] = mapped
        if mapped not in space.index:
            result.not_phenotype.append(code)
            return None
        return mapped

    for raw in present:
        term = _resolve(raw)
        if term is not None and term not in result.present:
            result.present.append(term)
    implied = set()
    for term in result.present:
        implied.update(space.ancestor_lists[space.index[term]].tolist())
    for raw in excluded or []:
        term = _resolve(raw, present=False)
        if term is None or term in result.excluded:
            continue
        if space.index[term] in implied:
            result.conflicting.append(term)
            continue
        result.excluded.append(term)
    return result


def most_specific(space: TermSpace, term_ids: list[str]) -> list[str]:
    """The terms of ``term_ids`` that are not an ancestor of another one (order kept).

    Unknown ids are kept as they are (cleaning reports them later).
    """
    known = [t for t in term_ids if t in space.index]
    implied: set[int] = set()
    for term in known:
        index = space.index[term]
        implied.update(a for a in space.ancestor_lists[index].tolist() if a != index)
    return [t for t in term_ids if t not in space.index or space.index[t] not in implied]
