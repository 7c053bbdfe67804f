"""The numpy walk of the tree models for small calls (``predictor.small_trees``, issue 15)
gives XGBoost's probabilities bit for bit, and so the same predictions."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from disease_pipeline.predictor import small_trees
from disease_pipeline.predictor.screening import batch_tables
from disease_pipeline.predictor.small_trees import CACHE, SmallTrees, build, prepare_small_inputs

MODELS = ("common_model", "gate_model", "severity_model")


def _copies(predictor):
    """A plain copy and a prepared copy (the session fixture itself is left alone)."""
    plain = pickle.loads(pickle.dumps(predictor))
    prepared = pickle.loads(pickle.dumps(predictor))
    kept = prepare_small_inputs(prepared)
    return plain, prepared, kept


def _sampled_calls(n: int, seed: int) -> list[np.ndarray]:
    """Row positions of calls of 1, 2, 4, 8 and 64 rows."""
    rng = np.random.default_rng(seed)
    calls = [rng.choice(n, 1) for _ in range(40)]
    calls += [rng.choice(n, size, replace=False) for size in (2, 2, 4, 4, 8, 64) if size <= n]
    return calls


@pytest.mark.parametrize("which", ["predictor", "knowledge_predictor"])
def test_walk_gives_xgboost_probabilities_bit_for_bit(which, request, predictor_tables) -> None:
    plain, prepared, kept = _copies(request.getfixturevalue(which))
    assert kept["common_model"] == 1 and kept["gate_model"] == 1
    assert kept["severity_model"] >= 1
    X = plain.feature_builder.transform(predictor_tables)
    walked = 0
    for rows in _sampled_calls(len(X), seed=15):
        block = X.iloc[rows]
        for name in MODELS:
            expected = getattr(plain, name).predict_proba(block)
            got = getattr(prepared, name).predict_proba(block)
            assert got.dtype == expected.dtype and np.array_equal(got, expected), (name, rows)
        for name in ("common_model", "gate_model"):  # the XGBoost models' own answers
            model = getattr(plain, name)
            expected = model.model.predict_proba(model.inputs(block))
            got = small_trees.proba(getattr(prepared, name), 0, model.model, model.inputs(block))
            assert np.array_equal(got, expected)
            # the same memory order: a row sum rounds differently in C and Fortran order
            layout = ("C_CONTIGUOUS", "F_CONTIGUOUS")
            assert [got.flags[f] for f in layout] == [expected.flags[f] for f in layout], name
        walked += prepared.common_model.__dict__[CACHE][0].fits(len(rows))
    assert walked >= 40  # the one-row calls went through the walk


def _json(outputs: list[dict]) -> str:
    return json.dumps(outputs, default=float, sort_keys=True)


@pytest.mark.parametrize("which", ["predictor", "knowledge_predictor"])
def test_predictions_unchanged_alone_and_in_small_batches(which, request, predictor_tables) -> None:
    plain, prepared, _ = _copies(request.getfixturevalue(which))
    ids = predictor_tables["encounters"]["encounter_id"].astype(str).tolist()
    rng = np.random.default_rng(44)
    calls = [[ids[i]] for i in rng.choice(len(ids), 25, replace=False)]
    calls += [list(rng.choice(ids, size, replace=False)) for size in (3, 4, 16)]
    for call in calls:
        tables = batch_tables(predictor_tables, call)
        for top_k, explain in ((10, True), (5, False)):
            expected = plain.predict_tables(tables, top_k=top_k, explain=explain)
            got = prepared.predict_tables(tables, top_k=top_k, explain=explain)
            assert _json(got) == _json(expected)


def test_walks_are_not_pickled(predictor) -> None:
    _, prepared, _ = _copies(predictor)
    assert CACHE in prepared.common_model.__dict__
    again = pickle.loads(pickle.dumps(prepared))
    for name in MODELS:
        assert CACHE not in getattr(again, name).__dict__


def test_a_walk_that_differs_from_xgboost_is_not_kept(predictor, monkeypatch) -> None:
    model = predictor.gate_model.model
    n_features = len(predictor.gate_model.feature_names)
    assert build(model, n_features) is not None
    exact = SmallTrees.predict_proba

    def one_bit_off(self, values):
        out = exact(self, values)
        return np.nextafter(out, np.float32(2.0)).astype(np.float32)

    monkeypatch.setattr(SmallTrees, "predict_proba", one_bit_off)
    assert build(model, n_features) is None


def test_only_small_calls_take_the_walk(predictor, predictor_tables, monkeypatch) -> None:
    _, prepared, _ = _copies(predictor)
    walk = prepared.common_model.__dict__[CACHE][0]
    largest = small_trees.SMALL_ROWS + small_trees.SMALL_TREE_ROWS // walk.n_trees
    assert walk.fits(1) and walk.fits(largest) and not walk.fits(largest + 1)
    X = prepared.feature_builder.transform(predictor_tables)
    assert len(X) > largest

    def walked(self, values):
        raise AssertionError(f"walk of {len(values)} rows")

    monkeypatch.setattr(SmallTrees, "predict_proba", walked)
    prepared.common_model.predict_proba(X.iloc[: largest + 1])  # XGBoost
    with pytest.raises(AssertionError, match="walk of 1 rows"):
        prepared.common_model.predict_proba(X.iloc[:1])
