"""HPO term lookup by name for the clinician page's autocomplete.

Only descendants of *Phenotypic abnormality* (HP:0000118) are offered. Ranking: the
name starts with the query, then a word of the name does, then the query occurs
anywhere; shorter names first. A query that looks like an id (``HP:0001945``) returns
that term if it is a phenotype (obsolete ids resolve to their replacement).
"""

from __future__ import annotations

import re

from disease_pipeline.knowledge.hpo import Ontology

_ID = re.compile(r"^HP:\d{7}$", re.IGNORECASE)


class HpoSearch:
    """Case-insensitive search over the phenotype terms of one ontology."""

    def __init__(self, ontology: Ontology) -> None:
        self.ontology = ontology
        terms = [(hpo, name) for hpo, name in ontology.names.items() if ontology.is_phenotype(hpo)]
        terms.sort(key=lambda item: (len(item[1]), item[1]))
        self._terms = [(hpo, name, name.lower(), " " + name.lower()) for hpo, name in terms]

    def search(self, query: str, limit: int = 15) -> list[dict[str, str]]:
        """At most ``limit`` ``{"id", "name"}`` matches for ``query`` (2+ characters)."""
        text = " ".join(str(query or "").lower().split())
        if _ID.match(text):
            live = self.ontology.resolve(text.upper())
            if live is None or not self.ontology.is_phenotype(live):
                return []
            return [{"id": live, "name": self.ontology.names[live]}]
        if len(text) < 2:
            return []
        starts, word_starts, contains = [], [], []
        word = " " + text
        for hpo, name, lower, spaced in self._terms:
            position = lower.find(text)
            if position == 0:
                starts.append((hpo, name))
                if len(starts) >= limit:
                    break
            elif position > 0:
                bucket = word_starts if word in spaced else contains
                bucket.append((hpo, name))
        ranked = (starts + word_starts + contains)[:limit]
        return [{"id": hpo, "name": name} for hpo, name in ranked]
