"""The knowledge blend: weights per modality pattern fitted by log loss, floors respected."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import softmax

from disease_pipeline.predictor.feature_knowledge import knowledge_column, modality_pattern
from disease_pipeline.predictor.knowledge_blend import fit_knowledge_blend

CLASSES = ["A", "B", "C"]
DEFAULTS = {
    "symptoms_only": (1.0, 0.0),
    "vitals": (0.5, 0.5),
    "labs": (0.5, 0.5),
    "all": (0.0, 1.0),
}


def _data(n: int, seed: int):
    """Knowledge that knows the label on symptoms-only rows; a model that knows it on
    rows with labs."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    labs = rng.random(n) < 0.5
    informative = np.eye(3)[y] * 3.0
    noise = rng.normal(0, 1, (n, 3))
    K = np.where(labs[:, None], noise, informative + noise)
    logits = np.where(labs[:, None], informative + noise, rng.normal(0, 1, (n, 3)))
    X = pd.DataFrame(K, columns=[knowledge_column(c) for c in CLASSES])
    X["measured_vitals"] = 0.0
    X["measured_labs"] = labs.astype(float)
    return X, softmax(logits, axis=1), y


def test_patterns_come_from_the_modality_flags():
    X, _, _ = _data(20, 0)
    patterns = modality_pattern(X)
    assert set(patterns) <= {"symptoms_only", "labs"}
    assert (patterns == "labs").sum() == int(X["measured_labs"].sum())
    assert modality_pattern(pd.DataFrame({"x": [1.0]})).tolist() == ["all"]


def test_weights_follow_what_is_informative_per_pattern():
    X, proba, y = _data(600, 1)
    blend = fit_knowledge_blend(
        X,
        proba,
        y,
        CLASSES,
        grid=[0.0, 0.5, 1.0],
        min_rows=30,
        min_knowledge_share={},
        default_weights=DEFAULTS,
    )
    alpha, beta = blend.weights["symptoms_only"]
    assert alpha > beta
    alpha, beta = blend.weights["labs"]
    assert beta > alpha
    assert blend.weights["vitals"] == DEFAULTS["vitals"]  # no rows: default kept
    combined = blend.combine(X, proba)
    assert np.allclose(combined.sum(axis=1), 1.0)


def test_a_common_scale_calibrates_without_changing_the_ranking():
    X, proba, y = _data(600, 5)
    kwargs = dict(
        grid=[0.0, 0.5, 1.0],
        min_rows=30,
        min_knowledge_share={"labs": 0.5},
        default_weights=DEFAULTS,
    )
    plain = fit_knowledge_blend(X, proba, y, CLASSES, **kwargs)
    scaled = fit_knowledge_blend(X, proba, y, CLASSES, scales=(0.5, 1.0, 2.0, 4.0), **kwargs)
    for pattern in ("symptoms_only", "labs"):
        (a0, b0), (a1, b1) = plain.weights[pattern], scaled.weights[pattern]
        assert np.isclose(a0 * b1, a1 * b0)  # same knowledge share
        assert scaled.report[pattern]["log_loss"] <= plain.report[pattern]["log_loss"] + 1e-12
    assert np.array_equal(
        plain.combine(X, proba).argmax(axis=1), scaled.combine(X, proba).argmax(axis=1)
    )


def test_the_knowledge_floor_is_respected():
    X, proba, y = _data(600, 2)
    blend = fit_knowledge_blend(
        X,
        proba,
        y,
        CLASSES,
        grid=[0.0, 0.5, 1.0],
        min_rows=30,
        min_knowledge_share={"labs": 0.5},
        default_weights=DEFAULTS,
    )
    alpha, beta = blend.weights["labs"]
    assert alpha / (alpha + beta) >= 0.5


def test_classes_the_model_never_saw_come_from_the_knowledge():
    X, proba, y = _data(300, 4)
    X["knowledge_D"] = X["knowledge_A"] + 1.0
    blend = fit_knowledge_blend(
        X,
        proba,
        y,
        CLASSES,
        extra=["D", "A"],
        grid=[0.0, 0.5, 1.0],
        min_rows=30,
        min_knowledge_share={},
        default_weights=DEFAULTS,
    )
    assert blend.classes == [*CLASSES, "D"]
    combined = blend.combine(X, proba)
    assert combined.shape == (300, 4) and np.allclose(combined.sum(axis=1), 1.0)
    symptoms_only = X["measured_labs"].to_numpy() == 0
    # where the knowledge favours A, the unseen D (scored above A) gets a share
    favoured = symptoms_only & (X["knowledge_A"].to_numpy() > X["knowledge_B"].to_numpy() + 2)
    assert (combined[favoured, 3] > 0.1).all()


