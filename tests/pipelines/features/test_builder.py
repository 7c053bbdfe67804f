"""FeatureBuilder: featuretools parity, phenotype propagation, record path, errors, speed."""

import pickle

import numpy as np
import pandas as pd
import pytest

from disease_pipeline.knowledge.hpo import load_ontology
from disease_pipeline.pipelines.features.nodes import check_parity, subset_tables
from disease_pipeline.predictor.features import FeatureBuilder
from disease_pipeline.records import Measurement, PatientRecord, Symptom, records_to_tables


def one_encounter(symptoms=(), vitals=(), comorbidities=(), eid="x1") -> dict:
    """Tables of a single encounter; symptoms as (hpo_id, present, severity, onset)."""
    return {
        "encounters": pd.DataFrame(
            {
                "encounter_id": [eid],
                "patient_id": ["p"],
                "start": [pd.Timestamp("2024-07-01")],
                "age_years": [50.0],
                "sex": ["female"],
            }
        ),
        "symptoms": pd.DataFrame(
            [(eid, *s) for s in symptoms],
            columns=["encounter_id", "hpo_id", "present", "severity", "onset_days"],
        ),
        "vitals": pd.DataFrame(
            [(eid, *v) for v in vitals], columns=["encounter_id", "loinc", "value"]
        ),
        "labs": pd.DataFrame(columns=["encounter_id", "loinc", "value"]),
        "diagnoses": pd.DataFrame(
            [(eid, c, "comorbidity") for c in comorbidities],
            columns=["encounter_id", "code", "role"],
        ),
    }


def test_feature_matrix_is_float_indexed_by_encounter_in_fitted_order(builder, tables):
    matrix = builder.transform(tables)
    assert list(matrix.columns) == builder.feature_names
    assert matrix.index.name == "encounter_id"
    assert set(matrix.index) == set(tables["encounters"]["encounter_id"])
    assert (matrix.dtypes == "float64").all()
    reordered = {k: v.iloc[::-1] for k, v in tables.items()}
    pd.testing.assert_frame_equal(builder.transform(reordered).loc[matrix.index], matrix)


def test_vectorised_transform_equals_featuretools(builder, tables):
    ids = tables["encounters"]["encounter_id"].sample(40, random_state=1)
    sample = subset_tables(tables, ids)
    fast = builder.transform(sample)
    reference = builder.transform_featuretools(sample)
    assert fast.index.equals(reference.index)
    np.testing.assert_allclose(fast.to_numpy(), reference.to_numpy(), equal_nan=True)
    dfs_columns = [s.name for s in builder.specs]
    assert {"symptoms_count", "symptoms_severity_mean", "comorbidities_count"} <= set(dfs_columns)
    assert "vitals_heart_rate_max" in dfs_columns
    assert fast[dfs_columns].notna().any().all(), "every DFS column is observed somewhere"
    check_parity(builder, sample)  # the pipeline's guard passes too


def test_parity_guard_detects_a_wrong_vectorised_value(builder, tables, monkeypatch):
    sample = subset_tables(tables, tables["encounters"]["encounter_id"][:10])
    original = builder.transform

    def broken(t):
        out = original(t)
        out["symptoms_count"] += 1
        return out

    monkeypatch.setattr(builder, "transform", broken)
    with pytest.raises(RuntimeError, match="symptoms_count"):
        check_parity(builder, sample)


def test_present_terms_propagate_to_ancestors_and_excluded_to_descendants(builder):
    onto = load_ontology()
    leaf = "HP:0002094"  # Dyspnea
    parents = [t for t in onto.ancestors(leaf) if t != leaf and t in builder.phenotype_terms]
    assert parents, "the vocabulary holds ancestors of Dyspnea"
    row = builder.transform(one_encounter(symptoms=[(leaf, True, 2, 3)])).iloc[0]
    for term in parents:
        assert row[f"hpo_{term.replace(':', '_')}"] == 1.0
    unrelated = [t for t in builder.phenotype_terms if t not in onto.ancestors(leaf)]
    assert (row[[f"hpo_{t.replace(':', '_')}" for t in unrelated]] == 0).all()

    excluded = builder.excluded_terms[0]
    parent = onto.parents[excluded][0]
    direct = builder.transform(one_encounter(symptoms=[(excluded, False, None, None)])).iloc[0]
    via_parent = builder.transform(one_encounter(symptoms=[(parent, False, None, None)])).iloc[0]
    via_child = [t for t, ps in onto.parents.items() if excluded in ps][0]
    child_only = builder.transform(one_encounter(symptoms=[(via_child, False, None, None)])).iloc[0]
    column = f"hpo_not_{excluded.replace(':', '_')}"
    assert direct[column] == 1.0 and via_parent[column] == 1.0
    assert child_only[column] == 0.0, "excluding a child says nothing about its parent"
    assert direct["symptoms_excluded_sum"] == 1.0 and direct["symptoms_present_sum"] == 0.0


