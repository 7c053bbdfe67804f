"""Candidate diseases and their phenotype profiles as sparse candidate × term matrices.

Candidates are every annotated disease (OMIM, ORPHA, DECIPHER), the common-disease
catalogue (ICD-10) and any disease known only from patient cases. A profile holds, per
candidate and term, the probability that a patient shows the term: from annotated
frequencies (knowledge) or from the share of known cases showing it (case profile).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from disease_pipeline.rare.cases import Case
from disease_pipeline.rare.terms import TermSpace

CANDIDATE_COLUMNS = ["disease_id", "name", "database", "category", "icd10"]


@dataclass
class Candidates:
    """The ordered list of candidate diseases."""

    table: pd.DataFrame  # CANDIDATE_COLUMNS
    index: dict[str, int]

    def __len__(self) -> int:
        return len(self.table)

    @property
    def ids(self) -> np.ndarray:
        """Disease ids in candidate order."""
        return self.table["disease_id"].to_numpy()


def build_candidates(
    annotations: pd.DataFrame,
    catalogue: pd.DataFrame | None,
    cases: list[Case] = (),
) -> Candidates:
    """Annotated diseases, then catalogue diseases, then diseases known only from cases."""
    names = annotations.drop_duplicates("disease_id").sort_values("disease_id")
    frames = [
        pd.DataFrame(
            {
                "disease_id": names["disease_id"],
                "name": names["disease_name"],
                "database": names["database"],
                "category": "RARE",
                "icd10": None,
            }
        )
    ]
    if catalogue is not None and len(catalogue):
        frames.append(
            pd.DataFrame(
                {
                    "disease_id": catalogue["icd10"],
                    "name": catalogue["name"],
                    "database": "ICD10",
                    "category": catalogue.get("category", "COMMON"),
                    "icd10": catalogue["icd10"],
                }
            )
        )
    known = set().union(*(set(f["disease_id"]) for f in frames))
    extra: dict[str, str] = {}
    for case in cases:
        if case.disease_id not in known and case.disease_id not in extra:
            extra[case.disease_id] = case.disease_name or case.disease_id
    if extra:
        frames.append(
            pd.DataFrame(
                {
                    "disease_id": list(extra),
                    "name": list(extra.values()),
                    "database": [d.split(":")[0] for d in extra],
                    "category": "RARE",
                    "icd10": None,
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)[CANDIDATE_COLUMNS]
    return Candidates(table=table, index={d: i for i, d in enumerate(table["disease_id"])})


@dataclass
class Profiles:
    """Per-candidate phenotype profiles over a :class:`TermSpace`."""

    direct: sp.csr_matrix  # frequency of directly annotated (or observed) terms
    propagated: sp.csc_matrix  # probability of showing the term or a descendant
    excluded: sp.csc_matrix  # 1 where the term is annotated as NOT present
    n_cases: np.ndarray  # cases behind each row (0 for knowledge profiles)

    @property
    def has_profile(self) -> np.ndarray:
        """Candidates with at least one profile term."""
        return np.diff(self.direct.indptr) > 0


def _max_propagate(
    rows: np.ndarray, terms: np.ndarray, values: np.ndarray, space: TermSpace, n_rows: int
) -> sp.csc_matrix:
    """Candidate × term matrix of the max value over each term's annotated descendants."""
    if len(rows) == 0:
        return sp.csc_matrix((n_rows, space.n_terms), dtype=np.float32)
    lengths = np.array([len(space.ancestor_lists[t]) for t in terms])
    long = pd.DataFrame(
        {
            "row": np.repeat(rows, lengths),
            "term": np.concatenate([space.ancestor_lists[t] for t in terms]),
            "value": np.repeat(values, lengths),
        }
    )
    best = long.groupby(["row", "term"], sort=False)["value"].max().reset_index()
    return sp.csc_matrix(
        (best["value"].to_numpy(np.float32), (best["row"], best["term"])),
        shape=(n_rows, space.n_terms),
    )


