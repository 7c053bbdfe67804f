"""What a clinician would think of from the presenting findings.

The common-disease catalogue is read as a term x disease frequency matrix. From the
present findings of an encounter the *differential* is the set of catalogue diseases
whose profiles those findings cover best; it decides which negatives get asked about
(pertinent negatives) and which labs get ordered. The *neighbours* of a disease (most
similar symptom profiles) are the diagnoses it is confused with when miscoded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def frequency_matrix(common: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Catalogue terms and their frequency per disease (terms x diseases)."""
    terms = sorted({s["hpo"] for items in common["symptoms"] for s in items})
    index = {t: i for i, t in enumerate(terms)}
    matrix = np.zeros((len(terms), len(common)))
    for d, items in enumerate(common["symptoms"]):
        for s in items:
            matrix[index[s["hpo"]], d] = float(s["frequency"])
    return terms, matrix


def coverage(present: pd.DataFrame, n: int, terms: list[str], matrix: np.ndarray) -> np.ndarray:
    """Share of each disease's profile (frequency mass) covered by each encounter's
    present findings: encounters x diseases, in [0, 1].

    ``present``: rows ``encounter, hpo_id`` of present findings.
    """
    index = {t: i for i, t in enumerate(terms)}
    rows = present[present["hpo_id"].isin(index)]
    indicator = np.zeros((n, len(terms)))
    indicator[rows["encounter"].to_numpy(int), rows["hpo_id"].map(index).to_numpy(int)] = 1.0
    return indicator @ (matrix / np.maximum(matrix.sum(axis=0, keepdims=True), 1e-9))


def neighbours(matrix: np.ndarray, prevalence: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar diseases of each disease (cosine of frequency profiles) and
    the probability of coding each one instead: similarity x sqrt(prevalence), normalised."""
    unit = matrix / np.maximum(np.linalg.norm(matrix, axis=0, keepdims=True), 1e-9)
    similarity = unit.T @ unit
    np.fill_diagonal(similarity, -1.0)
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    weight = np.take_along_axis(similarity, order, axis=1).clip(min=1e-6)
    weight = weight * np.sqrt(prevalence[order])
    return order, weight / weight.sum(axis=1, keepdims=True)


def pertinent_negatives(
    rng: np.random.Generator,
    cover: np.ndarray,
    matrix: np.ndarray,
    true_freq: np.ndarray,
    count: np.ndarray,
    *,
    width: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Terms asked about and found absent: drawn from the ``width`` diseases of the
    differential (best coverage, the true one only if it is among them), weighted by
    how typical each term is of those diseases.

    ``true_freq``: per encounter, the frequency of every term in the true disease (a term
    the patient has is not recorded absent: it is kept with probability 1 - frequency).
    Returns (encounter, term index) pairs; present terms must be dropped by the caller.
    """
    n = len(cover)
    noise = rng.gumbel(size=cover.shape) * 0.05  # ties broken at random
    top = np.argsort(-(cover + noise), axis=1, kind="stable")[:, :width]
    profiles = matrix.T  # diseases x terms
    weight = sum(profiles[top[:, w]] for w in range(top.shape[1]))  # encounters x terms
    weight = weight * (1.0 - true_freq)
    keys = np.where(weight > 0, rng.random(weight.shape) ** (1.0 / np.maximum(weight, 1e-9)), -1)
    order = np.argsort(-keys, axis=1, kind="stable")
    rank_ok = np.arange(weight.shape[1])[None, :] < count[:, None]
    chosen = np.take_along_axis(keys, order, axis=1) > 0
    r, c = np.nonzero(rank_ok & chosen)
    return np.arange(n)[r], order[r, c]


def suspicion(cover: np.ndarray, lab_diseases: np.ndarray) -> np.ndarray:
    """How strongly a clinician suspects a disease a lab tests for: the best coverage
    among the diseases with a shift on that lab (encounters x labs)."""
    out = np.zeros((len(cover), lab_diseases.shape[1]))
    for j in range(lab_diseases.shape[1]):
        cols = np.flatnonzero(lab_diseases[:, j])
        if len(cols):
            out[:, j] = cover[:, cols].max(axis=1)
    return out
