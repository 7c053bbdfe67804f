"""The learned combination of the components, and its temperature calibration.

For one patient, every candidate ``d`` has a feature vector ``x_d`` (see
:data:`FEATURES`); the hybrid logit is ``w · x_d`` and the probability of ``d`` is
``softmax_d(w · x_d / T)`` over ALL candidates. ``w`` is fitted by conditional
(multinomial) logistic regression of the true disease on validation patients, over a
shortlist of each patient's strongest candidates; ``T`` is then fitted on separate
validation patients by minimising the negative log-likelihood of the true disease
over all candidates (temperature scaling).

Gradient-boosted trees then re-rank each patient's strongest candidates
(:func:`fit_reranker`, :func:`reranked`): fitted on the same shortlists with a
pairwise ranking loss, boosting from ``w · x``, they add to the logits of the
``rerank_top`` candidates what a weighted sum cannot express; the temperature is
fitted on the re-ranked logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xgboost as xgb
from scipy.optimize import minimize
from scipy.special import logsumexp

#: Per-candidate hybrid features, in column order (computed by
#: :class:`disease_pipeline.rare.components.Components`).
FEATURES = (
    "knowledge_present",
    "knowledge_excluded",
    "encoder",
    "resnik_one_sided",
    "matched_share",
    "knowledge_robust",
    "unpublished_cases",
    "encoder_if_unpublished",
    "not_omim",
    "resnik_unpublished",
    "disease_side",
    "exact_share",
    "considered_share",
    "published_cases",
    "encoder_if_published",
    "resnik_published",
)
#: Case features: zero on every candidate without known cases. Only validation patients
#: whose own disease has support cases tell how a known case should count; without
#: them, a fit sees these columns on wrong candidates alone (validation diseases held
#: out whole have no case by construction) and learns that a disease with known cases
#: is never the answer, so their weights stay at the prior (:func:`case_columns_fixed`).
#: Two disjoint families: candidates known from published (registry) cases, and those
#: known from unpublished ones only (the simulated encounters; a hospital's own
#: confirmed cases). A published patient resembles the published patients of its
#: disease differently from how a simulated encounter resembles the simulator's others,
#: and one shared weight had to split the difference (a fit on published validation
#: patients alone gave published few-shot patients +0.11 top-1 and sank the simulated
#: ones). Each family is fitted only with validation patients whose disease is in it.
CASE_FEATURES = ("unpublished_cases", "encoder_if_unpublished", "resnik_unpublished")
PUBLISHED_CASE_FEATURES = ("published_cases", "encoder_if_published", "resnik_published")
#: Columns the re-ranking trees read: all but the encoder's. The encoder's similarity
#: is computed by PyTorch-free numpy here and by ONNX Runtime on the edge, equal only
#: to about 1e-7, and a tree compares a value with a threshold exactly: the other
#: columns are the same float32 numbers on both paths, so the trees answer the same.
RERANK_FEATURES = tuple(name for name in FEATURES if not name.startswith("encoder"))
#: Weights the fit shrinks towards: the case-informed likelihood ratio alone.
PRIOR_WEIGHTS = np.array([1.0, 1.0, *[0.0] * (len(FEATURES) - 2)])
#: Columns whose strongest candidates enter a patient's shortlist (scores that rank
#: patients' candidates, not per-candidate constants).
SHORTLIST_FEATURES = (
    "knowledge_present",
    "encoder",
    "resnik_one_sided",
    "knowledge_robust",
    "resnik_unpublished",
    "resnik_published",
    "disease_side",
    "exact_share",
)


@dataclass(frozen=True)
class HybridParams:
    """Knobs of the combination (``rare_model.hybrid`` parameters)."""

    shortlist: int = 100  # strongest candidates per component kept for fitting w
    prior_strength: float = 20.0  # pseudo-patients pulling w towards PRIOR_WEIGHTS
    #: validation patients of diseases with support cases needed to fit CASE_FEATURES
    min_case_patients: int = 20
    #: boosting rounds of the re-ranking trees (0: the linear hybrid alone)
    rerank_rounds: int = 200
    rerank_depth: int = 3
    rerank_learning_rate: float = 0.05
    #: strongest candidates of each patient (by ``w · x``) the trees re-rank
    rerank_top: int = 300
    #: the trees' regularisation (XGBoost ``min_child_weight``, ``subsample``,
    #: ``colsample_bytree``, ``lambda``)
    rerank_min_child_weight: float = 5.0
    rerank_subsample: float = 0.8
    rerank_colsample: float = 0.8
    rerank_l2: float = 5.0

    def __post_init__(self) -> None:
        if self.shortlist < 1 or self.prior_strength < 0 or self.min_case_patients < 0:
            raise ValueError(
                "parameters rare_model.hybrid: shortlist >= 1, prior_strength >= 0,"
                " min_case_patients >= 0"
            )
        if self.rerank_rounds < 0 or self.rerank_depth < 1 or self.rerank_top < 1:
            raise ValueError(
                "parameters rare_model.hybrid: rerank_rounds >= 0, rerank_depth >= 1,"
                " rerank_top >= 1"
            )
        for name in ("rerank_learning_rate", "rerank_subsample", "rerank_colsample"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"parameters rare_model.hybrid: 0 < {name} <= 1")
        if self.rerank_min_child_weight < 0 or self.rerank_l2 < 0:
            raise ValueError(
                "parameters rare_model.hybrid: rerank_min_child_weight >= 0, rerank_l2 >= 0"
            )


def case_patients(groups: list[np.ndarray], indicator: str) -> int:
    """Shortlists (truth first) whose true disease is marked by ``indicator``
    (``unpublished_cases`` or ``published_cases``)."""
    column = FEATURES.index(indicator)
    return sum(int(g[0, column] > 0) for g in groups)


#: each case-feature family and the indicator column of its candidates
CASE_FAMILIES = {"unpublished_cases": CASE_FEATURES, "published_cases": PUBLISHED_CASE_FEATURES}


def case_columns_fixed(groups: list[np.ndarray], min_patients: int) -> np.ndarray:
    """Columns :func:`fit_weights` keeps at the prior: each family of
    :data:`CASE_FAMILIES` whose candidates are the truth of fewer than ``min_patients``
    validation patients (see :data:`CASE_FEATURES`)."""
    few = [
        name
        for indicator, family in CASE_FAMILIES.items()
        if case_patients(groups, indicator) < min_patients
        for name in family
    ]
    return np.array([name in few for name in FEATURES])


def shortlist(
    features: np.ndarray, truth: int, size: int, columns: list[int] | None = None
) -> np.ndarray:
    """Candidate rows: the top ``size`` of every feature column (of ``columns`` when
    given), plus the truth first."""
    rows = [np.array([truth])]
    for j in range(features.shape[1]) if columns is None else columns:
        column = features[:, j]
        k = min(size, len(column) - 1)
        rows.append(np.argpartition(-column, k)[:k])
    merged = np.concatenate(rows)
    _, first = np.unique(merged, return_index=True)
    return merged[np.sort(first)]


def without_case_candidates(group: np.ndarray, indicator: str) -> np.ndarray:
    """A shortlist (truth first) without the wrong candidates marked by ``indicator``
    (a family's candidates with known cases)."""
    marked = group[:, FEATURES.index(indicator)] > 0
    marked[0] = False
    return group[~marked]


def _padded(groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(g) for g in groups)
    n_features = groups[0].shape[1]
    x = np.zeros((len(groups), width, n_features))
    mask = np.zeros((len(groups), width), dtype=bool)
    for i, group in enumerate(groups):
        x[i, : len(group)] = group
        mask[i, : len(group)] = True
    return x, mask


def fit_weights(
    groups: list[np.ndarray],
    prior_strength: float,
    prior: np.ndarray = PRIOR_WEIGHTS,
    fixed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Conditional-logit weights from shortlists whose first row is the true disease.

    Features are scaled by their sd over all shortlisted rows before fitting; a ridge
    penalty worth ``prior_strength`` patients pulls the weights towards ``prior`` (so
    that little validation data gives the case-informed likelihood ratio); columns
    where ``fixed`` is true keep the prior's weight. The returned weights apply to raw
    features. Returns ``(weights, feature_sd)``.
    """
    if not groups:
        raise ValueError("rare_model.hybrid: no validation patient to fit the weights on")
    stacked = np.concatenate(groups)
    sd = stacked.std(axis=0)
    sd[sd == 0] = 1.0
    x, mask = _padded([g / sd for g in groups])
    anchor = prior * sd
    l2 = prior_strength / len(groups)

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        logits = np.where(mask, x @ w, -np.inf)
        lse = logsumexp(logits, axis=1)
        p = np.exp(logits - lse[:, None])
        gap = w - anchor
        nll = float(np.sum(lse - logits[:, 0])) / len(groups) + l2 * float(gap @ gap)
        expected = np.einsum("nk,nkf->nf", p, x)
        grad = (expected - x[:, 0, :]).sum(axis=0) / len(groups) + 2 * l2 * gap
        return nll, grad

    start = anchor.copy()
    pinned = np.zeros(len(prior), dtype=bool) if fixed is None else np.asarray(fixed, bool)
    bounds = [(a, a) if pin else (None, None) for a, pin in zip(anchor, pinned, strict=True)]
    result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds)
    return result.x / sd, sd


def fit_reranker(
    groups: list[np.ndarray], weights: np.ndarray, params: HybridParams, seed: int = 0
) -> xgb.Booster | None:
    """Gradient-boosted trees that re-rank the candidates on top of the linear logits.

    The weights combine the features additively; the trees learn what a sum cannot (a
    tie on the one-sided score broken by how exactly the terms are named, a few-term
    patient read differently from a many-term one). They boost from ``w · x`` (the base
    margin) with XGBoost's pairwise ranking loss on the same shortlists (truth first)
    the weights were fitted on, so a tree only moves a candidate where the validation
    patients say the linear order is wrong. None when ``params.rerank_rounds`` is 0.
    """
    if params.rerank_rounds == 0 or not groups:
        return None
    stacked = np.concatenate(groups)
    columns = [FEATURES.index(name) for name in RERANK_FEATURES]
    rows = stacked[:, columns].astype(np.float32)
    label = np.concatenate([np.r_[1.0, np.zeros(len(g) - 1)] for g in groups])
    data = xgb.DMatrix(rows, label=label, base_margin=stacked @ weights)
    data.set_group([len(g) for g in groups])
    config: dict[str, Any] = {
        "objective": "rank:pairwise",
        "eta": params.rerank_learning_rate,
        "max_depth": params.rerank_depth,
        "min_child_weight": params.rerank_min_child_weight,
        "subsample": params.rerank_subsample,
        "colsample_bytree": params.rerank_colsample,
        "lambda": params.rerank_l2,
        "base_score": 0.0,
        "nthread": 1,
        "seed": seed,
    }
    return xgb.train(config, data, num_boost_round=params.rerank_rounds)


def reranked(
    logits: np.ndarray, columns: list[np.ndarray], booster: xgb.Booster | None, top: int
) -> np.ndarray:
    """``logits`` (patients × candidates) with each patient's ``top`` strongest
    candidates moved by the trees' margin; ``columns`` are the feature columns of
    :data:`RERANK_FEATURES`, in order (patients × candidates each)."""
    if booster is None:
        return logits
    out = logits.copy()
    k = min(top, logits.shape[1])
    for i in range(len(logits)):
        rows = np.argpartition(-logits[i], k - 1)[:k]
        x = np.column_stack([c[i, rows] for c in columns]).astype(np.float32)
        out[i, rows] += booster.inplace_predict(x, predict_type="margin")
    return out


def fit_temperature(logits: list[np.ndarray], truths: list[int]) -> float:
    """Temperature T minimising the NLL of the truths under softmax(logits / T)."""
    if not logits:
        return 1.0
    # float64: float32 logits make the NLL too coarse for the optimiser's steps, which
    # then stops at T = 1 with a zero gradient
    logits = [np.asarray(z, dtype=np.float64) for z in logits]

    def nll(log_t: np.ndarray) -> float:
        t = float(np.exp(log_t[0]))
        return float(
            np.mean([logsumexp(z / t) - z[i] / t for z, i in zip(logits, truths, strict=True)])
        )

    result = minimize(nll, np.zeros(1), method="L-BFGS-B", bounds=[(-4.0, 4.0)])
    return float(np.exp(result.x[0]))


def softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities over all candidates."""
    z = logits / temperature
    return np.exp(z - logsumexp(z))
