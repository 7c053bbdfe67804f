"""Cleaning a patient's HPO terms: mapped, reported, never silently dropped."""

from __future__ import annotations

from disease_pipeline.rare.terms import clean_terms

SEIZURE = "HP:0001250"
FOCAL_SEIZURE = "HP:0007359"
AUTOSOMAL_DOMINANT = "HP:0000006"  # a mode of inheritance, not a phenotype


def test_obsolete_and_snomed_ids_are_mapped(base):
    onto = base.ontology
    obsolete = next(old for old, new in sorted(onto.replaced_by.items()) if new in base.space.index)
    snomed = next(
        code for code, hpo in sorted(onto.snomed_to_hpo.items()) if hpo in base.space.index
    )
    cleaned = clean_terms(onto, base.space, [obsolete, snomed])
    assert cleaned.present == [onto.replaced_by[obsolete], onto.snomed_to_hpo[snomed]]
    assert cleaned.mapped == {
        obsolete: onto.replaced_by[obsolete],
        snomed: onto.snomed_to_hpo[snomed],
    }


def test_unknown_and_non_phenotype_ids_are_reported(base):
    cleaned = clean_terms(base.ontology, base.space, ["HP:9999999", AUTOSOMAL_DOMINANT, SEIZURE])
    assert cleaned.present == [SEIZURE]
    assert cleaned.unknown == ["HP:9999999"]
    assert cleaned.not_phenotype == [AUTOSOMAL_DOMINANT]


def test_a_present_term_of_the_newer_release_is_read_as_its_ancestor(base):
    # HP:0025836 (HPO 2025-11-24) -> HP:0031393 (knowledge/data/hpo_newer_terms.tsv)
    cleaned = clean_terms(base.ontology, base.space, ["HP:0025836", SEIZURE], ["HP:0025836"])
    assert cleaned.present == ["HP:0031393", SEIZURE]
    assert cleaned.mapped == {"HP:0025836": "HP:0031393"}
    # an absent one is dropped and reported: its absence says nothing of the parent
    assert cleaned.excluded == [] and cleaned.unknown == ["HP:0025836"]


def test_excluded_term_contradicting_a_present_one_is_dropped(base):
    # "no seizures" contradicts "focal seizure" (a seizure); duplicates collapse
    cleaned = clean_terms(
        base.ontology, base.space, [FOCAL_SEIZURE, FOCAL_SEIZURE], [SEIZURE, "HP:0001263"]
    )
    assert cleaned.present == [FOCAL_SEIZURE]
    assert cleaned.excluded == ["HP:0001263"]
    assert cleaned.conflicting == [SEIZURE]


def test_propagation_includes_every_ancestor(base):
    space = base.space
    closure = space.propagate([space.index[FOCAL_SEIZURE]])
    ids = {space.ids[i] for i in closure}
    assert {FOCAL_SEIZURE, SEIZURE, "HP:0000118"} <= ids
    assert ids == {a for a in base.ontology.ancestors(FOCAL_SEIZURE) if a in space.index}
