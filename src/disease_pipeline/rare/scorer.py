"""Knowledge scorers: rank every candidate by phenotype similarity, vectorised.

* :class:`LikelihoodRatioScorer` — a LIRICAL-like phenotype likelihood ratio. For a
  present term ``q`` and candidate ``d``::

      LR(q | d) = max( F[d, q] / b(q),                       # q or a descendant annotated
                       λ · max_{a ∈ anc(q), a ≠ q} F[d, a] / b(a),   # partial match via an ancestor
                       ε )                                    # noise: unexplained term

  where ``F[d, t]`` is the probability that a patient with ``d`` shows ``t`` (annotated
  frequency propagated to ancestors by max) and ``b(t)`` the same probability averaged
  over all diseases (background). A term the disease is annotated NOT to have (or a
  descendant of one) gets ``ε_not``. An excluded term ``e`` contributes
  ``(1 − F[d, e]) / (1 − b(e))`` floored at ``δ``. The score is the sum of log LRs.
* :class:`ResnikBMA` — the plain baseline: symmetric best-match average of Resnik
  similarity (information content of the most informative common ancestor).

Both score one patient against all candidates in a few milliseconds by walking the
sparse columns of the patient's terms' ancestors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from disease_pipeline.rare.profiles import Profiles
from disease_pipeline.rare.terms import TermSpace

#: term rows (each ``n_candidates`` float64) a scorer keeps for reuse, per process
TERM_CACHE_SIZE = 512


@dataclass(frozen=True)
class LRParams:
    """Knobs of the likelihood-ratio scorer (``rare_model.knowledge`` parameters)."""

    noise: float = 0.02  # ε
    ancestor_discount: float = 0.005  # λ
    not_annotated: float = 0.005  # ε_not
    excluded_floor: float = 0.5  # δ

    def __post_init__(self) -> None:
        for name in ("noise", "ancestor_discount", "not_annotated", "excluded_floor"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(
                    f"parameter rare_model.knowledge.{name} must be in (0, 1]: {value}"
                )


def background_frequency(profiles: Profiles) -> np.ndarray:
    """b(t): mean over profiled candidates of the probability of showing ``t``."""
    profiled = profiles.has_profile
    n = max(int(profiled.sum()), 1)
    totals = np.asarray(profiles.propagated[profiled].sum(axis=0)).ravel() / n
    return np.clip(totals, 0.5 / n, 0.98).astype(np.float64)


class _ColumnWalker:
    """Fast access to the non-zero rows and values of a CSC matrix's columns."""

    def __init__(self, matrix: sp.csc_matrix) -> None:
        matrix = sp.csc_matrix(matrix)
        matrix.sort_indices()
        self.indptr = matrix.indptr
        self.indices = matrix.indices
        self.data = matrix.data.astype(np.float32)
        self.n_rows = matrix.shape[0]

    def column(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.indptr[j], self.indptr[j + 1]
        return self.indices[start:end], self.data[start:end]


class LikelihoodRatioScorer:
    """Sum of per-term log likelihood ratios of every candidate (see module docstring)."""

    def __init__(
        self, profiles: Profiles, background: np.ndarray, space: TermSpace, params: LRParams
    ) -> None:
        self.space = space
        self.params = params
        self.background = background
        ratio = sp.csc_matrix(profiles.propagated) @ sp.diags(1.0 / background)
        self._ratio = _ColumnWalker(sp.csc_matrix(ratio))
        self._freq = _ColumnWalker(profiles.propagated)
        self._not = _ColumnWalker(profiles.excluded)
        self.n_candidates = profiles.propagated.shape[0]

    def _ancestors_above_noise(self) -> np.ndarray:
        """Per term: whether its discounted ratio can beat the noise floor for some
        candidate (``λ · max_d F[d, a] / b(a) > ε``); computed once, not pickled."""
        cached = self.__dict__.get("_above_noise")
        if cached is None:
            walker = self._ratio
            peak = np.zeros(len(walker.indptr) - 1, dtype=np.float32)
            filled = np.diff(walker.indptr) > 0
            peak[filled] = np.maximum.reduceat(walker.data, walker.indptr[:-1][filled])
            cached = peak * self.params.ancestor_discount > self.params.noise
            self._above_noise = cached
        return cached

    def present_ratio(self, term: int) -> np.ndarray:
        """LR(q | d) for every candidate ``d`` and one present term index ``q``.

        An ancestor whose discounted ratio stays below the noise floor everywhere (the
        broad ones, whose background frequency is high) cannot change the maximum and
        is not walked: the same rows in about half the time."""
        p = self.params
        best = np.full(self.n_candidates, p.noise)
        useful = self._ancestors_above_noise()
        for a in self.space.ancestor_lists[term]:
            if a != term and not useful[a]:
                continue
            rows, values = self._ratio.column(a)
            if len(rows):
                scale = 1.0 if a == term else p.ancestor_discount
                best[rows] = np.maximum(best[rows], values * scale)
        for a in self.space.ancestor_lists[term]:
            rows, _ = self._not.column(a)
            if len(rows):
                best[rows] = p.not_annotated
        return best

    def excluded_ratio(self, term: int) -> np.ndarray:
        """LR(not e | d) for every candidate and one excluded term index ``e``."""
        absent = np.ones(self.n_candidates)
        rows, values = self._freq.column(term)
        absent[rows] = np.maximum(1.0 - values, self.params.excluded_floor)
        return absent / (1.0 - self.background[term])

    def score_parts(
        self, present: list[int], excluded: list[int] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sums of log LRs over the present and over the excluded term indices."""
        from_present = np.zeros(self.n_candidates)
        for q in present:
            from_present += np.log(self.present_ratio(q))
        from_excluded = np.zeros(self.n_candidates)
        for e in excluded:
            from_excluded += np.log(self.excluded_ratio(e))
        return from_present, from_excluded

    def score(self, present: list[int], excluded: list[int] = ()) -> np.ndarray:
        """Sum of log LRs over the patient's present and excluded term indices."""
        from_present, from_excluded = self.score_parts(present, excluded)
        return from_present + from_excluded

    def log_ratio_table(self, terms: np.ndarray, *, excluded: bool) -> np.ndarray:
        """``(len(terms), n_candidates)`` log LRs of each term, present or excluded.

        The rows of the first :data:`TERM_CACHE_SIZE` terms asked for are kept (a
        service sees the same common symptoms again and again); not pickled."""
        if len(terms) == 0:
            return np.zeros((0, self.n_candidates))
        cache = self.__dict__.setdefault("_term_rows", {})
        ratio = self.excluded_ratio if excluded else self.present_ratio
        rows = []
        for term in terms:
            key = (excluded, int(term))
            row = cache.get(key)
            if row is None:
                row = np.log(ratio(int(term)))
                if len(cache) < TERM_CACHE_SIZE:
                    cache[key] = row
            rows.append(row)
        return np.stack(rows)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_term_rows", None)
        state.pop("_above_noise", None)
        return state

    def score_parts_batch(
        self, present: list[np.ndarray], excluded: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`score_parts` of many patients at once, ``(n_patients, n_candidates)``
        each: every distinct term's log LRs are computed once and summed per patient
        by one sparse × dense product."""
        return (
            _summed(present, lambda t: self.log_ratio_table(t, excluded=False)),
            _summed(excluded, lambda t: self.log_ratio_table(t, excluded=True)),
        )


def _summed(term_lists: list[np.ndarray], table: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Row i = the sum of ``table``'s rows for the terms of patient i."""
    return _summed_each(term_lists, table, (_same,))[0]


def _same(rows: np.ndarray) -> np.ndarray:
    return rows


def _summed_each(
    term_lists: list[np.ndarray],
    table: Callable[[np.ndarray], np.ndarray],
    transforms: tuple[Callable[[np.ndarray], np.ndarray], ...],
) -> list[np.ndarray]:
    """For each of ``transforms``, :func:`_summed` of ``lambda t: transform(table(t))``:
    the terms' rows are looked up once for all of them (a term row the scorer has not
    kept costs a walk over the term's ancestors)."""
    lengths = [len(t) for t in term_lists]
    if not sum(lengths):
        width = table(np.zeros(0, np.int64)).shape[1]
        return [np.zeros((len(term_lists), width)) for _ in transforms]
    if len(term_lists) == 1:  # one patient (a service request): no sparse product
        unique, counts = np.unique(np.asarray(term_lists[0], dtype=np.int64), return_counts=True)
        rows = table(unique)
        repeated = bool((counts > 1).any())
        out = []
        for transform in transforms:
            values = transform(rows)
            summed = counts @ values if repeated else values.sum(axis=0)
            out.append(np.asarray(summed, dtype=np.float64)[None, :])
        return out
    flat = np.concatenate(term_lists).astype(np.int64)
    unique, position = np.unique(flat, return_inverse=True)
    rows = np.repeat(np.arange(len(term_lists)), lengths)
    membership = sp.csr_matrix(
        (np.ones(len(flat)), (rows, position.ravel())), shape=(len(term_lists), len(unique))
    )
    values = table(unique)
    return [np.asarray(membership @ transform(values)) for transform in transforms]


def information_content(profiles: Profiles) -> np.ndarray:
    """IC(t) = −log(share of profiled candidates annotated with ``t`` or a descendant)."""
    profiled = profiles.has_profile
    n = max(int(profiled.sum()), 1)
    counts = np.asarray((profiles.propagated[profiled] > 0).sum(axis=0)).ravel()
    return -np.log(np.maximum(counts, 1) / n)


class ResnikBMA:
    """Symmetric best-match average of Resnik similarity (the Phenomizer-style baseline)."""

    def __init__(self, profiles: Profiles, ic: np.ndarray, space: TermSpace) -> None:
        self.space = space
        self.ic = ic
        binary = sp.csc_matrix(profiles.propagated, copy=True)
        binary.data[:] = 1.0
        self._annotated = _ColumnWalker(binary)
        direct = sp.csr_matrix(profiles.direct, copy=True)
        direct.data[:] = 1.0
        sizes = np.asarray(direct.sum(axis=1)).ravel()
        self._direct_mean = sp.csr_matrix(sp.diags(1.0 / np.maximum(sizes, 1)) @ direct)
        self.n_candidates = binary.shape[0]

    def score(self, present: list[int], excluded: list[int] = ()) -> np.ndarray:
        """BMA over the patient's present terms (excluded terms are ignored by Resnik)."""
        if not present:
            return np.zeros(self.n_candidates)
        patient_side = np.zeros(self.n_candidates)
        for q in present:
            best = np.zeros(self.n_candidates)
            for a in self.space.ancestor_lists[q]:
                rows, _ = self._annotated.column(a)
                best[rows] = np.maximum(best[rows], self.ic[a])
            patient_side += best
        patient_side /= len(present)
        union = self.space.propagate(present)
        weights = np.zeros(self.space.n_terms)
        weights[union] = self.ic[union]
        best_per_term = (self.space.ancestors @ sp.diags(weights)).max(axis=1)
        term_best = np.asarray(best_per_term.todense()).ravel()
        disease_side = self._direct_mean @ term_best
        return 0.5 * (patient_side + disease_side)
