"""Synthetic patients sampled from a disease's phenotype profile (encoder training data).

The story follows how a clinician records a phenotype: each annotated feature is seen
with its annotated frequency; some are recorded less specifically (a parent term);
a few unrelated findings creep in; some typical features that the patient lacks are
checked and recorded as excluded, plus a few unrelated excluded findings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from disease_pipeline.rare.terms import TermSpace


@dataclass(frozen=True)
class SynthParams:
    """Knobs of the synthetic-case sampler (``rare_model.synthetic`` parameters)."""

    median_terms: float = 7.0  # median number of present terms recorded
    spread_terms: float = 0.7  # log-normal sigma of that number
    generalise: float = 0.25  # probability a term is recorded as one of its parents
    noise_terms: float = 0.5  # Poisson mean of unrelated present terms
    checked_absent: float = 0.25  # share of the disease's unseen features recorded as excluded
    random_excluded: float = 0.5  # Poisson mean of unrelated excluded terms

    def __post_init__(self) -> None:
        for name in ("generalise", "checked_absent"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"parameter rare_model.synthetic.{name} must be in [0, 1]")
        for name in ("median_terms", "spread_terms", "noise_terms", "random_excluded"):
            if getattr(self, name) < 0:
                raise ValueError(f"parameter rare_model.synthetic.{name} must be >= 0")


class CaseSampler:
    """Draws synthetic ``(present, excluded)`` term-index arrays for profile rows."""

    def __init__(
        self, direct: sp.csr_matrix, space: TermSpace, params: SynthParams, seed: int
    ) -> None:
        self.direct = sp.csr_matrix(direct)
        self.space = space
        self.params = params
        self.rng = np.random.default_rng(seed)
        # unrelated findings are drawn from the pool of all annotations
        self._pool = self.direct.indices
        self._root_like = {i for i, parents in enumerate(space.parent_lists) if len(parents) == 0}

    def _generalise(self, term: int) -> int:
        parents = self.space.parent_lists[term]
        if len(parents) == 0:
            return term
        parent = int(parents[self.rng.integers(len(parents))])
        return term if parent in self._root_like else parent

    def sample(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """One synthetic patient of profile row ``row``: present and excluded indices."""
        p, rng = self.params, self.rng
        start, end = self.direct.indptr[row], self.direct.indptr[row + 1]
        terms, freqs = self.direct.indices[start:end], self.direct.data[start:end]
        if len(terms) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        shown = rng.random(len(terms)) < freqs
        if not shown.any():
            shown[rng.choice(len(terms), p=freqs / freqs.sum())] = True
        present = terms[shown]
        limit = max(1, round(p.median_terms * np.exp(rng.normal(0.0, p.spread_terms))))
        if len(present) > limit:
            present = rng.choice(present, size=limit, replace=False)
        present = np.array(
            [self._generalise(t) if rng.random() < p.generalise else t for t in present],
            dtype=np.int64,
        )
        n_noise = rng.poisson(p.noise_terms)
        if n_noise and len(self._pool):
            present = np.concatenate([present, rng.choice(self._pool, size=n_noise)])
        unseen = terms[~shown]
        excluded = unseen[rng.random(len(unseen)) < p.checked_absent]
        n_random = rng.poisson(p.random_excluded)
        if n_random and len(self._pool):
            excluded = np.concatenate([excluded, rng.choice(self._pool, size=n_random)])
        present = np.unique(present)
        implied = self.space.propagate(present)
        excluded = np.setdiff1d(np.unique(excluded), implied)
        return present, excluded.astype(np.int64)
