"""The trained phenotype encoder at prediction time, in numpy (no PyTorch).

:mod:`disease_pipeline.rare.encoder` trains the two towers with PyTorch. What scoring
needs of them afterwards is small: the two term-embedding tables, the patient tower's
layers and every candidate's prototype vector. :func:`disease_pipeline.rare.encoder.
build_index` copies them into an :class:`EncoderIndex`, so the predictor that
evaluation, the service and the screen load never imports PyTorch (~200 MB of every
serving worker), and its similarities equal the PyTorch forward pass's to float32
rounding (``tests/rare/test_encoder_index.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import erf

from disease_pipeline.rare.profiles import Profiles
from disease_pipeline.rare.terms import TermSpace

SEXES = ("female", "male")
AGE_SCALE_YEARS = 100.0
EMBED_BATCH = 2048

#: ``(flat term indices, offsets, per-term weights)`` of a batch (EmbeddingBag inputs)
Bag = tuple[np.ndarray, np.ndarray, np.ndarray]
#: ``(weight (out, in), bias (out,))`` of one linear layer
Layer = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class PatientInput:
    """A patient for the encoder: term indices (cleaned), age in years, sex."""

    present: np.ndarray
    excluded: np.ndarray
    age: float | None = None
    sex: str = "unknown"


def make_bag(indices: list[np.ndarray], weights: list[np.ndarray]) -> Bag:
    """Flat indices, offsets and per-sample weights of a batch of term lists."""
    lengths = np.array([len(i) for i in indices], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else lengths
    flat = np.concatenate(indices) if len(indices) else np.zeros(0, np.int64)
    flat_w = np.concatenate(weights) if len(weights) else np.zeros(0, np.float32)
    return flat.astype(np.int64), offsets.astype(np.int64), flat_w.astype(np.float32)


def _normalise_rows(matrix: sp.spmatrix) -> sp.csr_matrix:
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(1.0 / np.where(sums > 0, sums, 1.0)) @ matrix)


class Featuriser:
    """Turns patients and disease profiles into weighted bags of terms."""

    def __init__(self, space: TermSpace, ic: np.ndarray) -> None:
        self.space = space
        self.ic = np.maximum(ic, 1e-3).astype(np.float32)

    def patient_arrays(self, patients: list[PatientInput]) -> tuple[Bag, Bag, np.ndarray]:
        """Present bag (ancestors propagated, IC-weighted, summing to 1), excluded bag
        (uniform weights) and the ``(age, has-age, female, male)`` block."""
        present_i, present_w, excluded_i, excluded_w, extra = [], [], [], [], []
        for patient in patients:
            prop = self.space.propagate(patient.present)
            weights = self.ic[prop]
            present_i.append(prop)
            present_w.append(weights / max(float(weights.sum()), 1e-6))
            excluded_i.append(np.asarray(patient.excluded, dtype=np.int64))
            excluded_w.append(np.full(len(patient.excluded), 1.0 / max(len(patient.excluded), 1)))
            known_age = patient.age is not None and not math.isnan(patient.age)
            extra.append(
                [
                    min(patient.age, 120.0) / AGE_SCALE_YEARS if known_age else 0.0,
                    1.0 if known_age else 0.0,
                    *(1.0 if patient.sex == sex else 0.0 for sex in SEXES),
                ]
            )
        return (
            make_bag(present_i, present_w),
            make_bag(excluded_i, excluded_w),
            np.asarray(extra, dtype=np.float32).reshape(len(patients), 2 + len(SEXES)),
        )

    def disease_matrices(self, profiles: Profiles) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """Row-normalised profile weights (frequency × IC) and NOT-term weights."""
        weighted = sp.csr_matrix(profiles.propagated) @ sp.diags(self.ic)
        return _normalise_rows(weighted), _normalise_rows(profiles.excluded)


def bag_matrix(bag: Bag, n_rows: int, n_terms: int) -> sp.csr_matrix:
    """The bag as a sparse ``(n_rows, n_terms)`` weight matrix (its product with an
    embedding table is EmbeddingBag's weighted sum)."""
    flat, offsets, weights = bag
    indptr = np.concatenate([offsets, [len(flat)]]).astype(np.int64)
    return sp.csr_matrix((weights, flat, indptr), shape=(n_rows, n_terms), dtype=np.float32)


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact GELU (PyTorch's ``nn.GELU()``): ``x Φ(x)``."""
    return (0.5 * x * (1.0 + erf(x / np.float32(math.sqrt(2.0))))).astype(np.float32)


def unit_rows(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows divided by their L2 norm (at least ``eps``), as ``F.normalize``."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, eps)).astype(np.float32)


class EncoderIndex:
    """The patient tower and every candidate's prototype, ready to score patients."""

    def __init__(
        self,
        featuriser: Featuriser,
        *,
        present_table: np.ndarray,
        absent_table: np.ndarray,
        layers: list[Layer],
        profile_vectors: np.ndarray,
        prototype_vectors: np.ndarray,
    ) -> None:
        if not layers:
            raise ValueError("the patient tower needs at least one layer")
        self.featuriser = featuriser
        self.present_table = np.ascontiguousarray(present_table, dtype=np.float32)
        self.absent_table = np.ascontiguousarray(absent_table, dtype=np.float32)
        self.layers = [
            (np.ascontiguousarray(w, dtype=np.float32), np.asarray(b, dtype=np.float32))
            for w, b in layers
        ]
        self.profile_vectors = np.asarray(profile_vectors, dtype=np.float32)
        self.prototype_vectors = np.asarray(prototype_vectors, dtype=np.float32)

    @property
    def out_dim(self) -> int:
        """Size of the embedding space."""
        return int(self.layers[-1][0].shape[0])

    def _tower(self, present: Bag, excluded: Bag, extra: np.ndarray) -> np.ndarray:
        n, n_terms = extra.shape[0], self.present_table.shape[0]
        x = np.hstack(
            [
                bag_matrix(present, n, n_terms) @ self.present_table,
                bag_matrix(excluded, n, n_terms) @ self.absent_table,
                extra,
            ]
        ).astype(np.float32)
        last = len(self.layers) - 1
        for position, (weight, bias) in enumerate(self.layers):
            x = x @ weight.T + bias
            if position < last:
                x = gelu(x)
        return unit_rows(x)

    def embed(self, patients: list[PatientInput]) -> np.ndarray:
        """Unit vectors of patients, ``(n_patients, out_dim)`` float32."""
        out = [
            self._tower(*self.featuriser.patient_arrays(patients[start : start + EMBED_BATCH]))
            for start in range(0, len(patients), EMBED_BATCH)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.out_dim), np.float32)

    def similarity(self, patient: PatientInput) -> np.ndarray:
        """Cosine similarity of one patient to every candidate prototype."""
        return self.prototype_vectors @ self.embed([patient])[0]

    def similarity_batch(self, patients: list[PatientInput]) -> np.ndarray:
        """``(n_patients, n_candidates)`` cosine similarities, one embedding pass."""
        return self.embed(patients) @ self.prototype_vectors.T
