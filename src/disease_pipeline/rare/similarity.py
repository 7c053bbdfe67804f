"""One-sided semantic similarity of a patient to every candidate (Phenomizer-style).

For a present patient term ``q`` and candidate ``d``, the *best match* is the
information content of the most informative common ancestor of ``q`` and any term
annotated to ``d``::

    best(q, d) = max_{a ∈ anc(q), d annotated with a or a descendant} IC(a)

with ``IC(a) = −log(share of profiled candidates annotated with a or a descendant)``.
The one-sided Resnik best-match average is the mean of ``best(q, d)`` over the
patient's present terms (the disease side is not averaged in, so a richly annotated
disease is not punished for terms the patient does not show). The *matched share*
``best(q, d) / IC(q)`` (1 when ``q`` itself or a descendant is annotated, less for a
partial match through an ancestor) is a Lin-like normalisation that does not favour
patients described with very specific terms.

One patient against all ~12,900 candidates costs a few milliseconds: every term's
best-match row is a walk over the sparse columns of its ancestors, kept in a
per-process cache, and patients' rows are summed by one sparse product.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from disease_pipeline.rare.profiles import Profiles
from disease_pipeline.rare.terms import TermSpace

#: term rows (each ``n_candidates`` float32) a scorer keeps for reuse, per process
TERM_CACHE_SIZE = 1024


def _csc_binary(matrix: sp.spmatrix) -> sp.csc_matrix:
    binary = sp.csc_matrix(matrix, copy=True)
    binary.eliminate_zeros()
    binary.sort_indices()
    binary.data[:] = 1.0
    return binary


class OneSidedResnik:
    """One-sided Resnik best-match average and matched share (see module docstring)."""

    def __init__(self, profiles: Profiles, ic: np.ndarray, space: TermSpace) -> None:
        annotated = _csc_binary(profiles.propagated)
        self.indptr = annotated.indptr
        self.indices = annotated.indices
        self.ic = np.asarray(ic, dtype=np.float64)
        self.space = space
        self.n_candidates = annotated.shape[0]
        direct = sp.csr_matrix(profiles.direct, copy=True)
        direct.eliminate_zeros()
        direct.data[:] = 1.0
        sizes = np.asarray(direct.sum(axis=1)).ravel()
        #: terms annotated directly to some candidate (the only ones the disease side reads)
        self.direct_terms = np.unique(direct.indices)
        #: row-normalised binary direct annotations, candidate × :attr:`direct_terms`
        self.direct_mean = sp.csr_matrix(
            sp.diags(1.0 / np.maximum(sizes, 1)) @ direct[:, self.direct_terms], dtype=np.float32
        )
        #: term × candidate, 1 where the candidate is annotated with exactly that term
        self.exact = sp.csr_matrix(direct.T, dtype=np.float32)
        #: column ``a``: the positions in :attr:`direct_terms` of ``a`` and its descendants
        descendants = sp.csc_matrix(space.ancestors[self.direct_terms])
        descendants.sort_indices()
        self.descendant_indptr = descendants.indptr
        self.descendant_indices = descendants.indices

    def best_match(self, term: int) -> np.ndarray:
        """``best(q, d)`` for one present term index ``q`` and every candidate ``d``."""
        cache = self.__dict__.setdefault("_term_rows", {})
        row = cache.get(term)
        if row is not None:
            return row
        ancestors = self.space.ancestor_lists[term]
        row = np.zeros(self.n_candidates, dtype=np.float32)
        # IC never decreases from an ancestor to a descendant: writing the ancestors in
        # increasing IC leaves the maximum in place without a comparison
        for a in ancestors[np.argsort(self.ic[ancestors], kind="stable")]:
            row[self.indices[self.indptr[a] : self.indptr[a + 1]]] = self.ic[a]
        if len(cache) < TERM_CACHE_SIZE:
            cache[term] = row
        return row

    def _table(self, terms: np.ndarray) -> np.ndarray:
        if len(terms) == 0:
            return np.zeros((0, self.n_candidates), dtype=np.float32)
        return np.stack([self.best_match(int(t)) for t in terms])

    def score(self, present: list[int] | np.ndarray, excluded: object = ()) -> np.ndarray:
        """One-sided Resnik BMA of every candidate (excluded terms are ignored)."""
        return self.score_batch([np.asarray(present, dtype=np.int64)])[0][0]

    def score_batch(self, present: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(resnik, matched_share)`` of many patients, ``(n_patients, n_candidates)``
        each: the mean over each patient's present terms of ``best(q, d)`` and of
        ``best(q, d) / IC(q)``."""
        lengths = np.array([len(p) for p in present], dtype=np.float64)
        shape = (len(present), self.n_candidates)
        if not lengths.sum():
            return np.zeros(shape), np.zeros(shape)
        if len(present) == 1:  # one patient (a service request): no sparse product
            terms = np.asarray(present[0], dtype=np.int64)
            raw = self._table(terms)
            share = raw / np.maximum(self.ic[terms], 1e-6)[:, None]
            return raw.mean(axis=0, dtype=np.float64)[None, :], share.mean(axis=0)[None, :]
        flat = np.concatenate(present).astype(np.int64)
        unique, position = np.unique(flat, return_inverse=True)
        rows = np.repeat(np.arange(len(present)), lengths.astype(np.int64))
        weights = 1.0 / np.maximum(lengths, 1)[rows]
        membership = sp.csr_matrix(
            (weights, (rows, position.ravel())), shape=(len(present), len(unique))
        )
        raw = self._table(unique)
        share = raw / np.maximum(self.ic[unique], 1e-6)[:, None]
        return np.asarray(membership @ raw), np.asarray(membership @ share)

    def disease_side(self, present: list[np.ndarray]) -> np.ndarray:
        """``(n_patients, n_candidates)``: mean over each candidate's directly annotated
        terms of the IC of their most informative ancestor shown by the patient (0 for a
        patient without terms or a candidate without annotations)."""
        best = np.zeros((len(self.direct_terms), len(present)), dtype=np.float32)
        indptr, indices = self.descendant_indptr, self.descendant_indices
        for i, terms in enumerate(present):
            if len(terms) == 0:
                continue
            union = self.space.propagate(np.asarray(terms, dtype=np.int64))
            # IC never decreases from an ancestor to a descendant: writing the shown terms
            # in increasing IC leaves, for every annotated term, its most informative one
            for a in union[np.argsort(self.ic[union], kind="stable")]:
                best[indices[indptr[a] : indptr[a + 1]], i] = self.ic[a]
        return np.asarray(self.direct_mean @ best, dtype=np.float64).T

    def exact_share(self, present: list[np.ndarray]) -> np.ndarray:
        """``(n_patients, n_candidates)``: the share of each patient's present-term
        information content (IC-weighted) carried by terms the candidate is annotated
        with exactly, not only through a more specific term (0 without terms).

        It breaks the ties of the one-sided score, which gives the full IC of a term to
        every candidate annotated with the term or any descendant of it: among the
        candidates that explain every term, those that name the patient's very terms."""
        present = [np.unique(np.asarray(p, dtype=np.int64)) for p in present]
        lengths = np.array([len(p) for p in present], dtype=np.int64)
        if not lengths.sum():
            return np.zeros((len(present), self.n_candidates))
        flat = np.concatenate(present).astype(np.int64)
        rows = np.repeat(np.arange(len(present)), lengths)
        weight = self.ic[flat]
        total = np.bincount(rows, weights=weight, minlength=len(present))
        weight = weight / np.maximum(total[rows], 1e-9)
        patients = sp.csr_matrix((weight, (rows, flat)), shape=(len(present), self.exact.shape[0]))
        return np.asarray((patients @ self.exact).todense(), dtype=np.float64)

    def considered_share(self, excluded: list[np.ndarray]) -> np.ndarray:
        """``(n_patients, n_candidates)``: the share of each patient's excluded terms
        (IC-weighted) that lie in the candidate's annotated spectrum (the term or a more
        specific one annotated); 0 without excluded terms.

        A finding is recorded as checked and absent because a clinician considered a
        disease that shows it: pertinent negatives come from the differential, so they
        point at the diseases considered as well as against them. The likelihood ratio
        reads them only as evidence against; this column lets the hybrid learn, on its
        training folds, what the recording habit says."""
        out = np.zeros((len(excluded), self.n_candidates))
        for i, given in enumerate(excluded):
            terms = np.unique(np.asarray(given, dtype=np.int64))
            total = float(self.ic[terms].sum()) if len(terms) else 0.0
            if total <= 0:
                continue
            for term in terms.tolist():
                rows = self.indices[self.indptr[term] : self.indptr[term + 1]]
                out[i, rows] += self.ic[term] / total
        return out

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_term_rows", None)
        return state
