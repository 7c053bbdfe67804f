"""The package's HPO release: live ids, their is_a closure, obsolete ids and SNOMED CT."""

from __future__ import annotations

import numpy as np


class Hpo:
    """Live HPO terms (``ontology.npz``): ``resolve`` an id, ``ancestors`` (the term
    itself included, as ids) and ``is_phenotype`` — as ``knowledge.hpo.Ontology``."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.ids = arrays["hpo_ids"]
        self.position = {str(t): i for i, t in enumerate(self.ids.tolist())}
        self.indptr = arrays["hpo_anc_indptr"]
        self.indices = arrays["hpo_anc_indices"]
        self.phenotype = arrays["hpo_is_phenotype"]
        self.replaced = dict(
            zip(
                arrays["hpo_replaced_from"].tolist(),
                arrays["hpo_replaced_to"].tolist(),
                strict=True,
            )
        )
        self.snomed = dict(
            zip(arrays["snomed_codes"].tolist(), arrays["snomed_hpo"].tolist(), strict=True)
        )
        # a newer release's phenotype terms → their nearest ancestor here (absent from
        # packages exported before they existed)
        empty = np.zeros(0, dtype=str)
        self.newer = dict(
            zip(
                arrays.get("hpo_newer_from", empty).tolist(),
                arrays.get("hpo_newer_to", empty).tolist(),
                strict=True,
            )
        )

    def resolve(self, hpo_id: str) -> str | None:
        """The live id of ``hpo_id`` (itself, or its replacement), or None."""
        if hpo_id in self.position:
            return hpo_id
        return self.replaced.get(hpo_id)

    def ancestor_positions(self, hpo_id: str) -> np.ndarray:
        """Positions of the term and its ancestors (empty for an unknown id)."""
        i = self.position.get(hpo_id)
        if i is None:
            return np.zeros(0, dtype=np.int64)
        return self.indices[self.indptr[i] : self.indptr[i + 1]]

    def ancestors(self, hpo_id: str) -> list[str]:
        """Ids of the term and its ancestors (just the id for an unknown one, as
        ``Ontology.ancestors``)."""
        if hpo_id not in self.position:
            return [hpo_id]
        return self.ids[self.ancestor_positions(hpo_id)].tolist()

    def is_phenotype(self, hpo_id: str) -> bool:
        """True for a live descendant of *Phenotypic abnormality* (HP:0000118)."""
        i = self.position.get(hpo_id)
        return i is not None and bool(self.phenotype[i])