def knowledge_profiles(
    annotations: pd.DataFrame,
    catalogue: pd.DataFrame | None,
    candidates: Candidates,
    space: TermSpace,
    unknown_frequency: float,
) -> Profiles:
    """Profiles from HPO annotations and the catalogue's symptom frequencies.

    Annotations without a frequency get ``unknown_frequency``. Terms outside the
    phenotype space (e.g. inheritance modes) are ignored.
    """
    if not 0 < unknown_frequency <= 1:
        raise ValueError(f"unknown_frequency must be in (0, 1], got {unknown_frequency}")
    long = annotations[["disease_id", "hpo_id", "frequency", "excluded"]]
    if catalogue is not None and len(catalogue):
        symptoms = [
            {"disease_id": row["icd10"], "hpo_id": s["hpo"], "frequency": float(s["frequency"])}
            for row in catalogue.to_dict("records")
            for s in row["symptoms"]
        ]
        long = pd.concat([long, pd.DataFrame(symptoms).assign(excluded=False)], ignore_index=True)
    long = long[long["hpo_id"].isin(space.index) & long["disease_id"].isin(candidates.index)]
    rows = long["disease_id"].map(candidates.index).to_numpy()
    terms = long["hpo_id"].map(space.index).to_numpy()
    freq = long["frequency"].fillna(unknown_frequency).to_numpy(np.float32)
    excluded = long["excluded"].to_numpy(bool)
    present = ~excluded
    n = len(candidates)
    direct = sp.csr_matrix(
        (freq[present], (rows[present], terms[present])), shape=(n, space.n_terms)
    )
    direct.sum_duplicates()
    not_matrix = sp.csc_matrix(
        (np.ones(excluded.sum(), np.float32), (rows[excluded], terms[excluded])),
        shape=(n, space.n_terms),
    )
    not_matrix.data[:] = 1.0
    return Profiles(
        direct=direct,
        propagated=_max_propagate(rows[present], terms[present], freq[present], space, n),
        excluded=not_matrix,
        n_cases=np.zeros(n, dtype=np.int64),
    )


def case_profiles(cases: list[Case], candidates: Candidates, space: TermSpace) -> Profiles:
    """Profiles from known cases: share of each disease's cases showing a term.

    ``propagated[d, t]`` is the share of the cases of ``d`` that show ``t`` or a
    descendant; ``direct`` the share reporting ``t`` itself. Cases whose disease is
    not a candidate are ignored.
    """
    n = len(candidates)
    counts = np.zeros(n, dtype=np.int64)
    direct_rows, direct_terms, prop_rows, prop_terms = [], [], [], []
    for case in cases:
        row = candidates.index.get(case.disease_id)
        if row is None:
            continue
        idx = space.indices(case.present)
        counts[row] += 1
        direct_rows += [row] * len(idx)
        direct_terms += idx
        prop = space.propagate(idx)
        prop_rows.append(np.full(len(prop), row))
        prop_terms.append(prop)
    shape = (n, space.n_terms)
    scale = 1.0 / np.maximum(counts, 1)

    def _shares(rows: np.ndarray, terms: np.ndarray) -> sp.csr_matrix:
        matrix = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, terms)), shape=shape, dtype=np.float32
        )
        matrix.sum_duplicates()
        return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ matrix)

    prop_r = np.concatenate(prop_rows) if prop_rows else np.zeros(0, np.int64)
    prop_t = np.concatenate(prop_terms) if prop_terms else np.zeros(0, np.int64)
    return Profiles(
        direct=_shares(np.asarray(direct_rows, np.int64), np.asarray(direct_terms, np.int64)),
        propagated=sp.csc_matrix(_shares(prop_r, prop_t)),
        excluded=sp.csc_matrix(shape, dtype=np.float32),
        n_cases=counts,
    )


def merge_profiles(knowledge: Profiles, cases: Profiles, pseudocount: float) -> Profiles:
    """Knowledge profiles updated with known cases (a Bayesian blend of frequencies).

    A candidate with annotations and ``n`` cases gets
    ``(pseudocount · annotated + n · observed share) / (pseudocount + n)``; one known
    only from cases gets the observed shares. NOT annotations are kept.
    """
    if pseudocount <= 0:
        raise ValueError(f"parameter rare_model.annotation_pseudocount must be > 0: {pseudocount}")
    n = cases.n_cases.astype(np.float64)
    has_knowledge = knowledge.has_profile
    w_knowledge = np.where(has_knowledge, pseudocount / (pseudocount + n), 0.0)
    w_cases = np.where(has_knowledge, n / (pseudocount + n), (n > 0).astype(np.float64))

    def _blend(a: sp.spmatrix, b: sp.spmatrix) -> sp.csr_matrix:
        return sp.csr_matrix(sp.diags(w_knowledge) @ a + sp.diags(w_cases) @ b, dtype=np.float32)

    return Profiles(
        direct=_blend(knowledge.direct, cases.direct),
        propagated=sp.csc_matrix(_blend(knowledge.propagated, cases.propagated)),
        excluded=knowledge.excluded,
        n_cases=cases.n_cases.copy(),
    )
