"""Search de-identified outputs for personal identifiers (the PHI-leak test).

Tables are searched cell by cell (text columns: a ZIP code in a numeric column is a
number), text files as a reader sees them (HTML without its scripts).

Names are matched case-sensitively as whole words (a family name "Short" must not
match the HPO label "short stature" in a note); every other identifier
case-insensitively and not inside a longer alphanumeric run (a ZIP code must not
match inside a hex pseudonym), and a number not inside a decimal or a code
("10001.0", "59408-5", "ORPHA:99960"). Clinical vocabulary terms that contain a name
("Smith-Magenis syndrome", "Wilson disease") are removed before searching: they
are knowledge-base labels, not patient data.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd

from disease_pipeline.core.layers import PSEUDONYMISED_LAYERS

NAME_KINDS = {"full_name", "given_name", "family_name", "name"}
TEXT_SUFFIXES = {".json", ".csv", ".txt", ".md", ".html", ".yml", ".yaml", ".log"}


@cache
def clinical_vocabulary() -> frozenset[str]:
    """Disease, HPO term and LOINC names of the knowledge base."""
    from disease_pipeline.knowledge.annotations import load_annotations
    from disease_pipeline.knowledge.catalogue import load_common_diseases, load_lab_table
    from disease_pipeline.knowledge.hpo import load_ontology

    terms = set(load_annotations()["disease_name"].dropna())
    terms |= set(load_ontology().names.values())
    terms |= set(load_common_diseases()["name"].dropna())
    terms |= set(load_lab_table()["name"].dropna())
    return frozenset(str(t) for t in terms)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[^\W\d_]+", text))


_LETTERS = re.compile(r"[^\W\d_]+")
_ALNUM = re.compile(r"[0-9A-Za-z]+")


class LeakFinder:
    """Finds the identifiers of ``identifiers.csv`` (``kind, value``) in outputs.

    A cheap necessary condition runs first: every letter run of a name (case kept),
    every alphanumeric run of another identifier (lower-cased) must be a whole run of
    the text; only then is the identifier's regex searched.
    """

    def __init__(self, identifiers: pd.DataFrame) -> None:
        self.patterns: list[tuple[str, re.Pattern, bool, frozenset[str]]] = []
        names: set[str] = set()
        for kind, raw in identifiers[["kind", "value"]].itertuples(index=False):
            value = str(raw).strip()
            if len(value) < 2:
                continue
            is_name = kind in NAME_KINDS
            if is_name:
                names.add(value)
                regex = re.compile(rf"(?<![^\W\d_]){re.escape(value)}(?![^\W\d_])")
                runs = frozenset(_LETTERS.findall(value))
            else:
                runs = frozenset(r.lower() for r in _ALNUM.findall(value))
                if value.isdigit():  # a ZIP code: not a piece of a decimal number or a code
                    regex = re.compile(rf"(?<![0-9A-Za-z.:-]){value}(?![0-9A-Za-z]|[.,:-]\d)")
                else:
                    regex = re.compile(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])", re.I)
            self.patterns.append((kind, regex, is_name, runs))
        self._vocabulary = self._vocabulary_with_names(names)

    @staticmethod
    def _vocabulary_with_names(names: set[str]) -> list[str]:
        """Vocabulary terms containing every word of some identifier name, longest first."""
        by_word: dict[str, set[str]] = defaultdict(set)
        for term in clinical_vocabulary():
            for word in _words(term):
                by_word[word].add(term)
        found: set[str] = set()
        for name in names:
            words = _words(name)
            if words:
                found |= set.intersection(*(by_word.get(w, set()) for w in words))
        return sorted(found, key=len, reverse=True)

    def in_text(self, where: str, text: str) -> list[str]:
        """``"<where>: <kind>"`` for every identifier found in ``text``."""
        for term in self._vocabulary:  # same length, no new word boundary
            text = text.replace(term, "x" * len(term))
        letters = set(_LETTERS.findall(text))
        alnum = {run.lower() for run in _ALNUM.findall(text)}
        return [
            f"{where}: {kind}"
            for kind, regex, is_name, runs in self.patterns
            if runs <= (letters if is_name else alnum) and regex.search(text)
        ]

    def in_frames(self, frames: Mapping[str, pd.DataFrame]) -> list[str]:
        """Identifiers found in the text cells of each table, per column."""
        hits = []
        for name, frame in frames.items():
            for column in frame.columns:
                series = frame[column]
                if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(
                    series
                ):
                    continue
                blob = "\n".join(series.dropna().astype(str).unique())
                hits += self.in_text(f"{name}.{column}", blob)
        return hits

    def in_layers(self, data_root: Path) -> list[str]:
        """Identifiers in every file of layers 03–08: tables as tables, text as text."""
        hits = []
        files = sorted(
            p
            for layer in PSEUDONYMISED_LAYERS
            for p in (data_root / layer).rglob("*")
            if p.is_file()
        )
        for path in files:
            suffix = path.suffix.lower()
            if suffix == ".duckdb":
                hits += self.in_frames(
                    {f"{path.name}:{t}": f for t, f in warehouse_tables(path).items()}
                )
            elif suffix == ".parquet":
                hits += self.in_frames({path.name: pd.read_parquet(path)})
            elif suffix in TEXT_SUFFIXES:
                hits += self.in_text(path.name, readable_text(path))
        return hits


_SCRIPT = re.compile(r"<(script|style)\b.*?</\1>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
_BLOB = re.compile(r"[A-Za-z0-9+/=]{40,}")


def readable_text(path: Path) -> str:
    """A text file as a reader sees it: HTML without scripts, styles and tags (reports
    embed JavaScript libraries full of words such as "June"); base64 blobs removed."""
    text = path.read_text(errors="replace")
    if path.suffix.lower() == ".json":
        text = json.dumps(json.loads(text), ensure_ascii=False)
    if path.suffix.lower() == ".html":
        text = _TAG.sub(" ", _SCRIPT.sub(" ", text))
    return _BLOB.sub(" ", text)


def warehouse_tables(path: Path) -> dict[str, pd.DataFrame]:
    """Every table of a DuckDB file (not only the contract's)."""
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        names = [r[0] for r in rows]
        return {n: con.execute(f'SELECT * FROM "{n}"').df() for n in names}
