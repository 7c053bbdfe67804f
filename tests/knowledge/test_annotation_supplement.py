"""The rare model's knowledge: the pinned HPO release's annotations plus what a newer
release adds — the diseases it lacks and the terms of the others have gained
(``knowledge/data/phenotype_supplement.hpoa``)."""

from __future__ import annotations

from disease_pipeline.knowledge.annotations import (
    SUPPLEMENT,
    load_annotations,
    load_supplemented_annotations,
    parse_hpoa,
)
from disease_pipeline.knowledge.hpo import load_ontology

#: described after the pinned release (2025-01-16), annotated in HPO 2025-11-24
NEWER_DISEASE = "OMIM:621164"  # Polycystic kidney disease 9, susceptibility to


def _pairs(frame) -> set[tuple[str, str]]:
    return set(zip(frame["disease_id"], frame["hpo_id"], strict=True))


def test_the_supplement_adds_only_annotations_the_pinned_release_lacks():
    pinned = load_annotations()
    supplement = parse_hpoa(SUPPLEMENT, load_ontology())
    assert not _pairs(supplement) & _pairs(pinned)
    new = set(supplement["disease_id"]) - set(pinned["disease_id"])
    extended = set(supplement["disease_id"]) & set(pinned["disease_id"])
    assert len(new) > 200 and len(extended) > 300
    assert NEWER_DISEASE not in set(pinned["disease_id"])
    assert NEWER_DISEASE in new


def test_supplement_terms_are_phenotypes_of_the_pinned_ontology_without_frequency():
    ontology = load_ontology()
    supplement = parse_hpoa(SUPPLEMENT, ontology)
    assert supplement.attrs["unresolved_terms"] == 0
    assert all(ontology.is_phenotype(t) for t in supplement["hpo_id"].unique())
    assert supplement["frequency"].isna().all()
    assert not supplement["excluded"].any()
    assert set(supplement["database"]) <= {"OMIM", "ORPHA"}


def test_supplemented_annotations_keep_the_pinned_ones_and_add_the_newer_ones():
    pinned = load_annotations()
    both = load_supplemented_annotations()
    assert both.iloc[: len(pinned)].equals(pinned)
    added = both.iloc[len(pinned) :]
    assert _pairs(added) == _pairs(parse_hpoa(SUPPLEMENT, load_ontology()))
    new = ~added["disease_id"].isin(set(pinned["disease_id"]))
    assert both.attrs["supplement_diseases"] == added.loc[new, "disease_id"].nunique()
    assert both.attrs["supplement_extended_diseases"] == added.loc[~new, "disease_id"].nunique()
    assert both.attrs["supplement_added_terms"] == int((~new).sum()) > 1000
    assert len(added[added["disease_id"] == NEWER_DISEASE]) >= 3
    # a disease the pinned release annotates keeps its frequencies and gains terms
    # without one
    extended = added.loc[~new, "disease_id"].iloc[0]
    kept = pinned[pinned["disease_id"] == extended]
    assert both[both["disease_id"] == extended].iloc[: len(kept)].equals(kept)
    assert added.loc[added["disease_id"] == extended, "frequency"].isna().all()


def test_the_rare_model_knows_the_newer_disease_from_its_annotations():
    from disease_pipeline.rare.fit import load_knowledge
    from disease_pipeline.rare.profiles import build_candidates, knowledge_profiles

    base = load_knowledge()
    candidates = build_candidates(base.annotations, None, [])
    profiles = knowledge_profiles(base.annotations, None, candidates, base.space, 1.0)
    row = candidates.index[NEWER_DISEASE]
    assert profiles.has_profile[row]
