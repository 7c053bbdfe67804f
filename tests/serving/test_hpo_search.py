"""Symptom search: names, HPO synonyms and lay words, ranked by match quality then usage."""

from __future__ import annotations

import pytest

from disease_pipeline.knowledge.hpo import load_ontology
from disease_pipeline.knowledge.vocabulary import lay_terms
from disease_pipeline.serving.hpo_search import MATCH_KINDS, HpoSearch


@pytest.fixture(scope="module")
def search() -> HpoSearch:
    return HpoSearch(load_ontology())


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sweating", "Hyperhidrosis"),  # an HPO synonym beats longer names starting with it
        ("tired", "Fatigue"),  # HPO layperson synonym
        ("short of breath", "Dyspnea"),  # lay phrase
        ("Shortness of breath", "Dyspnea"),  # HPO synonym, any case
        ("belly pain", "Abdominal pain"),  # lay phrase
        ("fever", "Fever"),
        ("abd pain", "Abdominal pain"),  # word prefixes, most used term first
    ],
)
def test_queries_find_the_clinical_term_first(search, query, expected):
    results = search.search(query, 5)
    assert results and results[0]["name"] == expected


def test_ranking_is_by_match_quality_then_usage(search):
    results = search.search("pain", 40)
    levels = [MATCH_KINDS.index(r["match"]) for r in results]
    assert levels == sorted(levels)
    assert results[0]["name"] == "Pain"
    word_prefix = [r["name"] for r in results if r["match"] == "word_prefix"]
    # among equally good matches, terms used by the common-disease catalogue come first
    assert word_prefix[0] in {"Chest pain", "Abdominal pain", "Low back pain", "Back pain"}


def test_the_matched_synonym_is_reported(search):
    top = search.search("sweating", 1)[0]
    assert (top["id"], top["match"], top["matched"]) == ("HP:0000975", "exact", "Sweating")


def test_ids_short_queries_and_non_phenotypes(search):
    assert search.search("hp:0001945")[0]["id"] == "HP:0001945"
    assert search.search("f") == []
    assert search.search("HP:0000006") == []
    assert search.search("autosomal dominant inheritance") == []


def test_every_lay_phrase_maps_to_a_live_phenotype_and_is_found(search):
    onto = load_ontology()
    for phrase, term in lay_terms().items():
        assert onto.is_phenotype(term)
        assert term in [r["id"] for r in search.search(phrase, 3)], phrase
