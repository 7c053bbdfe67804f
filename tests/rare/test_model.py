"""The fitted hybrid: ranking, calibrated probabilities, explanations, bad input, the
predictor protocol and few-shot recognition of a disease known only from cases."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from disease_pipeline.rare.fit import fit_rare_model
from disease_pipeline.rare.hybrid import (
    CASE_FEATURES,
    FEATURES,
    PRIOR_WEIGHTS,
    PUBLISHED_CASE_FEATURES,
)
from disease_pipeline.rare.model import NO_TERMS_REASON, patient_input, top_k_stable
from disease_pipeline.rare.terms import most_specific
from tests.rare.ranking import assert_batch_is_single, case_tables


def test_ranking_is_ordered_with_calibrated_probabilities(fitted, cases):
    model, report = fitted
    case = cases[0]
    ranked = model.rank_patient(case.present, case.excluded, top_k=10)
    assert len(ranked) == 10
    assert [r["probability"] for r in ranked] == sorted(
        (r["probability"] for r in ranked), reverse=True
    )
    assert model.probabilities(patient_input(model.space, case)).sum() == pytest.approx(1.0)
    assert report["temperature"] > 0
    assert {"disease_id", "name", "category", "score", "probability", "explanation"} <= set(
        ranked[0]
    )


def test_explanation_matches_patient_terms_and_lists_evidence_against(fitted, base):
    model, _ = fitted
    annotations = base.annotations
    marfan = annotations[(annotations["disease_id"] == "OMIM:154700") & ~annotations["excluded"]]
    marfan = marfan[marfan["hpo_id"].isin(model.space.index)].sort_values("frequency")
    present = marfan["hpo_id"].head(4).tolist()
    frequent = marfan.dropna(subset=["frequency"])["hpo_id"].iloc[-1]
    report = model.rank_patient_report(present, [frequent], top_k=50)
    hit = next(r for r in report["candidates"] if r["disease_id"] == "OMIM:154700")
    explanation = hit["explanation"]
    matched = {m["hpo_id"] for m in explanation["matched"]}
    assert matched and matched <= set(present)
    assert all("annotated_frequency" in m for m in explanation["matched"])
    assert frequent in {a["hpo_id"] for a in explanation["against"]}
    assert not {e["hpo_id"] for e in explanation["expected_absent"]} & set(present)


def test_explanation_never_reports_an_imputed_frequency(fitted, base):
    model, _ = fitted
    annotations = base.annotations[base.annotations["disease_id"] == "OMIM:154700"]
    unknown = annotations[annotations["frequency"].isna() & ~annotations["excluded"]]
    present = annotations.loc[~annotations["excluded"], "hpo_id"]
    term = next(  # an annotation without frequency and without a more specific one
        t
        for t in unknown["hpo_id"]
        if t in model.space.index
        and not any(u != t and t in base.ontology.ancestors(u) for u in present)
    )
    report = model.rank_patient_report([term], top_k=200)
    hit = next(r for r in report["candidates"] if r["disease_id"] == "OMIM:154700")
    matched = {m["hpo_id"]: m for m in hit["explanation"]["matched"]}
    assert matched[term]["annotation"] == term
    assert matched[term]["annotated_frequency"] is None  # imputed as 1.0 for scoring only


def test_no_usable_term_gives_an_empty_ranking_with_a_reason(fitted):
    model, _ = fitted
    report = model.rank_patient_report(["HP:9999999", "HP:0000006"], ["not-a-term"])
    assert report["candidates"] == [] and report["reason"] == NO_TERMS_REASON
    assert report["terms"]["unknown"] == ["HP:9999999", "not-a-term"]
    assert report["terms"]["not_phenotype"] == ["HP:0000006"]
    assert model.rank_patient([]) == []
    with pytest.raises(ValueError, match="top_k"):
        model.rank_patient(["HP:0001250"], top_k=0)


def test_a_disease_known_only_from_cases_is_recognised(fitted, cases, base):
    model, _ = fitted
    annotated = set(base.annotations["disease_id"])
    unannotated = [c for c in cases if c.disease_id not in annotated]
    assert unannotated, "the bundled sample has cases of diseases without annotations"
    found = 0
    for case in unannotated:
        ranked = model.rank_patient(case.present, case.excluded, top_k=10)
        found += case.disease_id in {r["disease_id"] for r in ranked}
    # the knowledge scorer alone can never rank them; the model saw them as support cases
    assert found >= len(unannotated) // 2


def test_predictor_protocol_from_tables_and_from_feature_columns(fitted, cases):
    model, _ = fitted
    case = cases[0]
    present = most_specific(model.space, case.present)
    symptoms = pd.DataFrame(
        {
            "encounter_id": ["e1"] * (len(present) + len(case.excluded)),
            "hpo_id": present + case.excluded,
            "present": [True] * len(present) + [False] * len(case.excluded),
        }
    )
    tables = {
        "symptoms": symptoms,
        "encounters": pd.DataFrame({"encounter_id": ["e1", "e2"]}),
    }
    features = pd.DataFrame(index=pd.Index(["e1", "e2"], name="encounter_id"))
    ranked = model.rank(tables, features)
    assert len(ranked) == 2 and ranked[1] == []  # e2 has no symptom
    assert len(ranked[0]) == model.serving_top_k
    rare_ids = set(model.disease_ids)
    assert all(code in rare_ids for code, _, _ in ranked[0])
    assert sum(score for _, _, score in ranked[0]) <= 1.0 + 1e-9
    # bare feature rows: present terms propagated to ancestors (hpo_<id>), excluded
    # terms as hpo_not_<id>; the most specific present terms give the same ranking
    space = model.space
    closure = space.propagate(space.indices(present))
    columns = {f"hpo_{space.ids[i].replace(':', '_')}": [1.0] for i in closure}
    columns |= {f"hpo_not_{t.replace(':', '_')}": [1.0] for t in case.excluded}
    off = next(t for t in space.ids if space.index[t] not in set(closure.tolist()))
    columns[f"hpo_{off.replace(':', '_')}"] = [0.0]  # a column that is off
    bare = model.rank(None, pd.DataFrame(columns, index=pd.Index(["e1"])))
    assert [c for c, _, _ in bare[0]] == [c for c, _, _ in ranked[0]]


def test_model_survives_pickling(fitted, cases):
    model, _ = fitted
    clone = pickle.loads(pickle.dumps(model))
    case = cases[3]
    assert np.allclose(
        clone.hybrid_logits(patient_input(clone.space, case)),
        model.hybrid_logits(patient_input(model.space, case)),
    )


def test_batch_ranking_equals_one_patient_at_a_time(fitted, cases):
    """``rank`` scores blocks of patients with one sparse product; the result must be
    the per-patient ranking restricted to RARE candidates, probabilities included."""
    model, _ = fitted
    sample = cases[:12]
    tables, features = case_tables(model, sample)
    assert_batch_is_single(model, model.rank(tables, features), sample)


def test_probabilities_of_named_diseases_are_not_truncated(fitted, cases):
    """Evaluation scores each rare disease for every patient (per-disease AUROC): the
    probability must be the full RARE ranking's, also for diseases ranked far down."""
    model, _ = fitted
    case = cases[0]
    present = most_specific(model.space, case.present)
    tables = {
        "symptoms": pd.DataFrame(
            {"encounter_id": ["e1"] * len(present), "hpo_id": present, "present": True}
        ),
        "encounters": pd.DataFrame({"encounter_id": ["e1", "e2"]}),
    }
    features = pd.DataFrame(index=pd.Index(["e1", "e2"]))
    everything = model.rank_patient_report(
        present, top_k=len(model.disease_ids), category="RARE", explain=False
    )["candidates"]
    chosen = [everything[0], everything[len(everything) // 2], everything[-1]]
    ids = [c["disease_id"] for c in chosen] + ["OMIM:000000"]
    values = model.probabilities_of(tables, features, ids)
    assert values.shape == (2, 4)
    assert np.allclose(values[0, :3], [c["probability"] for c in chosen])
    assert values[0, 3] == 0 and (values[1] == 0).all()  # unknown id; no symptom


def test_top_k_stable_equals_a_stable_descending_sort_even_with_ties():
    """Candidates sharing no term with a patient tie; which of them fill the last places
    must not depend on the selection algorithm (the single-patient path sorts stably)."""
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 6, size=(40, 300)).astype(float)  # many ties everywhere
    scores[:5] = rng.normal(size=(5, 300))  # and a few rows without ties
    for k in (1, 7, 20, 300):
        expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        assert np.array_equal(top_k_stable(scores, k), expected)
    assert top_k_stable(np.zeros((0, 10)), 3).shape == (0, 3)


def test_explain_candidates_gives_the_single_patient_explanations(fitted, cases):
    """The service explains each listed rare candidate (matched and missing phenotypes)
    through ``explain_candidates``; it must say what ``rank_patient_report`` says."""
    model, _ = fitted
    case = cases[2]
    present = most_specific(model.space, case.present)
    rows = [("e1", t, True) for t in present] + [("e1", t, False) for t in case.excluded]
    tables = {
        "symptoms": pd.DataFrame(rows, columns=["encounter_id", "hpo_id", "present"]),
        "encounters": pd.DataFrame({"encounter_id": ["e1", "e2"]}),
    }
    features = pd.DataFrame(index=pd.Index(["e1", "e2"]))
    single = model.rank_patient_report(present, case.excluded, top_k=4, category="RARE")
    codes = [c["disease_id"] for c in single["candidates"]]
    explained = model.explain_candidates(tables, features, [[*codes, "OMIM:000000"], codes[:1]])
    assert explained[0][:4] == [c["explanation"] for c in single["candidates"]]
    assert explained[0][4] is None  # a disease the model does not know
    assert explained[1] == [None]  # e2 has no usable phenotype term
    assert any(e["matched"] for e in explained[0][:4])
    matched = {m["hpo_id"] for e in explained[0][:4] for m in e["matched"]}
    assert matched <= set(present)


def test_one_known_case_per_disease_keeps_the_case_weights_at_the_prior(base, cases, test_params):
    # with one case per disease no validation disease keeps a support case: the fit must
    # not learn from wrong candidates alone that a disease with a known case is never the
    # answer (the few-shot k = 1 protocol's hybrid fell below the knowledge scorer)
    first = {}
    for case in cases:
        first.setdefault(case.disease_id, case)
    _, report = fit_rare_model(base, list(first.values()), [], test_params)
    assert report["validation_cases"]["weights_with_known_cases"] == 0
    assert report["case_weights_fitted"] is False
    for name in CASE_FEATURES + PUBLISHED_CASE_FEATURES:
        assert report["weights"][name] == PRIOR_WEIGHTS[FEATURES.index(name)]
