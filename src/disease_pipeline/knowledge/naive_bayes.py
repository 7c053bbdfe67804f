"""Naive Bayes over the catalogue with exact term matches: the plain baseline.

``P(q | d)`` is the catalogue frequency when ``d`` lists ``q`` itself, else ``epsilon``;
a finding reported absent contributes ``1 − f`` (``1`` when unlisted). Priors are those
of the knowledge scorer, so the two differ only in how terms are matched.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from disease_pipeline.knowledge.common_scorer import CommonKnowledgeScorer


def naive_bayes_log_posterior(
    scorer: CommonKnowledgeScorer,
    present: list[list[str]],
    absent: list[list[str]],
    age: np.ndarray,
    sex: np.ndarray,
    *,
    epsilon: float = 0.01,
) -> np.ndarray:
    """``(n, n_classes)`` normalised log posterior of exact-match naive Bayes."""
    score = scorer.log_prior(np.asarray(age, float), np.asarray(sex, dtype=object))
    n_classes = len(scorer.classes)
    for i, (terms, negatives) in enumerate(zip(present, absent, strict=True)):
        for term in set(terms):
            f = np.array([scorer.direct.get((d, term), 0.0) for d in range(n_classes)])
            score[i] += np.log(np.where(f > 0, f, epsilon))
        for term in set(negatives):
            f = np.array([scorer.direct.get((d, term), 0.0) for d in range(n_classes)])
            score[i] += np.log(np.maximum(1.0 - f, epsilon))
    return score - logsumexp(score, axis=1, keepdims=True)
