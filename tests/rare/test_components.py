"""The hybrid's feature columns: one batch path equal to the per-patient one, and the
case features that let the weights tell known diseases from unseen ones."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from disease_pipeline.rare.cases import PUBLISHED
from disease_pipeline.rare.components import Components
from disease_pipeline.rare.fit import _knowledge
from disease_pipeline.rare.hybrid import FEATURES, RERANK_FEATURES, reranked
from disease_pipeline.rare.model import patient_input


def test_batch_logits_equal_per_patient_features_times_weights(fitted, cases):
    """The logits are ``w · x`` with the strongest candidates moved by the re-ranking
    trees, on the batch path as on the one-patient path."""
    model, _ = fitted
    components = model.components
    assert components.reranker is not None and components.rerank_top > 0
    patients = [patient_input(model.space, c) for c in cases[:7]]
    batch = components.logits_batch(patients, model.weights)
    for i, patient in enumerate(patients):
        x = components.features(patient)
        assert x.shape == (len(model.candidates), len(FEATURES))
        linear = x @ model.weights
        columns = [x[None, :, FEATURES.index(name)] for name in RERANK_FEATURES]
        expected = reranked(linear[None, :], columns, components.reranker, components.rerank_top)
        assert not np.allclose(expected[0], linear, atol=1e-3)  # the trees moved some
        assert np.allclose(batch[i], expected[0], atol=1e-5)
        assert np.allclose(model.hybrid_logits(patient), expected[0], atol=1e-5)


def test_case_features_mark_the_diseases_with_known_cases(fitted, cases):
    model, report = fitted
    components = model.components
    x = components.features(patient_input(model.space, cases[0]))
    column = {name: j for j, name in enumerate(FEATURES)}
    known = {model.candidates.index[c.disease_id] for c in cases}
    has_cases = np.flatnonzero(x[:, column["published_cases"]])
    assert set(has_cases.tolist()) == known  # every case of the fixture is published
    for name in ("unpublished_cases", "encoder_if_unpublished", "resnik_unpublished"):
        assert not x[:, column[name]].any()
    # case-only features are zero for every candidate without a known case
    others = np.setdiff1d(np.arange(len(model.candidates)), has_cases)
    assert not x[others, column["encoder_if_published"]].any()
    assert not x[others, column["resnik_published"]].any()
    truth = model.candidates.index[cases[0].disease_id]
    assert x[truth, column["resnik_published"]] == pytest.approx(
        x[:, column["resnik_published"]].max()
    )  # its own case matches every term exactly
    table = model.candidates.table
    not_omim = (table["category"] == "RARE") & (table["database"] != "OMIM")
    assert np.array_equal(x[:, column["not_omim"]] > 0, not_omim.to_numpy())
    assert set(report["weights"]) == set(FEATURES)


def test_published_and_unpublished_known_cases_have_disjoint_case_features(
    base, cases, test_params
):
    """Candidates known from published (registry) cases have the ``*_published`` case
    features, those known from simulated encounters alone the ``*_unpublished`` ones:
    each family is zero outside its candidates, so each weight speaks for one kind of
    known case."""
    simulated = {c.disease_id for c in cases[::2]} - {c.disease_id for c in cases[1::2]}
    assert simulated  # some diseases are known from simulated cases only
    mixed = [replace(c, source="simulated") if c.disease_id in simulated else c for c in cases]
    candidates, knowledge, _ = _knowledge(base, mixed, test_params)
    components = Components(
        base.space, candidates, knowledge, mixed,
        lr_params=test_params.knowledge,
        pseudocount=test_params.annotation_pseudocount,
        encoder=None,
    )  # fmt: skip
    x = components.features(patient_input(base.space, cases[0]))
    column = {name: j for j, name in enumerate(FEATURES)}
    published = {candidates.index[c.disease_id] for c in mixed if c.source == PUBLISHED}
    unpublished = {candidates.index[d] for d in simulated}
    for family, rows in (("published", published), ("unpublished", unpublished)):
        assert set(np.flatnonzero(x[:, column[f"{family}_cases"]]).tolist()) == rows
        resnik = x[:, column[f"resnik_{family}"]]
        assert resnik[sorted(rows)].any()
        for name in (f"resnik_{family}", f"encoder_if_{family}"):
            assert not np.delete(x[:, column[name]], sorted(rows)).any()