def test_without_knowledge_columns_the_model_is_unchanged():
    _, proba, y = _data(50, 3)
    X = pd.DataFrame({"other": np.zeros(50)})
    blend = fit_knowledge_blend(
        X,
        proba,
        y,
        CLASSES,
        grid=[0.0, 1.0],
        min_rows=1,
        min_knowledge_share={},
        default_weights=DEFAULTS,
    )
    assert np.array_equal(blend.combine(X, proba), proba)
    assert blend.classes == CLASSES


def test_protected_classes_never_fall_below_their_knowledge_posterior():
    """A must-not-miss disease keeps at least its knowledge posterior on every pattern,
    however confidently the learned model rules it out; the rest keep their order."""
    X, proba, y = _data(400, 6)
    kwargs = dict(
        grid=[0.0, 0.5, 1.0], min_rows=30, min_knowledge_share={}, default_weights=DEFAULTS
    )
    # the model is sure it is never C
    proba = proba.copy()
    proba[:, 2] = 1e-9
    proba /= proba.sum(axis=1, keepdims=True)
    plain = fit_knowledge_blend(X, proba, y, CLASSES, **kwargs)
    safe = fit_knowledge_blend(
        X,
        proba,
        y,
        CLASSES,
        protected=["C", "Z"],
        protected_patterns=["symptoms_only", "labs"],
        **kwargs,
    )
    assert safe.protected == ["C"]  # classes of the blend only
    assert safe.weights == plain.weights
    before, after = plain.combine(X, proba), safe.combine(X, proba)
    knowledge = softmax(X[[knowledge_column(c) for c in CLASSES]].to_numpy(), axis=1)
    assert np.allclose(after.sum(axis=1), 1.0)
    assert (after[:, 2] >= knowledge[:, 2] - 1e-12).all()
    raised = knowledge[:, 2] > before[:, 2] + 0.05
    assert raised.sum() > 20 and (after[raised, 2] > before[raised, 2] + 0.02).all()
    # A and B keep their relative order
    assert np.array_equal(after[:, 0] > after[:, 1], before[:, 0] > before[:, 1])
    # only on the protected patterns
    labs_only = fit_knowledge_blend(
        X, proba, y, CLASSES, protected=["C"], protected_patterns=["labs"], **kwargs
    ).combine(X, proba)
    on_labs = X["measured_labs"].to_numpy() > 0.5
    assert np.allclose(labs_only[~on_labs], before[~on_labs])
    assert np.allclose(labs_only[on_labs], after[on_labs])
    # a blend pickled before protection existed combines as before
    del safe.__dict__["protected"]
    assert np.allclose(safe.combine(X, proba), before)


def test_the_edge_runtime_blends_and_protects_as_the_predictor():
    """``edge.models.blend`` on the exported config is ``KnowledgeBlend.combine``."""
    from disease_pipeline.edge.models import blend as edge_blend
    from disease_pipeline.edge_export.models import blend_config

    X, proba, y = _data(300, 8)
    X["knowledge_D"] = X["knowledge_A"] - 1.0
    proba = proba.copy()
    proba[:, 2] = 1e-9
    proba /= proba.sum(axis=1, keepdims=True)
    fitted = fit_knowledge_blend(
        X,
        proba,
        y,
        CLASSES,
        extra=["D"],
        grid=[0.0, 0.5, 1.0],
        min_rows=30,
        min_knowledge_share={},
        default_weights=DEFAULTS,
        protected=["C", "D"],
        protected_patterns=["symptoms_only"],
    )
    names = list(X.columns)
    edge = edge_blend(blend_config(fitted), names, X.to_numpy(float), proba)
    np.testing.assert_allclose(edge, fitted.combine(X, proba), rtol=1e-9, atol=1e-12)
