"""HPO term lookup for the clinician page's autocomplete: names, synonyms and lay words.

Only descendants of *Phenotypic abnormality* (HP:0000118) are offered. Each term is
known by its name, its ``hp.obo`` synonyms and the project's lay phrases ("belly pain",
``knowledge/data/lay_terms.yaml``). Ranking, best first:

1. match quality: ``exact`` (the query is the name, a synonym or a lay phrase), then
   ``word_prefix`` (every query word starts a word of the name), then ``synonym``
   (every query word starts a word of a synonym or lay phrase), then ``substring``;
2. clinical usage: how many common diseases of the catalogue list the term, then how
   many HPO-annotated diseases do (``phenotype.hpoa``);
3. shorter names first.

A query that looks like an id (``HP:0001945``) returns that term if it is a phenotype
(obsolete ids resolve to their replacement).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from disease_pipeline.knowledge.hpo import Ontology

_ID = re.compile(r"^HP:\d{7}$", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+")
MATCH_KINDS = ("exact", "word_prefix", "synonym", "substring")


def _words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text.lower()))


def _starts_words(query: tuple[str, ...], words: tuple[str, ...]) -> bool:
    """Every query word is the start of some word of ``words``."""
    return bool(query) and all(any(w.startswith(q) for w in words) for q in query)


@dataclass(frozen=True)
class _Term:
    hpo: str
    name: str
    lower: str
    words: tuple[str, ...]
    aliases: tuple[tuple[str, tuple[str, ...], str], ...]  # (lower, words, original)
    usage: tuple[int, int]
    blob: str  # name and aliases, lower case: a quick pre-filter


class HpoSearch:
    """Case-insensitive, ranked search over the phenotype terms of one ontology.

    Args:
        synonyms: term → synonyms (default: ``hp.obo``'s).
        lay: lay phrase → term (default: ``lay_terms.yaml``).
        usage: term → (catalogue count, annotation count) (default: computed).
    """

    def __init__(
        self,
        ontology: Ontology,
        synonyms: dict[str, tuple[str, ...]] | None = None,
        lay: dict[str, str] | None = None,
        usage: dict[str, tuple[int, int]] | None = None,
    ) -> None:
        self.ontology = ontology
        if synonyms is None or lay is None:
            from disease_pipeline.knowledge.vocabulary import lay_terms, term_synonyms

            synonyms = term_synonyms() if synonyms is None else synonyms
            lay = lay_terms() if lay is None else lay
        usage = default_usage() if usage is None else usage
        extra: dict[str, list[str]] = {}
        for phrase, term in lay.items():
            extra.setdefault(term, []).append(phrase)
        terms = []
        for hpo, name in ontology.names.items():
            if not ontology.is_phenotype(hpo):
                continue
            words = [*synonyms.get(hpo, ()), *extra.get(hpo, ())]
            aliases = tuple((w.lower(), _words(w), w) for w in dict.fromkeys(words))
            blob = "\n".join([name.lower(), *(a[0] for a in aliases)])
            terms.append(
                _Term(hpo, name, name.lower(), _words(name), aliases, usage.get(hpo, (0, 0)), blob)
            )
        self._terms = terms

    def search(self, query: str, limit: int = 15) -> list[dict[str, str]]:
        """At most ``limit`` matches for ``query`` (2+ characters): ``{"id", "name",
        "match", "matched"}`` — ``matched`` is the synonym or lay phrase that matched
        (None when the name did)."""
        text = " ".join(str(query or "").lower().split())
        if _ID.match(text):
            live = self.ontology.resolve(text.upper())
            if live is None or not self.ontology.is_phenotype(live):
                return []
            return [
                {"id": live, "name": self.ontology.names[live], "match": "exact", "matched": None}
            ]
        if len(text) < 2:
            return []
        query_words = _words(text)
        probe = query_words[0] if query_words else text
        found = []
        for term in self._terms:
            if probe not in term.blob:
                continue
            hit = _match(term, text, query_words)
            if hit is not None:
                level, matched = hit
                found.append((level, -term.usage[0], -term.usage[1], len(term.name), term, matched))
        found.sort(key=lambda item: item[:4] + (item[4].name,))
        return [
            {"id": t.hpo, "name": t.name, "match": MATCH_KINDS[level], "matched": matched}
            for level, *_, t, matched in found[:limit]
        ]


def _match(term: _Term, text: str, query_words: tuple[str, ...]) -> tuple[int, str | None] | None:
    """(match level, alias matched) of ``term`` for the query, None when it does not match."""
    if term.lower == text:
        return 0, None
    for lower, _, original in term.aliases:
        if lower == text:
            return 0, original
    if _starts_words(query_words, term.words):
        return 1, None
    for _, words, original in term.aliases:
        if _starts_words(query_words, words):
            return 2, original
    if text in term.lower:
        return 3, None
    for lower, _, original in term.aliases:
        if text in lower:
            return 3, original
    return None


def default_usage() -> dict[str, tuple[int, int]]:
    """Term → (common diseases of the catalogue listing it, HPO-annotated diseases
    annotated with it directly)."""
    from disease_pipeline.knowledge.annotations import load_annotations
    from disease_pipeline.knowledge.catalogue import load_common_diseases
    from disease_pipeline.knowledge.term_usage import catalogue_counts

    catalogue = catalogue_counts(load_common_diseases())
    annotations = load_annotations()
    direct = annotations.loc[~annotations["excluded"]].groupby("hpo_id")["disease_id"].nunique()
    terms = set(catalogue) | set(direct.index)
    return {t: (catalogue.get(t, 0), int(direct.get(t, 0))) for t in terms}
