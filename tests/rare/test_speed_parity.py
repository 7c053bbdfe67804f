"""The rare model's faster paths (issue 18) give exactly the numbers of the plain code
they replaced."""

from __future__ import annotations

import pickle

import numpy as np

from disease_pipeline.rare.components import ROBUST_FLOOR
from disease_pipeline.rare.model import patient_input
from disease_pipeline.rare.scorer import _same, _summed, _summed_each


def test_the_rare_lookup_equals_the_candidate_table(fitted):
    model, _ = fitted
    table = model.candidates.table
    rare = table["category"] == "RARE"
    assert model.disease_ids == table.loc[rare, "disease_id"].tolist()
    assert np.array_equal(model.rare_columns, np.flatnonzero(rare.to_numpy()))
    lookup = model._rare_lookup()
    names = table["name"].astype(str).to_numpy()[model.rare_columns]
    assert np.array_equal(lookup.names, names)
    assert np.array_equal(lookup.id_array, np.asarray(model.disease_ids, dtype=str))
    model.disease_ids.append("not kept")  # callers get their own list
    assert "not kept" not in model.disease_ids
    assert "_rare" not in pickle.loads(pickle.dumps(model)).__dict__  # rebuilt, not pickled


def test_shared_term_lookups_equal_separate_sums(fitted, cases):
    model, _ = fitted
    table = model.components.case_knowledge.log_ratio_table
    floor = float(np.log(ROBUST_FLOOR))
    present = [patient_input(model.space, c).present for c in cases[:9]]
    batches = (present, present[:1], [present[0][:1].repeat(2)], [np.zeros(0, np.int64)] * 2)
    for batch in batches:
        plain, robust = _summed_each(
            batch, lambda t: table(t, excluded=False), (_same, lambda r: np.maximum(r, floor))
        )
        assert np.array_equal(plain, _summed(batch, lambda t: table(t, excluded=False)))
        assert np.array_equal(
            robust, _summed(batch, lambda t: np.maximum(table(t, excluded=False), floor))
        )
