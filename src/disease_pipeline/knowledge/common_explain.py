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
from scipy.special import logsumexp

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


def recommended_tests(
    scorer: CommonKnowledgeScorer,
    probabilities: np.ndarray,
    measured: set[str],
    *,
    top_n: int = 3,
    min_probability: float = 1e-3,
) -> list[dict]:
    """The ``top_n`` unmeasured items (LOINC) by expected information gain (nats).

    ``probabilities`` (n_classes,) is the current differential over the scorer's classes.
    """
    model = scorer.measurements
    p = np.asarray(probabilities, dtype=float)
    keep = np.flatnonzero(p >= min_probability)
    if len(keep) < 2:
        return []
    p = p[keep] / p[keep].sum()
    log_prior = np.log(p)
    nodes, node_weights = np.polynomial.hermite.hermgauss(QUADRATURE_NODES)
    node_weights = node_weights / np.sqrt(np.pi)
    prior_entropy = float(_entropy(log_prior))
    names = _item_names()
    results = []
    for j, code in enumerate(model.loinc):
        if code in measured:
            continue
        mean, sd = model.mean[j, keep], model.sd[j, keep]
        if np.allclose(mean, mean[0]) and np.allclose(sd, sd[0]):
            continue
        values = (mean[:, None] + np.sqrt(2.0) * sd[:, None] * nodes[None, :]).ravel()
        loglik = model.log_likelihood(j, values)[:, keep]  # (k * nodes, k)
        log_post = log_prior[None, :] + loglik
        log_post -= logsumexp(log_post, axis=1, keepdims=True)
        expected = float(
            (np.repeat(p, len(nodes)) * np.tile(node_weights, len(p))) @ _entropy(log_post)
        )
        gain = prior_entropy - expected
        separation = np.abs(mean[:, None] - mean[None, :]) / np.sqrt(
            sd[:, None] ** 2 + sd[None, :] ** 2
        )
        pair_score = separation * p[:, None] * p[None, :]
        a, b = np.unravel_index(int(np.argmax(pair_score)), pair_score.shape)
        first, second = scorer.classes[keep[a]], scorer.classes[keep[b]]
        label = names.get(code, model.labels[j])
        results.append(
            {
                "loinc": code,
                "name": label,
                "kind": model.kinds[j],
                "expected_information_gain": round(gain, 4),
                "separates": [first, second],
                "text": (
                    f"{label} would best separate {scorer.names[first]} from {scorer.names[second]}"
                ),
            }
        )
    results.sort(key=lambda r: -r["expected_information_gain"])
    return results[:top_n]
