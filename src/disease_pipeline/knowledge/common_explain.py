"""Why the knowledge scorer ranks a disease, and which test would change the ranking most.

* :func:`finding_contributions` — the reported findings (present or reported absent)
  that moved one candidate against the rest of the differential: the candidate's log
  likelihood ratio minus the differential-weighted mean of the others'.
* :func:`recommended_tests` — the unmeasured vital signs and labs ranked by expected
  information gain over the current differential, ``H(p) − E_v[H(p | v)]``, with the
  value's predictive distribution a mixture over the differential of the catalogue's
  per-disease Gaussians (Gauss–Hermite quadrature); each names the two candidates it
  separates best.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from disease_pipeline.knowledge.catalogue import load_lab_table
from disease_pipeline.knowledge.common_scorer import CommonKnowledgeScorer
from disease_pipeline.knowledge.hpo import load_ontology

#: Gauss–Hermite nodes per disease in the expected-information-gain integral
QUADRATURE_NODES = 5


@cache
def _item_names() -> dict[str, str]:
    return {str(r.loinc): str(r.name) for r in load_lab_table().itertuples()}


def finding_contributions(
    scorer: CommonKnowledgeScorer,
    present: list[str],
    absent: list[str],
    target: int,
    posterior: np.ndarray,
    *,
    top_n: int = 5,
) -> list[dict]:
    """The ``top_n`` reported findings with the largest effect on candidate ``target``.

    ``posterior`` (n_classes,) weighs the other candidates. Only findings the clinician
    reported are listed: "reported absent" only for findings sent with present = False.
    """
    onto = load_ontology()
    weights = np.asarray(posterior, dtype=float).copy()
    weights[target] = 0.0
    weights = weights / weights.sum() if weights.sum() > 0 else weights
    items = []
    for flag, terms in ((True, present), (False, absent)):
        for term in dict.fromkeys(scorer._resolve(terms)):
            row = scorer.term_log_ratio(term, present=flag)
            effect = float(row[target] - weights @ row)
            if abs(effect) < 1e-6:
                continue
            name = onto.names.get(term, term)
            items.append(
                {
                    "text": f"{name}: {'reported' if flag else 'reported absent'}",
                    "direction": "increases" if effect > 0 else "decreases",
                    "hpo_id": term,
                    "label": name,
                    "present": flag,
                    "log_likelihood_ratio": round(effect, 4),
                }
            )
    items.sort(key=lambda item: -abs(item["log_likelihood_ratio"]))
    return items[:top_n]


def _entropy(log_p: np.ndarray) -> np.ndarray:
    return -(np.exp(log_p) * log_p).sum(axis=-1)


def _log_normalise(scores: np.ndarray) -> np.ndarray:
    top = scores.max(axis=-1, keepdims=True)
    return scores - top - np.log(np.exp(scores - top).sum(axis=-1, keepdims=True))


def recommended_tests(
    scorer: CommonKnowledgeScorer,
    probabilities: np.ndarray,
    measured: set[str],
    *,
    top_n: int = 3,
    min_probability: float = 1e-3,
    max_candidates: int = 15,
) -> list[dict]:
    """The ``top_n`` unmeasured items (LOINC) by expected information gain (nats).

    ``probabilities`` (n_classes,) is the current differential over the scorer's classes;
    its ``max_candidates`` most probable diseases above ``min_probability`` are weighed.
    All items are integrated at once (items × quadrature values × candidates).
    """
    model = scorer.measurements
    p_all = np.asarray(probabilities, dtype=float)
    keep = np.argsort(-p_all, kind="stable")[:max_candidates]
    keep = keep[p_all[keep] >= min_probability]
    items = np.array([j for j, code in enumerate(model.loinc) if code not in measured], dtype=int)
    if len(keep) < 2 or not len(items):
        return []
    p = p_all[keep] / p_all[keep].sum()
    k = len(keep)
    nodes, node_weights = np.polynomial.hermite.hermgauss(QUADRATURE_NODES)
    node_weights = node_weights / np.sqrt(np.pi)
    mean, sd = model.mean[np.ix_(items, keep)], model.sd[np.ix_(items, keep)]  # (J, k)
    values = (mean[:, :, None] + np.sqrt(2.0) * sd[:, :, None] * nodes).reshape(len(items), -1)
    z = (values[:, :, None] - mean[:, None, :]) / sd[:, None, :]  # (J, k * nodes, k)
    main = -0.5 * z**2 - np.log(sd[:, None, :]) + np.log(1.0 - model.outlier_share)
    wide_sd = (model.outlier_width * model.healthy_sd[items])[:, None]
    wide = (
        -0.5 * ((values - model.healthy_mean[items][:, None]) / wide_sd) ** 2
        - np.log(wide_sd)
        + np.log(model.outlier_share)
    )
    loglik = np.logaddexp(main, wide[:, :, None])
    log_post = _log_normalise(np.log(p)[None, None, :] + loglik)
    weight = np.repeat(p, len(nodes)) * np.tile(node_weights, k)  # (k * nodes,)
    gain = float(_entropy(np.log(p))) - _entropy(log_post) @ weight  # (J,)
    separation = np.abs(mean[:, :, None] - mean[:, None, :]) / np.sqrt(
        sd[:, :, None] ** 2 + sd[:, None, :] ** 2
    )
    pair = (separation * p[None, :, None] * p[None, None, :]).reshape(len(items), -1)
    names = _item_names()
    results = []
    for position in np.argsort(-gain, kind="stable")[:top_n]:
        j = int(items[position])
        if gain[position] <= 1e-9:
            break
        a, b = divmod(int(np.argmax(pair[position])), k)
        first, second = scorer.classes[keep[a]], scorer.classes[keep[b]]
        label = names.get(model.loinc[j], model.labels[j])
        results.append(
            {
                "loinc": model.loinc[j],
                "name": label,
                "kind": model.kinds[j],
                "expected_information_gain": round(float(gain[position]), 4),
                "separates": [first, second],
                "text": (
                    f"{label} would best separate {scorer.names[first]} from {scorer.names[second]}"
                ),
            }
        )
    return results