def test_obsolete_hpo_id_counts_as_its_replacement(builder):
    onto = load_ontology()
    vocab = set(builder.phenotype_terms)
    alias, term = next((old, new) for old, new in sorted(onto.replaced_by.items()) if new in vocab)
    a = builder.transform(one_encounter(symptoms=[(term, True, 1, 1)]))
    b = builder.transform(one_encounter(symptoms=[(alias, True, 1, 1)]))
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())


def test_primary_diagnosis_never_reaches_the_features(builder, tables):
    sample = subset_tables(tables, tables["encounters"]["encounter_id"][:20])
    relabelled = dict(sample)
    dx = sample["diagnoses"].copy()
    dx.loc[dx["role"] == "primary", "code"] = "Z99.9"
    relabelled["diagnoses"] = dx
    pd.testing.assert_frame_equal(builder.transform(sample), builder.transform(relabelled))


def test_patient_record_gives_the_same_features_as_the_warehouse(builder, tables):
    ids = tables["encounters"]["encounter_id"][:15].tolist()
    sample = subset_tables(tables, ids)
    records = []
    for enc in sample["encounters"].itertuples():
        sym = sample["symptoms"][sample["symptoms"]["encounter_id"] == enc.encounter_id]
        vit = sample["vitals"][sample["vitals"]["encounter_id"] == enc.encounter_id]
        lab = sample["labs"][sample["labs"]["encounter_id"] == enc.encounter_id]
        dx = sample["diagnoses"][sample["diagnoses"]["encounter_id"] == enc.encounter_id]
        records.append(
            PatientRecord(
                patient_id=enc.patient_id,
                encounter_id=enc.encounter_id,
                age=enc.age_years,
                sex=enc.sex,
                encounter_date=enc.start.to_pydatetime(),
                symptoms=[
                    Symptom(
                        code=s.hpo_id,
                        present=s.present,
                        severity=None if pd.isna(s.severity) else int(s.severity),
                        onset_days=None if pd.isna(s.onset_days) else s.onset_days,
                    )
                    for s in sym.itertuples()
                ],
                vitals=[
                    Measurement(loinc=m.loinc, value=m.value, unit="") for m in vit.itertuples()
                ],
                labs=[Measurement(loinc=m.loinc, value=m.value, unit="") for m in lab.itertuples()],
                comorbidities=dx.loc[dx["role"] == "comorbidity", "code"].tolist(),
            )
        )
    from_records = builder.transform(records_to_tables(records))
    from_warehouse = builder.transform(sample).loc[from_records.index]
    pd.testing.assert_frame_equal(from_records, from_warehouse)


def test_single_record_transform_is_featuretools_free(builder, monkeypatch):
    import featuretools

    monkeypatch.setattr(featuretools, "calculate_feature_matrix", None)
    record = PatientRecord(
        age=61,
        sex="male",
        symptoms=[Symptom(code="HP:0001945", severity=3, onset_days=2), Symptom(code="HP:0012735")],
        vitals=[
            Measurement(loinc="8867-4", value=118, unit="/min"),
            Measurement(loinc="9279-1", value=26, unit="/min"),
        ],
        comorbidities=["E11.9"],
    )
    tables = records_to_tables([record])
    row = builder.transform(tables)
    assert row.shape == (1, len(builder.feature_names))
    assert row.iloc[0]["news2"] == 2 + 3  # HR 118 → 2, RR 26 → 3


def test_builder_pickles_without_featuretools_objects(builder, tables):
    restored = pickle.loads(pickle.dumps(builder))
    sample = subset_tables(tables, tables["encounters"]["encounter_id"][:5])
    pd.testing.assert_frame_equal(restored.transform(sample), builder.transform(sample))
    assert '"ft_version"' in builder.feature_definitions


def test_bad_inputs_name_the_field(builder, feature_params):
    bad_value = one_encounter(vitals=[("8867-4", "fast")])
    with pytest.raises(ValueError, match=r"vitals\.value"):
        builder.transform(bad_value)
    no_start = one_encounter()
    no_start["encounters"] = no_start["encounters"].drop(columns="start")
    with pytest.raises(ValueError, match=r"encounters: missing columns \['start'\]"):
        builder.transform(no_start)
    params = {**feature_params["builder"], "symptom_groups": {"x": "HP:9999999"}}
    with pytest.raises(ValueError, match="symptom_groups"):
        FeatureBuilder(**params)
    params = {
        **feature_params["builder"],
        "dfs": {**feature_params["builder"]["dfs"], "agg_primitives": ["skew"]},
    }
    with pytest.raises(ValueError, match="agg_primitives"):
        FeatureBuilder(**params).fit(one_encounter())
    with pytest.raises(RuntimeError, match="not fitted"):
        FeatureBuilder(**feature_params["builder"]).transform(one_encounter())


def test_record_without_findings_has_zero_counts_and_unknown_measurements(builder):
    row = builder.transform(records_to_tables([PatientRecord(age=30)])).iloc[0]
    assert row["symptoms_count"] == 0 and row["comorbidities_count"] == 0
    assert np.isnan(row["vitals_heart_rate_mean"]) and np.isnan(row["news2"])
    assert row["news2_observed"] == 0
    hpo = [c for c in builder.feature_names if c.startswith("hpo_")]
    assert (row[hpo] == 0).all()
