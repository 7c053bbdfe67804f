"""Few-shot phenotype encoder (PyTorch, CPU): patients and diseases in one space.

A patient is the IC-weighted mean of embeddings of its present terms propagated to
ancestors, the mean embedding of its excluded terms, age and sex; a disease is the
frequency × IC weighted mean of its profile terms and its NOT terms. Two small MLP
towers map both to unit vectors. A disease's *prototype* adds its known cases
(patient-tower embeddings) to its profile embedding, so a disease seen once or a few
times is recognised even when its annotations are poor or missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from disease_pipeline.rare.profiles import Profiles
from disease_pipeline.rare.terms import TermSpace

SEXES = ("female", "male")
AGE_SCALE_YEARS = 100.0
EMBED_BATCH = 2048


@dataclass(frozen=True)
class PatientInput:
    """A patient for the encoder: term indices (cleaned), age in years, sex."""

    present: np.ndarray
    excluded: np.ndarray
    age: float | None = None
    sex: str = "unknown"


@dataclass(frozen=True)
class EncoderParams:
    """Architecture and training knobs (``rare_model.encoder`` parameters)."""

    term_dim: int = 64
    hidden: int = 256
    out_dim: int = 128
    dropout: float = 0.1
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5
    batch_size: int = 128
    ways: int = 512
    pretrain_steps: int = 300
    synthetic_steps: int = 2000
    finetune_steps: int = 1000
    max_seconds: float = 600.0
    real_query_share: float = 0.5
    max_support: int = 5
    profile_weight: float = 2.0
    threads: int = 1
    seed: int = 7

    def __post_init__(self) -> None:
        for name in ("term_dim", "hidden", "out_dim", "batch_size", "ways", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"parameter rare_model.encoder.{name} must be >= 1")
        if not 0 <= self.real_query_share <= 1:
            raise ValueError("parameter rare_model.encoder.real_query_share must be in [0, 1]")
        if self.max_seconds <= 0 or self.profile_weight <= 0:
            raise ValueError("rare_model.encoder.max_seconds and profile_weight must be > 0")


Bag = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def make_bag(indices: list[np.ndarray], weights: list[np.ndarray]) -> Bag:
    """EmbeddingBag inputs (flat indices, offsets, per-sample weights) for a batch."""
    lengths = np.array([len(i) for i in indices], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else lengths
    flat = np.concatenate(indices) if len(indices) else np.zeros(0, np.int64)
    flat_w = np.concatenate(weights) if len(weights) else np.zeros(0, np.float32)
    return (
        torch.from_numpy(flat.astype(np.int64)),
        torch.from_numpy(offsets.astype(np.int64)),
        torch.from_numpy(flat_w.astype(np.float32)),
    )


def _row_bag(matrix: sp.csr_matrix, rows: np.ndarray) -> Bag:
    sub = matrix[rows]
    return (
        torch.from_numpy(sub.indices.astype(np.int64)),
        torch.from_numpy(sub.indptr[:-1].astype(np.int64)),
        torch.from_numpy(sub.data.astype(np.float32)),
    )


def _normalise_rows(matrix: sp.spmatrix) -> sp.csr_matrix:
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(1.0 / np.where(sums > 0, sums, 1.0)) @ matrix)


class Featuriser:
    """Turns patients and disease profiles into EmbeddingBag inputs."""

    def __init__(self, space: TermSpace, ic: np.ndarray) -> None:
        self.space = space
        self.ic = np.maximum(ic, 1e-3).astype(np.float32)

    def patients(self, patients: list[PatientInput]) -> tuple[Bag, Bag, torch.Tensor]:
        """Present bag, excluded bag and the (age, has-age, female, male) block."""
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
            torch.tensor(extra, dtype=torch.float32).reshape(len(patients), 2 + len(SEXES)),
        )

    def disease_matrices(self, profiles: Profiles) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """Row-normalised profile weights (frequency × IC) and NOT-term weights."""
        weighted = sp.csr_matrix(profiles.propagated) @ sp.diags(self.ic)
        return _normalise_rows(weighted), _normalise_rows(profiles.excluded)


def _mlp(n_in: int, hidden: int, n_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, hidden),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.GELU(),
        nn.Linear(hidden, n_out),
    )


class PhenotypeEncoder(nn.Module):
    """Two towers over shared term embeddings; outputs are unit vectors."""

    def __init__(self, n_terms: int, params: EncoderParams) -> None:
        super().__init__()
        self.present = nn.EmbeddingBag(n_terms, params.term_dim, mode="sum", sparse=True)
        self.absent = nn.EmbeddingBag(n_terms, params.term_dim, mode="sum", sparse=True)
        nn.init.normal_(self.present.weight, std=0.1)
        nn.init.normal_(self.absent.weight, std=0.1)
        extra = 2 + len(SEXES)
        self.patient_tower = _mlp(
            2 * params.term_dim + extra, params.hidden, params.out_dim, params.dropout
        )
        self.disease_tower = _mlp(
            2 * params.term_dim, params.hidden, params.out_dim, params.dropout
        )
        self.log_scale = nn.Parameter(torch.tensor(math.log(16.0)))
        self.log_profile_weight = nn.Parameter(torch.tensor(math.log(params.profile_weight)))

    def sparse_parameters(self) -> list[nn.Parameter]:
        """The term embedding tables (sparse gradients, for ``torch.optim.SparseAdam``)."""
        return [self.present.weight, self.absent.weight]

    def dense_parameters(self) -> list[nn.Parameter]:
        """Every other parameter."""
        sparse = {id(p) for p in self.sparse_parameters()}
        return [p for p in self.parameters() if id(p) not in sparse]

    def embed_patients(self, present: Bag, excluded: Bag, extra: torch.Tensor) -> torch.Tensor:
        """Unit vectors of a batch of patients."""
        n = extra.shape[0]
        x = torch.cat(
            [
                self.present(*present[:2], per_sample_weights=present[2])[:n],
                self.absent(*excluded[:2], per_sample_weights=excluded[2])[:n],
                extra,
            ],
            dim=1,
        )
        return nn.functional.normalize(self.patient_tower(x), dim=1)

    def embed_diseases(self, profile: Bag, nots: Bag) -> torch.Tensor:
        """Unit vectors of a batch of disease profiles."""
        x = torch.cat(
            [
                self.present(*profile[:2], per_sample_weights=profile[2]),
                self.absent(*nots[:2], per_sample_weights=nots[2]),
            ],
            dim=1,
        )
        return nn.functional.normalize(self.disease_tower(x), dim=1)

    def prototypes(
        self, profile: torch.Tensor, has_profile: torch.Tensor, case_sums: torch.Tensor
    ) -> torch.Tensor:
        """Unit prototypes: weighted profile embedding plus the sum of case embeddings."""
        weight = torch.exp(self.log_profile_weight) * has_profile.float().unsqueeze(1)
        return nn.functional.normalize(weight * profile + case_sums, dim=1, eps=1e-6)


class EncoderIndex:
    """A trained encoder with every candidate's prototype, ready to score patients."""

    def __init__(
        self,
        model: PhenotypeEncoder,
        featuriser: Featuriser,
        profiles: Profiles,
        case_rows: np.ndarray,
        case_inputs: list[PatientInput],
    ) -> None:
        self.model = model.eval()
        self.featuriser = featuriser
        weights, nots = featuriser.disease_matrices(profiles)
        n = weights.shape[0]
        chunks = []
        with torch.no_grad():
            for start in range(0, n, EMBED_BATCH):
                rows = np.arange(start, min(n, start + EMBED_BATCH))
                chunks.append(
                    self.model.embed_diseases(_row_bag(weights, rows), _row_bag(nots, rows))
                )
            profile = torch.cat(chunks) if chunks else torch.zeros(0, 1)
            sums = torch.zeros_like(profile)
            if len(case_inputs):
                cases = torch.from_numpy(self.embed(case_inputs))
                sums.index_add_(0, torch.from_numpy(np.asarray(case_rows, np.int64)), cases)
            has_profile = torch.from_numpy(np.diff(weights.indptr) > 0)
            self.profile_vectors = profile.numpy()
            self.prototype_vectors = self.model.prototypes(profile, has_profile, sums).numpy()

    def embed(self, patients: list[PatientInput]) -> np.ndarray:
        """Unit vectors of patients (no gradient)."""
        out = []
        with torch.no_grad():
            for start in range(0, len(patients), EMBED_BATCH):
                batch = self.featuriser.patients(patients[start : start + EMBED_BATCH])
                out.append(self.model.embed_patients(*batch).numpy())
        return (
            np.concatenate(out) if out else np.zeros((0, self.model.disease_tower[-1].out_features))
        )

    def similarity(self, patient: PatientInput) -> np.ndarray:
        """Cosine similarity of one patient to every candidate prototype."""
        return self.prototype_vectors @ self.embed([patient])[0]

    def similarity_batch(self, patients: list[PatientInput]) -> np.ndarray:
        """``(n_patients, n_candidates)`` cosine similarities, one embedding pass."""
        return self.embed(patients) @ self.prototype_vectors.T
