"""Episodic training of the :class:`PhenotypeEncoder`, in three stages.

1. ``pretrain_common``: common-disease cases (simulated encounters and patients
   sampled from the catalogue) classified among all common diseases.
2. ``pretrain_synthetic``: patients sampled from the annotations of rare diseases
   (knowledge only, no known case) classified among ``ways`` rare diseases.
3. ``finetune_cases``: episodes over rare diseases where a query is a known case
   (registry phenopacket or simulated encounter, left out of its disease's support
   set) or a sampled patient, and each candidate's prototype is its profile embedding
   plus up to ``max_support`` of its known cases.

Stages 1–2 use no rare case, so their result can be reused (``warm_start``) by fits
that differ only in the cases they know (e.g. validation folds). Half of each
episode's negatives are *hard*: diseases sharing an informative term with a query.
The loss is the cross-entropy of the true disease among the episode's prototypes.
Training stops at the step counts or the time budget.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from disease_pipeline.rare.encoder import (
    EncoderParams,
    PhenotypeEncoder,
    _row_bag,
    patient_tensors,
)
from disease_pipeline.rare.encoder_index import Featuriser, PatientInput
from disease_pipeline.rare.profiles import Profiles
from disease_pipeline.rare.synth import CaseSampler

#: terms shared by fewer than this share of diseases define "hard" negatives
HARD_TERM_MAX_SHARE = 0.02


@dataclass
class TrainingData:
    """Everything an episode draws from, indexed by candidate row."""

    profiles: Profiles
    sampler: CaseSampler
    common_rows: np.ndarray  # candidate rows of common diseases
    rare_rows: np.ndarray  # candidate rows of rare diseases (profile or cases)
    cases: dict[int, list[PatientInput]] = field(default_factory=dict)


@dataclass
class _Episode:
    queries: list[PatientInput]
    targets: np.ndarray  # position of each query's disease in ``rows``
    rows: np.ndarray  # candidate rows of the episode
    supports: list[PatientInput]
    support_slots: np.ndarray  # position in ``rows`` of each support case


class EpisodeSampler:
    """Builds random episodes from :class:`TrainingData`."""

    def __init__(self, data: TrainingData, params: EncoderParams, rng: np.random.Generator):
        self.data = data
        self.params = params
        self.rng = rng
        self.has_profile = data.profiles.has_profile
        several = [row for row, known in data.cases.items() if len(known) > 1]
        self._queryable = self.has_profile.copy()
        self._queryable[np.asarray(several, dtype=np.int64)] = True
        direct = sp.csr_matrix(data.profiles.direct)
        share = np.asarray((direct > 0).sum(axis=0)).ravel() / max(direct.shape[0], 1)
        informative = (share > 0) & (share <= HARD_TERM_MAX_SHARE)
        self._direct = direct
        self._informative = informative
        self._by_term = sp.csc_matrix(direct)

    def _hard_negatives(self, rows: np.ndarray, n: int) -> np.ndarray:
        """Up to ``n`` diseases that share an informative direct term with ``rows``."""
        found = []
        for row in rows:
            terms = self._direct.indices[self._direct.indptr[row] : self._direct.indptr[row + 1]]
            terms = terms[self._informative[terms]]
            if len(terms) == 0:
                continue
            term = terms[self.rng.integers(len(terms))]
            column = self._by_term.indices[
                self._by_term.indptr[term] : self._by_term.indptr[term + 1]
            ]
            found.append(column[self.rng.integers(len(column), size=min(3, len(column)))])
        if not found:
            return np.zeros(0, dtype=np.int64)
        pool = np.unique(np.concatenate(found))
        return self.rng.permutation(pool)[:n]

    def _synthetic(self, row: int) -> PatientInput:
        present, excluded = self.data.sampler.sample(row)
        return PatientInput(present=present, excluded=excluded)

    def episode(self, pool: np.ndarray, use_cases: bool) -> _Episode:
        """Queries from ``pool`` (one per disease), candidates filled from ``pool``."""
        p, rng = self.params, self.rng
        cases = self.data.cases if use_cases else {}
        eligible = pool[self._queryable[pool]] if use_cases else pool[self.has_profile[pool]]
        n_query = min(p.batch_size, len(eligible))
        query_rows = rng.choice(eligible, size=n_query, replace=False)
        n_neg = max(0, min(p.ways, len(pool)) - n_query)
        hard = np.setdiff1d(self._hard_negatives(query_rows, n_neg // 2), query_rows)
        hard = hard[np.isin(hard, pool)]
        rest = np.setdiff1d(pool, np.concatenate([query_rows, hard]))
        easy = rng.choice(rest, size=min(n_neg - len(hard), len(rest)), replace=False)
        rows = np.concatenate([query_rows, hard, easy]).astype(np.int64)
        queries, supports, slots = [], [], []
        for slot, row in enumerate(rows):
            known = cases.get(int(row), [])
            left_out = -1
            if slot < n_query:
                real = len(known) > 0 and (
                    rng.random() < p.real_query_share or not self.has_profile[row]
                )
                if real:
                    left_out = int(rng.integers(len(known)))
                    queries.append(known[left_out])
                else:
                    queries.append(self._synthetic(int(row)))
            choices = [i for i in range(len(known)) if i != left_out]
            if len(choices) > p.max_support:
                choices = rng.choice(choices, size=p.max_support, replace=False).tolist()
            supports += [known[i] for i in choices]
            slots += [slot] * len(choices)
        return _Episode(
            queries=queries,
            targets=np.arange(n_query),
            rows=rows,
            supports=supports,
            support_slots=np.asarray(slots, dtype=np.int64),
        )


def _loss(
    model: PhenotypeEncoder,
    featuriser: Featuriser,
    matrices: tuple[sp.csr_matrix, sp.csr_matrix],
    has_profile: np.ndarray,
    episode: _Episode,
) -> torch.Tensor:
    weights, nots = matrices
    profile = model.embed_diseases(_row_bag(weights, episode.rows), _row_bag(nots, episode.rows))
    sums = torch.zeros_like(profile)
    if episode.supports:
        support = model.embed_patients(*patient_tensors(featuriser, episode.supports))
        sums = sums.index_add(0, torch.from_numpy(episode.support_slots), support)
    prototypes = model.prototypes(profile, torch.from_numpy(has_profile[episode.rows]), sums)
    queries = model.embed_patients(*patient_tensors(featuriser, episode.queries))
    logits = torch.exp(model.log_scale) * queries @ prototypes.T
    return torch.nn.functional.cross_entropy(logits, torch.from_numpy(episode.targets))


def train_encoder(
    data: TrainingData,
    featuriser: Featuriser,
    params: EncoderParams,
    warm_start: PhenotypeEncoder | None = None,
) -> tuple[PhenotypeEncoder, dict[str, object]]:
    """Run the stages (see module docstring); ``warm_start`` skips stages 1–2.

    Returns the model (in eval mode) and a history: steps run, mean loss of the first
    and last 50 steps of each stage, seconds used, whether the time budget stopped it.
    """
    torch.manual_seed(params.seed)
    torch.set_num_threads(params.threads)
    rng = np.random.default_rng(params.seed)
    if warm_start is None:
        model = PhenotypeEncoder(featuriser.space.n_terms, params)
        stages = [
            ("pretrain_common", data.common_rows, params.pretrain_steps, True),
            ("pretrain_synthetic", data.rare_rows, params.synthetic_steps, False),
        ]
    else:
        model = copy.deepcopy(warm_start)
        stages = []
    rare_cases = any(data.cases.get(int(r)) for r in data.rare_rows)
    stages.append(
        ("finetune_cases", data.rare_rows, params.finetune_steps if rare_cases else 0, True)
    )
    optimisers = [
        torch.optim.AdamW(
            model.dense_parameters(), lr=params.learning_rate, weight_decay=params.weight_decay
        ),
        torch.optim.SparseAdam(model.sparse_parameters(), lr=params.learning_rate),
    ]
    matrices = featuriser.disease_matrices(data.profiles)
    has_profile = data.profiles.has_profile
    sampler = EpisodeSampler(data, params, rng)
    started = time.monotonic()
    deadline = started + params.max_seconds
    history: dict[str, object] = {"warm_start": warm_start is not None}
    for name, pool, steps, use_cases in stages:
        losses: list[float] = []
        if len(pool) >= 2 and steps > 0:
            model.train()
            for optimiser in optimisers:
                for group in optimiser.param_groups:
                    group["lr"] = params.learning_rate
            for step in tqdm(range(steps), desc=f"rare encoder: {name}", leave=False):
                if time.monotonic() > deadline:
                    break
                loss = _loss(
                    model, featuriser, matrices, has_profile, sampler.episode(pool, use_cases)
                )
                for optimiser in optimisers:
                    optimiser.zero_grad()
                loss.backward()
                scale = 0.5 * (1 + np.cos(np.pi * step / steps))  # cosine decay
                for optimiser in optimisers:
                    for group in optimiser.param_groups:
                        group["lr"] = params.learning_rate * max(scale, 0.05)
                    optimiser.step()
                losses.append(float(loss.detach()))
        history[name] = {
            "steps": len(losses),
            "loss_first50": float(np.mean(losses[:50])) if losses else None,
            "loss_last50": float(np.mean(losses[-50:])) if losses else None,
        }
    history["seconds"] = round(time.monotonic() - started, 1)
    history["stopped_by_time_budget"] = time.monotonic() > deadline
    return model.eval(), history
