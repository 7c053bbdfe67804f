"""Equivalent candidates (one disease in several databases) grouped into one place."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from disease_pipeline.rare import evaluation
from disease_pipeline.rare.equivalence import (
    EquivalenceGroups,
    equivalence_groups,
    normalise_name,
)
from disease_pipeline.rare.fit import RareModelParams
from tests.rare.ranking import assert_batch_is_single, case_tables


def _table(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "disease_id": [r[0] for r in rows],
            "name": [r[1] for r in rows],
            "database": [r[0].split(":")[0] for r in rows],
            "category": [r[2] for r in rows],
        }
    )


TABLE = _table(
    [
        ("OMIM:305400", "Aarskog-Scott syndrome", "RARE"),  # 0 primary of {0, 3}
        ("OMIM:100800", "Achondroplasia", "RARE"),  # 1 primary of {1, 2, 4}
        ("DECIPHER:1", "ACHONDROPLASIA", "RARE"),  # 2
        ("ORPHA:915", "Aarskog–Scott  syndrome", "RARE"),  # 3
        ("ORPHA:15", "Achondroplasia", "RARE"),  # 4
        ("OMIM:145500", "Hypertension, essential", "RARE"),  # 5 two OMIM: ambiguous
        ("OMIM:145501", "Hypertension, essential", "RARE"),  # 6
        ("ORPHA:1", "Hypertension essential", "RARE"),  # 7
        ("DECIPHER:74", "15q13.3 microdeletion syndrome", "RARE"),  # 8
        ("ORPHA:199318", "15q13.3 microdeletion syndrome", "RARE"),  # 9 primary (no OMIM)
        ("I10", "Achondroplasia", "COMMON"),  # 10 never grouped
    ]
)


def test_names_are_normalised_to_lower_case_ascii_words():
    assert normalise_name("Aarskog–Scott  syndrome") == "aarskog scott syndrome"
    assert normalise_name("Hypertension, essential") == "hypertension essential"
    assert normalise_name("Sjögren-Larsson syndrome") == "sjogren larsson syndrome"
    assert normalise_name("15q13.3 microdeletion") == "15q13 3 microdeletion"


def test_groups_share_a_name_with_at_most_one_omim_id_which_is_primary():
    groups = equivalence_groups(TABLE)
    assert groups.primary.tolist() == [0, 1, 1, 0, 1, 5, 6, 7, 9, 9, 10]
    assert groups.members.tolist() == [2, 3, 4, 8]
    assert groups.n_groups == 3
    assert groups.equivalents(1) == [2, 4]
    assert groups.equivalents(4) == [1, 2]
    assert groups.equivalents(5) == []
    none = equivalence_groups(TABLE, "none")
    assert none.primary.tolist() == list(range(len(TABLE)))
    with pytest.raises(ValueError, match="equivalence"):
        equivalence_groups(TABLE, "jaccard")


def test_a_group_takes_one_place_with_its_best_score():
    groups = equivalence_groups(TABLE)
    scores = np.arange(22, dtype=float).reshape(2, 11)
    scores[1] = scores[1][::-1]
    original = scores.copy()
    out = groups.apply(scores)
    assert np.array_equal(scores, original)  # a new array
    assert out[0, 0] == 3 and out[0, 1] == 4 and out[0, 9] == 9
    assert out[1, 0] == scores[1, 0] and out[1, 1] == scores[1, 1] and out[1, 9] == scores[1, 8]
    assert np.isneginf(out[:, [2, 3, 4, 8]]).all()
    untouched = [5, 6, 7, 10]
    assert np.array_equal(out[:, untouched], scores[:, untouched])
    # on a subset of the columns (e.g. the RARE candidates), the same
    rare = np.arange(10)
    assert np.array_equal(groups.apply(scores[:, rare], rare), out[:, rare])
    assert np.array_equal(EquivalenceGroups(np.arange(3)).apply(scores[:, :3]), scores[:, :3])


@pytest.fixture(scope="module")
def grouped_model(fitted):
    """The fitted test model with name groups (conf/test, like conf/base, groups none)."""
    model, _ = fitted
    return replace(model, equivalence=equivalence_groups(model.candidates.table, "name"))


def test_the_fit_groups_as_the_parameter_says(test_params, fitted):
    _, report = fitted
    assert report["equivalence_groups"]["match"] == test_params.equivalence
    with pytest.raises(ValueError, match="equivalence"):
        RareModelParams.from_dict({"equivalence": "jaccard"})


def test_the_model_ranks_a_group_once_under_its_omim_id(grouped_model, cases):
    model = grouped_model
    groups = model.equivalence
    assert groups.n_groups > 100
    table = model.candidates.table
    member = int(groups.members[0])
    primary = int(groups.primary[member])
    assert table["database"].iat[primary] == "OMIM"
    assert str(table["disease_id"].iat[member]) in model.equivalent_ids(primary)
    case = cases[0]
    ranked = model.rank_patient(case.present, case.excluded, top_k=len(model.candidates))
    listed = [r["disease_id"] for r in ranked]
    assert len(listed) == len(set(listed)) == len(model.candidates) - len(groups.members)
    shown = {i for r in ranked for i in r["equivalent_ids"]}
    assert not shown & set(listed)
    assert str(table["disease_id"].iat[member]) in shown
    # the group's score is its best member's; no single-candidate ranking is changed
    alone = replace(model, equivalence=None)
    raw = {
        r["disease_id"]: r["score"]
        for r in alone.rank_patient(case.present, case.excluded, top_k=len(model.candidates))
    }
    for r in ranked:
        together = [raw[r["disease_id"]], *(raw[i] for i in r["equivalent_ids"])]
        assert r["score"] == max(together)


def test_a_model_pickled_without_groups_ranks_every_candidate(grouped_model, cases):
    model = grouped_model
    state = pickle.loads(pickle.dumps(model))
    del state.__dict__["equivalence"]  # as a model pickled before the field existed
    clone = pickle.loads(pickle.dumps(state))
    case = cases[1]
    ranked = clone.rank_patient(case.present, case.excluded, top_k=5)
    assert all(r["equivalent_ids"] == [] for r in ranked)
    logits = np.zeros((1, len(clone.candidates)))
    assert clone.grouped(logits) is logits


def test_evaluation_ranks_the_truth_in_the_grouped_ranking(grouped_model, fitted, base, cases):
    """A group takes one place: no truth ranks lower than without groups, and the
    evaluation's hybrid rank is the truth's place in the ranking the model serves."""
    model = grouped_model
    plain = fitted[0]
    grouped = evaluation.score_cases(base, model, cases, None)["hybrid"]
    alone = evaluation.score_cases(base, plain, cases, None)["hybrid"]
    assert all(g <= a for g, a in zip(grouped, alone, strict=True))
    for case, rank in zip(cases[:10], grouped[:10], strict=True):
        if not np.isfinite(rank) or rank > 20:
            continue
        served = model.rank_patient(case.present, case.excluded, top_k=20)
        ids = [r["disease_id"] for r in served]
        assert ids.index(case.disease_id) + 1 == pytest.approx(rank, abs=0.5)


def test_served_batch_ranking_is_grouped_like_the_single_patient_one(grouped_model, cases):
    model = grouped_model
    sample = cases[:6]
    tables, features = case_tables(model, sample)
    batch = model.rank(tables, features)
    assert_batch_is_single(model, batch, sample)
    members = set(model.candidates.table["disease_id"].iloc[model.equivalence.members])
    for row in batch:
        assert not members & {code for code, _, _ in row}
    # a grouped member's probability is its group's
    member = int(model.equivalence.members[0])
    ids = [
        str(model.candidates.table["disease_id"].iat[r])
        for r in (member, model.representative(member))
    ]
    values = model.probabilities_of(tables, features, ids)
    assert np.allclose(values[:, 0], values[:, 1])
