"""Few-shot phenotype encoder (PyTorch, CPU): patients and diseases in one space.

A patient is the IC-weighted mean of embeddings of its present terms propagated to
ancestors, the mean embedding of its excluded terms, age and sex; a disease is the
frequency × IC weighted mean of its profile terms and its NOT terms. Two small MLP
towers map both to unit vectors. A disease's *prototype* adds its known cases
(patient-tower embeddings) to its profile embedding, so a disease seen once or a few
times is recognised even when its annotations are poor or missing.

This module trains; :func:`build_index` hands the trained patient tower and the
prototypes to :class:`~disease_pipeline.rare.encoder_index.EncoderIndex`, which scores
patients in numpy (the fitted predictor holds no PyTorch object).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from disease_pipeline.rare.encoder_index import (
    EMBED_BATCH,
    SEXES,
    EncoderIndex,
    Featuriser,
    Layer,
    PatientInput,
)
from disease_pipeline.rare.encoder_index import Bag as ArrayBag
from disease_pipeline.rare.profiles import Profiles


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


def torch_bag(bag: ArrayBag) -> Bag:
    """EmbeddingBag inputs of a numpy bag (``encoder_index.make_bag``)."""
    flat, offsets, weights = bag
    return torch.from_numpy(flat), torch.from_numpy(offsets), torch.from_numpy(weights)


def patient_tensors(
    featuriser: Featuriser, patients: list[PatientInput]
) -> tuple[Bag, Bag, torch.Tensor]:
    """Present bag, excluded bag and the (age, has-age, female, male) block as tensors."""
    present, excluded, extra = featuriser.patient_arrays(patients)
    return torch_bag(present), torch_bag(excluded), torch.from_numpy(extra)


def _row_bag(matrix: sp.csr_matrix, rows: np.ndarray) -> Bag:
    sub = matrix[rows]
    return (
        torch.from_numpy(sub.indices.astype(np.int64)),
        torch.from_numpy(sub.indptr[:-1].astype(np.int64)),
        torch.from_numpy(sub.data.astype(np.float32)),
    )


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


def tower_arrays(model: PhenotypeEncoder) -> tuple[np.ndarray, np.ndarray, list[Layer]]:
    """The term tables and the patient tower's linear layers as float32 arrays (the
    tower is Linear, GELU, Dropout, Linear, GELU, Linear: GELU after every linear layer
    but the last, dropout inactive at prediction)."""
    tower = list(model.patient_tower)
    linear = [m for m in tower if isinstance(m, nn.Linear)]
    activations = [m for m in tower if isinstance(m, nn.GELU)]
    if len(activations) != len(linear) - 1 or any(a.approximate != "none" for a in activations):
        raise ValueError("the patient tower is not Linear/exact-GELU layers")
    with torch.no_grad():
        return (
            model.present.weight.detach().numpy().copy(),
            model.absent.weight.detach().numpy().copy(),
            [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy()) for m in linear],
        )


def build_index(
    model: PhenotypeEncoder,
    featuriser: Featuriser,
    profiles: Profiles,
    case_rows: np.ndarray,
    case_inputs: list[PatientInput],
) -> EncoderIndex:
    """The scoring index of a trained encoder: every candidate's profile embedding (the
    disease tower) and prototype (profile plus its known cases' patient embeddings)."""
    model = model.eval()
    present_table, absent_table, layers = tower_arrays(model)
    weights, nots = featuriser.disease_matrices(profiles)
    n = weights.shape[0]
    chunks = []
    with torch.no_grad():
        for start in range(0, n, EMBED_BATCH):
            rows = np.arange(start, min(n, start + EMBED_BATCH))
            chunks.append(model.embed_diseases(_row_bag(weights, rows), _row_bag(nots, rows)))
        profile = torch.cat(chunks) if chunks else torch.zeros(0, 1)
    index = EncoderIndex(
        featuriser,
        present_table=present_table,
        absent_table=absent_table,
        layers=layers,
        profile_vectors=profile.numpy(),
        prototype_vectors=profile.numpy(),
    )
    with torch.no_grad():
        sums = torch.zeros_like(profile)
        if len(case_inputs):
            cases = torch.from_numpy(index.embed(case_inputs))
            sums.index_add_(0, torch.from_numpy(np.asarray(case_rows, np.int64)), cases)
        has_profile = torch.from_numpy(np.diff(weights.indptr) > 0)
        index.prototype_vectors = model.prototypes(profile, has_profile, sums).numpy()
    return index
